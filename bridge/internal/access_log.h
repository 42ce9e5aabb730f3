// AccessLog: one structured line per stream end, written by a thread of its
// own so that no Asio handler or gRPC reaction waits on disk I/O.
//
// Lines go through a bounded queue; when the writer cannot keep up, lines are
// dropped and counted (never queued without bound, never blocking a caller).
// The caller decides what goes in a line: the bridge logs the route (never the
// raw target, which may hold ?access_token=), never a header value.
// Thread-safety: Write is thread-safe; construction and destruction are not
// concurrent with it.
#ifndef GRAVITY_BRIDGE_INTERNAL_ACCESS_LOG_H_
#define GRAVITY_BRIDGE_INTERNAL_ACCESS_LOG_H_

#include <atomic>
#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace gravity::bridge::internal {

class AccessLog {
 public:
  // "-" is standard error; anything else a file opened for appending.
  // `dropped` counts lines dropped.
  static absl::StatusOr<std::unique_ptr<AccessLog>> Open(const std::string& path,
                                                         std::atomic<int64_t>* dropped);
  ~AccessLog();  // writes what is queued, then stops the thread

  // Queues `line` (without its newline).
  void Write(std::string line);

 private:
  static constexpr size_t kMaxQueued = 10000;

  AccessLog(std::FILE* file, bool owned, std::atomic<int64_t>* dropped);
  void Run();
  static bool HasWork(AccessLog* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_);

  std::FILE* const file_;
  const bool owned_;
  std::atomic<int64_t>* const dropped_;
  absl::Mutex mu_;
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread writer_;
};

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_ACCESS_LOG_H_
