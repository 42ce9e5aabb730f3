#include "bridge/internal/access_log.h"

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace gravity::bridge::internal {

absl::StatusOr<std::unique_ptr<AccessLog>> AccessLog::Open(const std::string& path,
                                                           std::atomic<int64_t>* dropped) {
  if (path == "-") return std::unique_ptr<AccessLog>(new AccessLog(stderr, false, dropped));
  std::FILE* file = std::fopen(path.c_str(), "ae");
  if (file == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("--access_log=", path, ": cannot open: ", std::strerror(errno)));
  }
  return std::unique_ptr<AccessLog>(new AccessLog(file, true, dropped));
}

AccessLog::AccessLog(std::FILE* file, bool owned, std::atomic<int64_t>* dropped)
    : file_(file), owned_(owned), dropped_(dropped), writer_([this] { Run(); }) {}

AccessLog::~AccessLog() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  writer_.join();
  if (owned_) std::fclose(file_);
}

void AccessLog::Write(std::string line) {
  absl::MutexLock lock(&mu_);
  if (queue_.size() >= kMaxQueued) {
    dropped_->fetch_add(1, std::memory_order_relaxed);
    return;
  }
  queue_.push_back(std::move(line));
}

bool AccessLog::HasWork(AccessLog* self) { return self->stopping_ || !self->queue_.empty(); }

void AccessLog::Run() {
  std::vector<std::string> batch;
  while (true) {
    bool stopping;
    {
      absl::MutexLock lock(&mu_);
      // Bounded wait: the stop flag is looked at every second at least.
      mu_.AwaitWithTimeout(absl::Condition(&AccessLog::HasWork, this), absl::Seconds(1));
      stopping = stopping_;
      while (!queue_.empty()) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    for (const std::string& line : batch) {
      std::fwrite(line.data(), 1, line.size(), file_);
      std::fputc('\n', file_);
    }
    if (!batch.empty()) std::fflush(file_);
    batch.clear();
    if (stopping) return;
  }
}

}  // namespace gravity::bridge::internal
