// UnaryCore: the state of one unary call, shared by the handler's reply
// handles (gravity::server::UnaryReply<T>) and owned by them alone.
//
// Owners: the handles hold it by shared_ptr. The gRPC reactor holds only a
// weak_ptr, so when the last handle goes without a reply the core finishes
// the call itself (INTERNAL) instead of leaving the client waiting until its
// deadline. The core uses the reactor only until it calls Finish, and gRPC
// keeps the reactor until OnDone, which comes after Finish.
//
// Thread-safe: Finish, Fail and OnCancel may be called from any thread; the
// first Finish/Fail wins, later ones do nothing. No lock is held while
// calling into gRPC or a hook.
#ifndef GRAVITY_SERVER_INTERNAL_UNARY_CORE_H_
#define GRAVITY_SERVER_INTERNAL_UNARY_CORE_H_

#include <functional>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/message_lite.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"
#include "grpcpp/support/status.h"
#include "server/call_info.h"

namespace gravity::server::internal {

class UnaryCore {
 public:
  // Creates the core and its reactor for a call whose reply goes to
  // `response` (gRPC's, valid until the reactor finishes).
  static std::shared_ptr<UnaryCore> Start(CallInfo call, grpc::ByteBuffer* response);
  ~UnaryCore();

  UnaryCore(const UnaryCore&) = delete;
  UnaryCore& operator=(const UnaryCore&) = delete;

  // The reactor to return from the method handler, exactly once.
  grpc::ServerUnaryReactor* reactor() const { return reactor_for_grpc_; }

  // Replies with `message` and OK. False when the call was already over.
  bool Finish(const google::protobuf::MessageLite& message);
  // Ends with `status` (must not be OK: an OK reply needs a message).
  bool Fail(grpc::Status status);

  // Runs `hook` once if the client cancels or goes away before the reply; at
  // once if it already has.
  void OnCancel(std::function<void()> hook);
  bool IsOpen() const;
  const CallInfo& call() const { return call_; }

  // Reaction, called by the reactor only.
  void HandleCancel();

 private:
  UnaryCore(CallInfo call, grpc::ByteBuffer* response);
  // Claims the one finish; returns the reactor to finish, or null.
  grpc::ServerUnaryReactor* ClaimFinish() ABSL_LOCKS_EXCLUDED(mu_);

  const CallInfo call_;
  grpc::ServerUnaryReactor* reactor_for_grpc_ = nullptr;  // set once in Start

  mutable absl::Mutex mu_;
  grpc::ServerUnaryReactor* reactor_ ABSL_GUARDED_BY(mu_) = nullptr;  // null once finished
  grpc::ByteBuffer* response_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::function<void()>> cancel_hooks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gravity::server::internal

#endif  // GRAVITY_SERVER_INTERNAL_UNARY_CORE_H_
