#include "server/internal/stream_core.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/impl/codegen/proto_utils.h"

namespace gravity::server::internal {

namespace {

// gRPC owns it: deleted in OnDone, after the call is finished.
class StreamReactor final : public StreamCore::Reactor {
 public:
  explicit StreamReactor(std::shared_ptr<StreamCore> core) : core_(std::move(core)) {}

  void OnWriteDone(bool ok) override { core_->HandleWriteDone(ok); }
  void OnCancel() override { core_->HandleCancel(); }
  void OnDone() override {
    core_->HandleDone();
    delete this;
  }

 private:
  const std::shared_ptr<StreamCore> core_;
};

}  // namespace

StreamCore::StreamCore(CallInfo call, StreamOptions options, std::weak_ptr<TimerQueue> timers)
    : call_(std::move(call)), options_(options), timer_queue_(std::move(timers)) {}

std::shared_ptr<StreamCore> StreamCore::Start(CallInfo call, StreamOptions options,
                                              std::weak_ptr<TimerQueue> timers) {
  auto core = std::make_shared<StreamCore>(std::move(call), options, std::move(timers));
  auto* reactor = new StreamReactor(core);
  core->reactor_for_grpc_ = reactor;
  absl::MutexLock lock(&core->mu_);
  core->reactor_ = reactor;
  return core;
}

void StreamCore::Accept() {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    if (decided_) return;
    decided_ = true;
    actions.send_metadata = true;
    ContinueLocked(actions);
  }
  Apply(std::move(actions));
  const absl::Time expire_at = call_.credentials_expire_at();
  if (expire_at != absl::InfiniteFuture()) {
    // Not an error of the stream: gravity-bridge cuts it with `retry:` and
    // the client comes back with a fresh token, resuming from its last event.
    AddTimer(std::max(expire_at - absl::Now(), absl::ZeroDuration()), absl::ZeroDuration(),
             [weak = weak_from_this()] {
               if (std::shared_ptr<StreamCore> core = weak.lock()) {
                 core->EndFromServer(grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                                  std::string(kCredentialsExpiredMessage)));
               }
             });
  }
}

void StreamCore::Reject(grpc::Status status) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    if (decided_) return;
    decided_ = true;
    ended_ = true;
    final_status_ = std::move(status);
    queue_.clear();
    queued_bytes_ = 0;
    actions.timers = std::move(timers_);
    ContinueLocked(actions);
  }
  Apply(std::move(actions));
}

bool StreamCore::Send(const google::protobuf::MessageLite& message) {
  grpc::ByteBuffer buffer;
  bool own_buffer = false;
  grpc::Status serialized = grpc::SerializationTraits<google::protobuf::MessageLite>::Serialize(
      message, &buffer, &own_buffer);
  if (!serialized.ok()) {
    Close(serialized);
    return false;
  }
  return SendSerialized(std::move(buffer));
}

bool StreamCore::SendSerialized(grpc::ByteBuffer buffer) {
  const size_t bytes = buffer.Length();
  Actions actions;
  bool accepted = false;
  {
    absl::MutexLock lock(&mu_);
    if (ended_) return false;
    const bool over_count = queue_.size() >= options_.max_queued_messages;
    const bool over_bytes = !queue_.empty() && queued_bytes_ + bytes > options_.max_queued_bytes;
    if (over_count || over_bytes) {
      // UNAVAILABLE, not RESOURCE_EXHAUSTED: a slow consumer is cut like an
      // outage, and clients (the bridge's `retry:` cut, @gravity/client, the
      // C++ client) resume after their last event id instead of stopping for
      // good (docs/wire-contract.md, "Slow consumers").
      AbortLocked(grpc::Status(
                      grpc::StatusCode::UNAVAILABLE,
                      absl::StrCat("client too slow: ", queue_.size(), " messages (", queued_bytes_,
                                   " bytes) queued; resume from your last event id")),
                  actions);
    } else {
      queue_.push_back(std::move(buffer));
      queued_bytes_ += bytes;
      accepted = true;
      if (BackloggedLocked()) was_backlogged_ = true;
      ContinueLocked(actions);
    }
  }
  Apply(std::move(actions));
  return accepted;
}

void StreamCore::Close(grpc::Status status) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    if (ended_) return;
    ended_ = true;
    final_status_ = std::move(status);
    actions.timers = std::move(timers_);
    ContinueLocked(actions);
  }
  Apply(std::move(actions));
}

