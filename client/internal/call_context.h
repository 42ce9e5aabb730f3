// The edge between gravity's client API and gRPC's: a ClientContext built from
// CallOptions, and gRPC statuses as absl statuses.
#ifndef GRAVITY_CLIENT_INTERNAL_CALL_CONTEXT_H_
#define GRAVITY_CLIENT_INTERNAL_CALL_CONTEXT_H_

#include <memory>

#include "absl/status/status.h"
#include "client/call_options.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"

namespace gravity::client::internal {

// A context with the deadline, metadata, last-event-id and wait-for-ready of
// `options`. Shared: the reactor of the call and the user's handle (for
// Cancel) both keep it, so it outlives whichever ends last.
std::shared_ptr<grpc::ClientContext> MakeContext(const CallOptions& options);

// gRPC and absl codes are both google.rpc.Code: the mapping is 1:1 and keeps
// the message.
absl::Status ToAbslStatus(const grpc::Status& status);

}  // namespace gravity::client::internal

#endif  // GRAVITY_CLIENT_INTERNAL_CALL_CONTEXT_H_
