#include "server/log.h"

#include <iostream>
#include <memory>
#include <string>
#include <utility>

#include "absl/synchronization/mutex.h"

namespace gravity::server {

namespace {

struct SinkSlot {
  absl::Mutex mu;
  // A shared_ptr so Log can call the sink without holding `mu`: a slow sink
  // never serialises the library's threads on this lock.
  std::shared_ptr<const LogSink> sink ABSL_GUARDED_BY(mu) =
      std::make_shared<const LogSink>(&LogToStderr);
};

SinkSlot& Slot() {
  // Never destroyed: library threads may log while the process exits.
  static SinkSlot* const slot = new SinkSlot;
  return *slot;
}

}  // namespace

void SetLogSink(LogSink sink) {
  std::shared_ptr<const LogSink> next =
      sink ? std::make_shared<const LogSink>(std::move(sink)) : nullptr;
  SinkSlot& slot = Slot();
  absl::MutexLock lock(&slot.mu);
  slot.sink = std::move(next);
}

void LogToStderr(LogSeverity /*severity*/, absl::string_view message) {
  // One write of the whole line, so lines from several threads do not mix.
  std::string line = "gravity: ";
  line.append(message.data(), message.size());
  line.push_back('\n');
  std::cerr << line << std::flush;
}

void Log(LogSeverity severity, absl::string_view message) {
  std::shared_ptr<const LogSink> sink;
  {
    SinkSlot& slot = Slot();
    absl::MutexLock lock(&slot.mu);
    sink = slot.sink;
  }
  if (sink != nullptr) (*sink)(severity, message);
}

}  // namespace gravity::server