void StreamCore::EndFromServer(grpc::Status status) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    if (ended_) return;
    ended_ = true;
    final_status_ = std::move(status);
    actions.cancel_hooks = std::move(cancel_hooks_);
    actions.timers = std::move(timers_);
    ContinueLocked(actions);
  }
  Apply(std::move(actions));
}

void StreamCore::OnCancel(std::function<void()> hook) {
  {
    absl::MutexLock lock(&mu_);
    if (!ended_) {
      cancel_hooks_.push_back(std::move(hook));
      return;
    }
  }
  // Registered after the stream already ended on its own: nothing to cancel.
}

void StreamCore::OnDrained(std::function<void()> hook) {
  absl::MutexLock lock(&mu_);
  drained_hook_.swap(hook);  // the old hook is destroyed after the lock
}

void StreamCore::AddTimer(absl::Duration delay, absl::Duration period, std::function<void()> fn) {
  std::shared_ptr<TimerQueue> queue = timer_queue_.lock();
  if (queue == nullptr) return;
  absl::MutexLock lock(&mu_);
  if (ended_) return;
  timers_.push_back(queue->Schedule(delay, period, std::move(fn)));
}

bool StreamCore::IsOpen() const {
  absl::MutexLock lock(&mu_);
  return !ended_;
}

size_t StreamCore::Queued() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

bool StreamCore::Backlogged() const {
  absl::MutexLock lock(&mu_);
  return BackloggedLocked();
}

bool StreamCore::BackloggedLocked() const {
  return queue_.size() >= options_.max_queued_messages / 2 ||
         queued_bytes_ >= options_.max_queued_bytes / 2;
}

void StreamCore::HandleWriteDone(bool ok) {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      AbortLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"), actions);
    } else {
      ContinueLocked(actions);
      if (was_backlogged_ && queue_.empty() && !ended_) {
        was_backlogged_ = false;
        actions.drained = drained_hook_;
      }
    }
  }
  Apply(std::move(actions));
}

void StreamCore::HandleCancel() {
  Actions actions;
  {
    absl::MutexLock lock(&mu_);
    AbortLocked(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"), actions);
  }
  Apply(std::move(actions));
}

void StreamCore::HandleDone() {
  Actions actions;
  // Hooks that never fired are dropped, outside the lock: they may own handles
  // of this stream, or state whose destructor calls into it.
  std::vector<std::function<void()>> unfired_hooks;
  std::function<void()> drained_hook;
  {
    absl::MutexLock lock(&mu_);
    reactor_ = nullptr;
    ended_ = true;
    queue_.clear();
    queued_bytes_ = 0;
    actions.timers = std::move(timers_);
    unfired_hooks.swap(cancel_hooks_);
    drained_hook.swap(drained_hook_);
  }
  Apply(std::move(actions));
  if (on_done_) on_done_();
}

void StreamCore::AbortLocked(grpc::Status status, Actions& actions) {
  if (ended_ && (finish_started_ || queue_.empty())) {
    // Already ending on its own terms; nothing queued is lost.
    ContinueLocked(actions);
    return;
  }
  ended_ = true;
  final_status_ = std::move(status);
  queue_.clear();
  queued_bytes_ = 0;
  actions.cancel_hooks = std::move(cancel_hooks_);
  actions.timers = std::move(timers_);
  ContinueLocked(actions);
}

void StreamCore::ContinueLocked(Actions& actions) {
  if (!decided_ || writing_ || finish_started_ || reactor_ == nullptr) return;
  if (!queue_.empty()) {
    in_flight_ = std::move(queue_.front());
    queue_.pop_front();
    queued_bytes_ -= in_flight_.Length();
    writing_ = true;
    actions.start_write = true;
  } else if (ended_) {
    finish_started_ = true;
    actions.finish = final_status_;
  }
}

void StreamCore::Apply(Actions actions) {
  // reactor_for_grpc_ stays valid here: OnDone cannot run before the Finish
  // below, and after a write or finish is started nothing else is.
  if (actions.send_metadata) reactor_for_grpc_->StartSendInitialMetadata();
  if (actions.start_write) reactor_for_grpc_->StartWrite(&in_flight_);
  if (actions.finish) reactor_for_grpc_->Finish(std::move(*actions.finish));
  if (!actions.timers.empty()) {
    if (std::shared_ptr<TimerQueue> queue = timer_queue_.lock()) {
      for (TimerQueue::TimerId id : actions.timers) queue->Cancel(id);
    }
  }
  for (auto& hook : actions.cancel_hooks) hook();
  if (actions.drained) actions.drained();
}

}  // namespace gravity::server::internal
