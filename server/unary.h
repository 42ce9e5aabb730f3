// UnaryReply<T>: the handle a unary method's handler answers through, once,
// from any thread, now or later:
//
//   service.AddUnary<EchoRequest, EchoReply>(
//       "Echo", [](const EchoRequest& request, UnaryReply<EchoReply> reply) {
//         EchoReply echo;
//         echo.set_text(request.text());
//         reply.Finish(echo);
//       });
//
// A handler that has its answer at once may instead return it:
// `[](const EchoRequest&, const CallInfo&) -> absl::StatusOr<EchoReply>`.
//
// The handler runs on a gRPC thread and must not block: work that waits (a
// database, Redis) keeps the handle and finishes from its own thread. If the
// last copy of the handle goes without a Finish, the call ends with INTERNAL
// rather than hanging until the client's deadline. A client that cancels
// gets CANCELLED at once; a later Finish then does nothing and returns false.
//
// Thread-safe: copies share one call; every method may be called from any
// thread at any time, and only the first Finish counts.
#ifndef GRAVITY_SERVER_UNARY_H_
#define GRAVITY_SERVER_UNARY_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"
#include "server/call_info.h"
#include "server/internal/unary_core.h"

namespace gravity::server {

template <typename T>
class UnaryReply {
 public:
  explicit UnaryReply(std::shared_ptr<internal::UnaryCore> core) : core_(std::move(core)) {}

  // Replies with `message`. False when the call was already over (answered,
  // cancelled); the message is then dropped.
  bool Finish(const T& message) const { return core_->Finish(message); }
  // Ends the call with an error `status`. An OK status without a message is
  // a handler bug and reaches the client as INTERNAL.
  bool Finish(grpc::Status status) const { return core_->Fail(std::move(status)); }
  bool Finish(const absl::Status& status) const {
    return core_->Fail(
        grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message())));
  }

  // Runs `hook` once if the client cancels or goes away before the reply.
  void OnCancel(std::function<void()> hook) const { core_->OnCancel(std::move(hook)); }
  // True until the call is answered or cancelled.
  bool IsOpen() const { return core_->IsOpen(); }
  const CallInfo& call() const { return core_->call(); }

 private:
  std::shared_ptr<internal::UnaryCore> core_;
};

}  // namespace gravity::server

#endif  // GRAVITY_SERVER_UNARY_H_
