// AsyncStream: the handle of a server stream read through callbacks, for
// event-loop programs (see gravity::client::OpenAsync in client/client.h).
//
//   gravity::client::AsyncStream pings = gravity::client::OpenAsync(
//       *stub, &Streaming::Stub::async::Ping, request, {},
//       [&loop](const PingReply& reply) { loop.Post(...); },
//       [&loop](absl::Status status) { loop.Post(...); });
//   ...
//   pings.Cancel();  // e.g. on shutdown; on_done then gets CANCELLED
//
// The call runs on gRPC's callback threads, with no thread of its own; its
// callbacks run there too, one at a time, and must not block. on_done always
// runs, exactly once, last. The call does not depend on the handle: dropping
// the handle neither cancels nor waits; whatever the callbacks use must stay
// valid until on_done has run, and so must the channel (or the stub holding
// it): gRPC 1.51 aborts when the last reference to a channel goes on one of
// its own threads. For the same reason the callbacks should not own the
// channel (they are destroyed on a gRPC thread, right after on_done).
//
// Thread-safety: Cancel may be called from any thread, any number of times,
// also after the call ended. Copyable; copies control the same call.
#ifndef GRAVITY_CLIENT_ASYNC_STREAM_H_
#define GRAVITY_CLIENT_ASYNC_STREAM_H_

#include <memory>
#include <utility>

#include "grpcpp/client_context.h"

namespace gravity::client {

class AsyncStream {
 public:
  AsyncStream() = default;  // controls no call
  explicit AsyncStream(std::shared_ptr<grpc::ClientContext> context)
      : context_(std::move(context)) {}

  // Ends the call if it is still running: on_done gets CANCELLED (or the
  // status the call reached first).
  void Cancel() const {
    if (context_ != nullptr) context_->TryCancel();
  }

 private:
  std::shared_ptr<grpc::ClientContext> context_;
};

}  // namespace gravity::client

#endif  // GRAVITY_CLIENT_ASYNC_STREAM_H_
