// The gravity server library's one logging hook. The library reports through
// it what it cannot return as a status because no caller is waiting: a Topic's
// Redis reader losing and regaining Redis, an event in the log that does not
// parse. Everything else reaches the caller as an absl::Status.
//
//   gravity::server::SetLogSink([](gravity::server::LogSeverity severity,
//                                  absl::string_view message) { my_logger.Log(...); });
//   gravity::server::SetLogSink(nullptr);   // silent (tests that provoke outages)
//
// By default lines go to stderr as "gravity: <message>", so an application
// that installs nothing still shows an operator that Redis went away.
// (Abseil 20220623 has no absl/log, hence this small hook.)
//
// Thread-safety: SetLogSink and Log may be called from any thread. A sink is
// called from the library's threads (Redis reader, replay, publisher), maybe
// from several at once; it must not block for long and must not call
// SetLogSink. After SetLogSink returns, the previous sink gets no new calls
// (one already running may finish).
#ifndef GRAVITY_SERVER_LOG_H_
#define GRAVITY_SERVER_LOG_H_

#include <functional>

#include "absl/strings/string_view.h"

namespace gravity::server {

enum class LogSeverity { kInfo, kWarning, kError };

using LogSink = std::function<void(LogSeverity, absl::string_view)>;

// Routes the library's log lines to `sink`; nullptr discards them.
void SetLogSink(LogSink sink);
// The default sink: one line on stderr, "gravity: <message>".
void LogToStderr(LogSeverity severity, absl::string_view message);

// For the library itself: hands `message` to the current sink.
void Log(LogSeverity severity, absl::string_view message);

}  // namespace gravity::server

#endif  // GRAVITY_SERVER_LOG_H_
