// StreamCore: the untyped state of one server stream, shared by its handles
// (gravity::server::Stream<T>) and its gRPC reactor.
//
// Owners: handles hold it by shared_ptr; the reactor, which gRPC owns and
// deletes in OnDone, holds it too. The core points back to the reactor only
// until OnDone, and only starts reactor operations while the call is
// unfinished, so a handle kept by a timer or another thread never touches a
// deleted reactor.
//
// Thread-safe: every public method may be called from any thread. No lock is
// held while calling into gRPC, the timer queue or user hooks.
#ifndef GRAVITY_SERVER_INTERNAL_STREAM_CORE_H_
#define GRAVITY_SERVER_INTERNAL_STREAM_CORE_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "google/protobuf/message_lite.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"
#include "grpcpp/support/status.h"
#include "server/call_info.h"
#include "server/internal/timer_queue.h"
#include "server/stream_options.h"

namespace gravity::server::internal {

class StreamCore : public std::enable_shared_from_this<StreamCore> {
 public:
  using Reactor = grpc::ServerWriteReactor<grpc::ByteBuffer>;

  // Creates the core and its reactor. Until Accept or Reject, Send queues and
  // nothing goes out, so a handler may still turn the call down.
  static std::shared_ptr<StreamCore> Start(CallInfo call, StreamOptions options,
                                           std::weak_ptr<TimerQueue> timers);

  // The reactor to return from the method handler, exactly once.
  Reactor* reactor() const { return reactor_for_grpc_; }

  // Sends the initial metadata at once, so the client learns the call was
  // accepted before the first message, then starts writing. When the call's
  // credentials expire (CallInfo::credentials_expire_at), the stream ends
  // then with UNAUTHENTICATED.
  void Accept();
  // Ends the call with `status` and no initial metadata or message, as a
  // guard rejection does.
  void Reject(grpc::Status status);

  // Serializes on the caller's thread and queues. False once the stream ended.
  bool Send(const google::protobuf::MessageLite& message);
  // The same with the message already serialized (a topic's broadcast: the
  // bytes are shared, not copied).
  bool SendSerialized(grpc::ByteBuffer buffer);
  // Ends after the queued messages have gone out. Later calls do nothing.
  void Close(grpc::Status status);

  // Ends from the server's side (a shutdown, the call's credentials
  // expiring): what is queued still goes out, then `status`; the cancel hooks
  // fire so producers stop.
  void EndFromServer(grpc::Status status);
  // Called once from OnDone; the owning service forgets the stream there.
  void set_on_done(std::function<void()> on_done) { on_done_ = std::move(on_done); }

  void OnCancel(std::function<void()> hook);
  void OnDrained(std::function<void()> hook);
  // `fn` runs on the timer thread until the stream ends (period 0: once).
  void AddTimer(absl::Duration delay, absl::Duration period, std::function<void()> fn);

  bool IsOpen() const;
  size_t Queued() const;
  bool Backlogged() const;
  const CallInfo& call() const { return call_; }

  // Reactions, called by the reactor only.
  void HandleWriteDone(bool ok);
  void HandleCancel();
  void HandleDone();

  StreamCore(CallInfo call, StreamOptions options, std::weak_ptr<TimerQueue> timers);

 private:
  // What a locked section decided; carried out by Apply after unlocking.
  struct Actions {
    bool send_metadata = false;
    bool start_write = false;
    std::optional<grpc::Status> finish;
    std::vector<std::function<void()>> cancel_hooks;
    std::vector<TimerQueue::TimerId> timers;
    std::function<void()> drained;
  };

  void Apply(Actions actions);
  // Ends the stream because of its consumer: drops the queue, fires the
  // cancel hooks and finishes with `status` once no write is in flight.
  void AbortLocked(grpc::Status status, Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts the next write or the finish, whichever is due.
  void ContinueLocked(Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool BackloggedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const CallInfo call_;
  const StreamOptions options_;
  const std::weak_ptr<TimerQueue> timer_queue_;
  Reactor* reactor_for_grpc_ = nullptr;  // set once in Start
  std::function<void()> on_done_;        // set before the reactor is returned

  mutable absl::Mutex mu_;
  Reactor* reactor_ ABSL_GUARDED_BY(mu_) = nullptr;  // null after OnDone
  std::deque<grpc::ByteBuffer> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // The message of the write in flight; gRPC reads it until OnWriteDone.
  grpc::ByteBuffer in_flight_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  // Accept or Reject was called: the reactor may start operations.
  bool decided_ ABSL_GUARDED_BY(mu_) = false;
  bool was_backlogged_ ABSL_GUARDED_BY(mu_) = false;
  // Set when Close or an abort ends the stream: Send refuses from then on.
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_started_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> cancel_hooks_ ABSL_GUARDED_BY(mu_);
  std::function<void()> drained_hook_ ABSL_GUARDED_BY(mu_);
  std::vector<TimerQueue::TimerId> timers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gravity::server::internal

#endif  // GRAVITY_SERVER_INTERNAL_STREAM_CORE_H_
