// ConnectionWriter: the one writer of an HTTP/1.1 connection's transport. It
// owns the output queue, the Asio write in flight and the DirectWriter
// hand-off; the session asks it to send and never touches the socket's write
// side itself.
//
// Invariants (checked in debug and sanitizer builds):
// - at most one Asio write is in flight; what is queued meanwhile leaves as
//   the next single write;
// - the DirectWriter is enabled only while no Asio write is in flight and
//   nothing is queued, so a direct send can never overtake queued bytes; every
//   Flush disables it first and puts what a partial direct send left in front
//   of the queue.
//
// Thread-safety: the connection's strand only, except the DirectWriter,
// which the stream's relay uses from gRPC threads (it is thread-safe).
#ifndef GRAVITY_BRIDGE_INTERNAL_CONNECTION_WRITER_H_
#define GRAVITY_BRIDGE_INTERNAL_CONNECTION_WRITER_H_

#include <cassert>
#include <cstddef>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "boost/asio/write.hpp"
#include "bridge/internal/chunked.h"
#include "bridge/internal/direct_writer.h"
#include "bridge/internal/transport.h"

namespace gravity::bridge::internal {

class ConnectionWriter {
 public:
  // How a response's body is framed.
  enum class Framing {
    kChunked,  // HTTP/1.1: each piece one chunk
    kRaw,      // HTTP/1.0: the bytes as they are, the connection's close ends them
    kNone,     // a HEAD response: no body at all
  };

  explicit ConnectionWriter(Transport& transport) : transport_(transport) {}

  // Queues bytes as they are (a response head, a plain response's body).
  void Append(absl::string_view bytes) { out_.append(bytes.data(), bytes.size()); }
  // Queues one piece of a streamed body, framed per `framing`.
  void AppendBody(absl::string_view body) {
    if (framing_ == Framing::kChunked) {
      AppendChunk(body, &out_);
    } else if (framing_ == Framing::kRaw) {
      out_.append(body.data(), body.size());
    }
  }
  // Queues the end of a streamed body (the last chunk, when chunked).
  void AppendBodyEnd() {
    if (framing_ == Framing::kChunked) out_.append(kLastChunk.data(), kLastChunk.size());
  }
  void set_framing(Framing framing) { framing_ = framing; }

  bool writing() const { return writing_; }
  bool queued() const { return !out_.empty(); }
  // Bytes of the Asio write in flight (0 when none).
  size_t in_flight_bytes() const { return writing_ ? in_flight_.size() : 0; }

  // Starts writing what is queued (after what a direct send left), unless a
  // write is in flight (then it leaves with the next one) or nothing is
  // queued. `on_written(error_code)` runs on the strand when the write ends;
  // it must hold the session. Returns the events of a partial direct send
  // that this write carries (for the caller's count).
  template <class Handler>
  int Flush(Handler&& on_written) {
    if (writing_) return 0;
    const int leftover_events = StopDirect();
    if (out_.empty()) return leftover_events;
    in_flight_.swap(out_);
    out_.clear();
    writing_ = true;
    boost::asio::async_write(transport_, boost::asio::buffer(in_flight_),
                             [this, handler = std::forward<Handler>(on_written)](
                                 boost::system::error_code ec, size_t) mutable {
                               writing_ = false;
                               in_flight_.clear();
                               // A big response's buffer is not kept for the connection's life.
                               if (in_flight_.capacity() > 64 * 1024)
                                 std::string().swap(in_flight_);
                               handler(ec);
                             });
    return leftover_events;
  }

  // Lets the stream's events leave from gRPC threads (see DirectWriter):
  // only while nothing is queued or in flight, and never over TLS (only the
  // strand may use the SSL object).
  void EnableDirect() {
    assert(!writing_ && out_.empty());
    if (transport_.tls()) return;
    direct_.Enable(transport_.socket().native_handle(), framing_ == Framing::kChunked);
  }
  // After it returns no direct send runs; what a partial one left is put in
  // front of the queue. Returns the events among those bytes.
  int StopDirect() {
    direct_.Disable();
    DirectWriter::Leftover leftover = direct_.TakeLeftover();
    if (!leftover.bytes.empty()) out_.insert(0, leftover.bytes);
    return leftover.events;
  }
  // For the stream's relay, which sends through it from gRPC threads (null
  // over TLS).
  DirectWriter* direct() { return transport_.tls() ? nullptr : &direct_; }
  // Whether a direct send put a byte out since the last call.
  bool DirectSentSinceLastAsked() { return direct_.SentSinceLastAsked(); }

 private:
  Transport& transport_;
  Framing framing_ = Framing::kChunked;
  DirectWriter direct_;
  std::string out_;        // queued
  std::string in_flight_;  // being written
  bool writing_ = false;
};

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_CONNECTION_WRITER_H_
