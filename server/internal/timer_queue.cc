#include "server/internal/timer_queue.h"

namespace gravity::server::internal {

TimerQueue::TimerQueue() : thread_([this] { Run(); }) {}

TimerQueue::~TimerQueue() { Stop(); }

void TimerQueue::Stop() {
  std::map<Key, Timer> dropped;  // destroyed without the lock: they may own streams
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    dropped.swap(timers_);
    due_.clear();
  }
  if (!thread_.joinable()) return;
  // Only when the owner never called Stop and the last reference went away in
  // a callback, on this very thread: joining would deadlock.
  if (thread_.get_id() == std::this_thread::get_id()) {
    thread_.detach();
  } else {
    thread_.join();
  }
}

TimerQueue::TimerId TimerQueue::Schedule(absl::Duration delay, absl::Duration period,
                                         std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  const TimerId id = next_id_++;
  if (stopping_) return id;
  const absl::Time due = absl::Now() + delay;
  timers_.emplace(Key{due, id}, Timer{period, std::move(fn)});
  due_.emplace(id, due);
  return id;
}

void TimerQueue::Cancel(TimerId id) {
  std::function<void()> dropped;  // destroyed after the lock: it may own a stream
  absl::MutexLock lock(&mu_);
  auto it = due_.find(id);
  if (it == due_.end()) return;
  // A periodic timer that is running right now is not in timers_; erasing its
  // due_ entry is what keeps it from being scheduled again.
  auto timer = timers_.find(Key{it->second, id});
  if (timer != timers_.end()) {
    dropped = std::move(timer->second.fn);
    timers_.erase(timer);
  }
  due_.erase(it);
}

void TimerQueue::Run() {
  // A bounded wait: wakes at the next deadline, when a sooner timer arrives or
  // when the queue stops, and at least once a second regardless.
  constexpr absl::Duration kMaxSleep = absl::Seconds(1);
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    const absl::Time now = absl::Now();
    if (timers_.empty() || timers_.begin()->first.first > now) {
      absl::Time wake = now + kMaxSleep;
      if (!timers_.empty()) wake = std::min(wake, timers_.begin()->first.first);
      const size_t count = timers_.size();
      const absl::Time first =
          timers_.empty() ? absl::InfiniteFuture() : timers_.begin()->first.first;
      auto changed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || timers_.size() != count ||
               (!timers_.empty() && timers_.begin()->first.first != first);
      };
      mu_.AwaitWithDeadline(absl::Condition(&changed), wake);
      continue;
    }
    auto node = timers_.extract(timers_.begin());
    const TimerId id = node.key().second;
    Timer timer = std::move(node.mapped());
    due_.erase(id);
    // Still "scheduled" while it runs, so Cancel from inside or beside the
    // callback stops the next period.
    if (timer.period > absl::ZeroDuration()) due_.emplace(id, absl::InfiniteFuture());
    mu_.Unlock();
    timer.fn();
    mu_.Lock();
    auto pending = due_.find(id);
    if (timer.period > absl::ZeroDuration() && pending != due_.end() && !stopping_) {
      // Next run keeps the cadence; if the callback overran, it runs now.
      const absl::Time next = std::max(node.key().first + timer.period, absl::Now());
      pending->second = next;
      timers_.emplace(Key{next, id}, std::move(timer));
    } else {
      if (pending != due_.end()) due_.erase(pending);
      mu_.Unlock();
      timer.fn = nullptr;  // may release the last handle of a stream
      mu_.Lock();
    }
  }
}

}  // namespace gravity::server::internal
