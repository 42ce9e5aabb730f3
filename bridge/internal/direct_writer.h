// DirectWriter: lets a stream's events leave on the gRPC thread that read
// them, with one non-blocking send, instead of a hop to the connection's
// strand. At one event per write (a stream that is not busy), the hop — a
// post, a thread wake-up, an Asio write operation — cost about as much as
// everything else the bridge does for the event.
//
// A busy stream is better served by batching: an event that follows a
// direct send within kBatchGap is refused (TrySend answers kNo), so events
// gather in the relay's read-ahead and the session writes them as one.
//
// The session enables it while nothing else may be written (headers out, no
// Asio write in flight, stream not over) and disables it before it writes
// anything itself or closes the socket. When the socket takes only part of a
// chunk, the rest is kept (TakeLeftover) and the writer disables itself: the
// session then writes it first, through Asio, with its write timeout.
//
// Thread-safety: all methods are thread-safe (one mutex, never held across
// anything but the send itself).
#ifndef GRAVITY_BRIDGE_INTERNAL_DIRECT_WRITER_H_
#define GRAVITY_BRIDGE_INTERNAL_DIRECT_WRITER_H_

#include <chrono>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace gravity::bridge::internal {

class DirectWriter {
 public:
  // `fd`: the connection's socket. `chunked`: frame each send as one HTTP/1.1
  // chunk (false for an HTTP/1.0 client: raw bytes).
  void Enable(int fd, bool chunked);
  // After it returns, no send is running or will run until Enable.
  void Disable();

  // Closer than this to the last direct send, events are batched instead.
  static constexpr std::chrono::microseconds kBatchGap{250};

  enum class Sent {
    kNo,      // disabled, batching, or the socket took nothing: nothing sent
    kAll,     // the whole chunk is in the socket
    kPartly,  // the rest is kept as leftover and the writer disabled itself
  };
  // Sends `body` (`events` events) as one chunk if enabled. A socket that
  // takes no byte (full, or broken) is kNo too, and the writer disables
  // itself: the session's Asio write then finds out which, with its timeout.
  Sent TrySend(absl::string_view body, int events);

  // The framed bytes a partial send left, to be written before anything else,
  // and the events among them (not yet sent: the session counts them once it
  // has written them).
  struct Leftover {
    std::string bytes;
    int events = 0;
  };
  Leftover TakeLeftover();

  // Whether a byte left since the last call (keep-alive comments are for idle
  // streams; a send that failed is no sign of life).
  bool SentSinceLastAsked();

 private:
  absl::Mutex mu_;
  int fd_ ABSL_GUARDED_BY(mu_) = -1;  // -1: disabled
  bool chunked_ ABSL_GUARDED_BY(mu_) = true;
  bool sent_ ABSL_GUARDED_BY(mu_) = false;
  std::chrono::steady_clock::time_point last_send_ ABSL_GUARDED_BY(mu_);
  std::string leftover_ ABSL_GUARDED_BY(mu_);
  int leftover_events_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_DIRECT_WRITER_H_
