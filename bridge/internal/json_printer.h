// AppendProto3Json: a protobuf message as proto3 JSON (work in progress).
#ifndef GRAVITY_BRIDGE_INTERNAL_JSON_PRINTER_H_
#define GRAVITY_BRIDGE_INTERNAL_JSON_PRINTER_H_

#include <string>

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace gravity::bridge::internal {

absl::Status AppendProto3Json(const google::protobuf::Message& message, std::string* out);

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_JSON_PRINTER_H_
