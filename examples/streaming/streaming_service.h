// The seed's example service (streaming.v1.Streaming) on gravity's server
// library: Ping is public, StreamUsers is behind the Admin guard.
//
// Semantics (see proto/streaming/v1/streaming.proto):
// - Ping sends "Sending ping to <to>" every interval_ms (default 1000) and
//   closes after count messages (default 5); seq counts from 1. A call with
//   metadata `last-event-id: N` continues at seq N+1. fail_code != 0 ends the
//   stream with that code after the last message.
// - StreamUsers sends count users (default 5) with random distinct ids every
//   interval_ms (default 1000); seq counts from 1 and resumes like Ping's.
// - Echo (unary) replies with the request's text, or fails with fail_code.
#ifndef GRAVITY_EXAMPLES_STREAMING_STREAMING_SERVICE_H_
#define GRAVITY_EXAMPLES_STREAMING_STREAMING_SERVICE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/service.h"

namespace gravity::examples {

// `admin_token` guards StreamUsers; empty rejects every StreamUsers call.
absl::StatusOr<std::unique_ptr<server::Service>> MakeStreamingService(std::string admin_token);
// The same with StreamUsers behind `admin_guards`, in order (e.g. RequireJwt
// then RequireClaim("role", "admin")).
absl::StatusOr<std::unique_ptr<server::Service>> MakeStreamingService(
    std::vector<server::Guard> admin_guards);

}  // namespace gravity::examples

#endif  // GRAVITY_EXAMPLES_STREAMING_STREAMING_SERVICE_H_
