// TimerQueue: one thread that runs many one-shot and periodic timers.
//
// Streams use it for `Every` and `After`, so a server with thousands of
// streams has one timer thread per service instead of one per stream.
// Callbacks run on the queue's thread, one at a time, outside any lock: they
// must be quick and must not block (Stream::Send never blocks).
//
// Thread-safe: Schedule and Cancel may be called from any thread, including
// from inside a callback.
#ifndef GRAVITY_SERVER_INTERNAL_TIMER_QUEUE_H_
#define GRAVITY_SERVER_INTERNAL_TIMER_QUEUE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace gravity::server::internal {

class TimerQueue {
 public:
  using TimerId = uint64_t;

  TimerQueue();
  // Stop(), unless already stopped.
  ~TimerQueue();

  // Drops the timers not yet run and joins the thread, after a callback that
  // is running returns. Call it from outside the queue's thread (the owner's
  // destructor): after it, the queue may be destroyed from any thread.
  // Later Schedule calls do nothing.
  void Stop();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Runs `fn` after `delay`, then every `period` if `period` > 0.
  TimerId Schedule(absl::Duration delay, absl::Duration period, std::function<void()> fn);

  // After Cancel returns the timer never starts again; a run already under way
  // on the queue's thread finishes.
  void Cancel(TimerId id);

 private:
  struct Timer {
    absl::Duration period;
    std::function<void()> fn;
  };
  using Key = std::pair<absl::Time, TimerId>;

  void Run();

  absl::Mutex mu_;
  std::map<Key, Timer> timers_ ABSL_GUARDED_BY(mu_);
  std::map<TimerId, absl::Time> due_ ABSL_GUARDED_BY(mu_);
  TimerId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace gravity::server::internal

#endif  // GRAVITY_SERVER_INTERNAL_TIMER_QUEUE_H_
