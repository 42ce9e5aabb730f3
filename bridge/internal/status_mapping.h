// The one place where gRPC status codes meet HTTP: status codes, and the
// google.rpc.Status JSON that error bodies and the SSE `end` event carry.
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

// {"code":3,"message":"...","details":[...]} on one line; `details_json` is
// a JSON array (see JsonEncoder::DetailsJson).
std::string StatusJson(grpc::StatusCode code, absl::string_view message,
                       absl::string_view details_json = "[]");

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_STATUS_MAPPING_H_
