// WaitFor: polls a condition until it holds or a timeout passes. For tests
// that wait on state with no notification to block on (a gauge coming back
// to zero, a child process exiting); prefer absl::Notification where there
// is one.
#ifndef GRAVITY_TESTS_TESTING_WAIT_FOR_H_
#define GRAVITY_TESTS_TESTING_WAIT_FOR_H_

#include <algorithm>
#include <functional>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace gravity::testing {

// Calls `condition` until it returns true (then returns true) or `timeout`
// has passed (then returns false). It is checked at once, then every few
// milliseconds (1 ms at first, backing off to 10 ms), and once more at the
// deadline, so a condition that holds in time is never reported late.
inline bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration pause = absl::Milliseconds(1);
  while (!condition()) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    absl::SleepFor(std::min(pause, left));
    pause = std::min(pause * 2, absl::Milliseconds(10));
  }
  return true;
}

}  // namespace gravity::testing

#endif  // GRAVITY_TESTS_TESTING_WAIT_FOR_H_
