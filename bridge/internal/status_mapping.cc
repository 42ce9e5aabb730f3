#include "bridge/internal/status_mapping.h"

#include "absl/strings/match.h"
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

namespace {

// gRPC's own status for a call whose initial metadata the backend refused as
// too large. The backend fails its whole connection with it, so every call on
// that connection ends with this status, not only the oversized one.
bool IsBackendMetadataLimit(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
         absl::StartsWith(status.error_message(), "received initial metadata size exceeds limit");
}

}  // namespace

StreamEnd DecideStreamEnd(const grpc::Status& status, bool accepted, bool wants_event_stream) {
  if (IsBackendMetadataLimit(status)) {
    // Never accepted: most likely this request's own metadata. Accepted: its
    // metadata was fine, another call failed the shared connection, which is
    // an outage of this stream, not its end.
    return accepted ? StreamEnd::kRetry : StreamEnd::kHeaderTooLarge;
  }
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    // Before the first byte only EventSource gets "200 + retry:" (it would
    // give up on a 503); other clients get the 503.
    return accepted || wants_event_stream ? StreamEnd::kRetry : StreamEnd::kHttpError;
  }
  if (accepted && status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    // Credentials that were good when the stream opened ran out (a token's
    // exp): the client should come back with fresh ones and resume, so it is
    // a cut. A client with no fresh token gets its 401 on the reconnect.
    return StreamEnd::kRetry;
  }
  if (!accepted && !status.ok()) return StreamEnd::kHttpError;
  return StreamEnd::kEndEvent;
}

std::string StatusJson(grpc::StatusCode code, absl::string_view message,
                       absl::string_view details_json) {
  return absl::StrCat("{\"code\":", static_cast<int>(code), ",\"message\":", JsonString(message),
                      ",\"details\":", details_json, "}");
}

}  // namespace gravity::bridge::internal
