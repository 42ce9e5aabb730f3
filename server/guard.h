// Guards: checks that run on a call before its handler, as the seed's
// "a guard can target a specific service".
//
// A guard returns OK to let the call through or a status (UNAUTHENTICATED,
// PERMISSION_DENIED, ...) to reject it; a rejected call never reaches the
// handler and the client receives the status with no message. Attach guards to
// a whole service or to one method with gravity::server::Service. Guards run on
// gRPC's callback threads: they must be quick and must not block.
#ifndef GRAVITY_SERVER_GUARD_H_
#define GRAVITY_SERVER_GUARD_H_

#include <functional>
#include <string>

#include "absl/strings/string_view.h"
#include "grpcpp/support/status.h"
#include "server/call_info.h"

namespace gravity::server {

using Guard = std::function<grpc::Status(const CallInfo& call)>;

// Requires metadata `authorization: Bearer <token>`. The comparison takes the
// same time wherever the first difference is. An empty `token` rejects every
// call, so a server started without a token fails closed.
Guard RequireBearerToken(std::string token);

// Compares without an early exit; the time depends only on `expected`'s length.
bool ConstantTimeEquals(absl::string_view given, absl::string_view expected);

}  // namespace gravity::server

#endif  // GRAVITY_SERVER_GUARD_H_
