#include "bridge/internal/status_mapping.h"

#include "absl/strings/str_cat.h"
#include "bridge/internal/json_text.h"

namespace gravity::bridge::internal {

int HttpStatusFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return 200;
    case grpc::StatusCode::INVALID_ARGUMENT:
      return 400;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::UNIMPLEMENTED:
      return 501;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    default:
      return 500;
  }
}

std::string StatusJson(grpc::StatusCode code, absl::string_view message,
                       absl::string_view details_json) {
  return absl::StrCat("{\"code\":", static_cast<int>(code), ",\"message\":", JsonString(message),
                      ",\"details\":", details_json, "}");
}

}  // namespace gravity::bridge::internal
