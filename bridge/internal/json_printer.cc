#include "bridge/internal/json_printer.h"

namespace gravity::bridge::internal {

absl::Status AppendProto3Json(const google::protobuf::Message&, std::string*) {
  return absl::UnimplementedError("not yet");
}

}  // namespace gravity::bridge::internal
