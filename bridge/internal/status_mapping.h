// The one place where gRPC status codes meet HTTP: status codes, how a stream
// ends by its status (the wire contract's table), and the google.rpc.Status
// JSON that error bodies and the SSE `end` event carry.
// Pure functions; thread-safe.
#ifndef GRAVITY_BRIDGE_INTERNAL_STATUS_MAPPING_H_
#define GRAVITY_BRIDGE_INTERNAL_STATUS_MAPPING_H_

#include <string>

#include "absl/strings/string_view.h"
#include "grpcpp/support/status.h"

namespace gravity::bridge::internal {

// 400 INVALID_ARGUMENT, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED,
// 404 NOT_FOUND, 429 RESOURCE_EXHAUSTED, 501 UNIMPLEMENTED, 503 UNAVAILABLE,
// 504 DEADLINE_EXCEEDED, 500 otherwise (OK maps to 200).
int HttpStatusFor(grpc::StatusCode code);

// How a stream ends, by its final status (the wire contract's table).
enum class StreamEnd {
  kEndEvent,       // SSE `event: end` with the Status JSON (NDJSON: an error line, if any)
  kHttpError,      // not yet accepted: the mapped HTTP status with the Status JSON
  kRetry,          // an outage, not the end: `retry:` and no `end`, so the client resumes
                   // (UNAVAILABLE; UNAUTHENTICATED once accepted: expired credentials)
  kHeaderTooLarge  // the backend refused the call's metadata: 431
};

// `accepted`: the response headers are out. `wants_event_stream`: the client
// sent Accept: text/event-stream (EventSource, which gives up on a 503).
StreamEnd DecideStreamEnd(const grpc::Status& status, bool accepted, bool wants_event_stream);

// {"code":3,"message":"...","details":[...]} on one line; `details_json` is
// a JSON array (see JsonEncoder::DetailsJson).
std::string StatusJson(grpc::StatusCode code, absl::string_view message,
                       absl::string_view details_json = "[]");

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_STATUS_MAPPING_H_
