// Http2Session: one HTTP/2 connection of the bridge, over TLS (ALPN h2) or
// cleartext with prior knowledge (h2c). Debian's libnghttp2 is the codec: it
// parses and writes every frame, HPACK, flow control and the protocol's
// checks; this class maps its streams onto the bridge's one stream model.
//
// Each HTTP/2 stream is one request/response, served as an HTTP/1.1 request
// is: the same Router (the request rebuilt as a Beast request), the same
// StreamRelay and EventEncoder, the same limits (max_streams,
// max_streams_per_client, max_unary_calls, the header and body bounds), CORS,
// access log and metrics (exchange.h holds what both codecs decide).
//
// Back-pressure: a stream's encoded events wait in its own small buffer until
// nghttp2 takes them, which it does only while the stream's and the
// connection's flow-control windows are open. While bytes wait there the
// stream takes nothing more from its relay, so its read-ahead fills and its
// upstream call stops reading: a closed window holds the backend back as a
// full socket does, and the other streams go on.
//
// Coalescing: relays' wake-ups are gathered per connection (Wakeups): one
// post to the strand pumps every stream that became ready meanwhile, and one
// write carries their DATA.
//
// Deadlines (one timer): the first request within header_timeout, a request
// whose headers or body crawl (408), the idle timeout between streams, the
// backend's accept timeout, max_stream_duration, a stalled socket write
// (write_timeout: the connection closes) and a stream whose window stays
// closed with bytes waiting (write_timeout: RST_STREAM CANCEL).
//
// Defences on top of nghttp2's own checks: RST_STREAM floods (rapid reset)
// end the connection with GOAWAY past a rate; CONTINUATION floods, SETTINGS
// and PING floods are bounded by nghttp2's options; a header list over
// max_header_bytes is answered 431 without being stored.
//
// Ownership: as Session, pending Asio operations own the session (a read is
// always pending while it is open, the write while one is in flight); gRPC
// threads only post to the strand through weak references.
//
// Thread-safety: the connection's strand only; Drain() may be called from
// any thread.
#ifndef GRAVITY_BRIDGE_INTERNAL_HTTP2_SESSION_H_
#define GRAVITY_BRIDGE_INTERNAL_HTTP2_SESSION_H_

#include <nghttp2/nghttp2.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/steady_timer.hpp"
#include "bridge/internal/bridge_state.h"
#include "bridge/internal/connection.h"
#include "bridge/internal/exchange.h"
#include "bridge/internal/router.h"
#include "bridge/internal/stream_relay.h"
#include "bridge/internal/transport.h"
#include "bridge/internal/upstream_unary_call.h"

namespace gravity::bridge::internal {

class Http2Session : public Connection, public std::enable_shared_from_this<Http2Session> {
 public:
  // `received`: bytes already read from the connection (the h2c sniff).
  // `protocol`: kH2 (TLS) or kH2c.
  Http2Session(Transport transport, std::string received, Protocol protocol,
               std::shared_ptr<BridgeState> state);
  ~Http2Session() override;

  void Start() override;
  void Drain() override;

 private:
  using Clock = std::chrono::steady_clock;
  struct Stream;

  // nghttp2's callbacks (user_data is the session).
  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t name_length, const uint8_t* value, size_t value_length, uint8_t flags,
                      void* user_data);
  static int OnFrameReceived(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int OnDataChunk(nghttp2_session*, uint8_t flags, int32_t stream_id, const uint8_t* data,
                         size_t length, void* user_data);
  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                           void* user_data);
  static ssize_t ReadBody(nghttp2_session*, int32_t stream_id, uint8_t* buffer, size_t length,
                          uint32_t* data_flags, nghttp2_data_source* source, void* user_data);

  Stream* Find(int32_t stream_id);

  // Relays' wake-ups, from gRPC threads: the ids of streams with something
  // new, gathered so that one post to the strand serves every stream that
  // became ready meanwhile (and its events leave in one write). It does not
  // own the session, so a gRPC thread never holds its last reference.
  class Wakeups {
   public:
    Wakeups(std::weak_ptr<Http2Session> session, Transport::executor_type executor)
        : session_(std::move(session)), executor_(std::move(executor)) {}
    // Any thread: notes `stream_id`; posts to the strand unless a post is pending.
    void Wake(int32_t stream_id);
    // Strand: the ids noted since the last call.
    std::vector<int32_t> Take();

   private:
    const std::weak_ptr<Http2Session> session_;
    const Transport::executor_type executor_;
    absl::Mutex mu_;
    std::vector<int32_t> woken_ ABSL_GUARDED_BY(mu_);
    bool posted_ ABSL_GUARDED_BY(mu_) = false;
  };
  // Strand: pumps every stream woken since the last time, then sends.
  void OnWakeups();

  // Reading and writing the connection.
  void Read();
  void OnRead(boost::system::error_code ec, size_t bytes);
  // Feeds received bytes to nghttp2; false when the connection is over.
  bool Receive(const uint8_t* data, size_t length);
  void ScheduleSend();
  void SendPending();
  void OnWritten(boost::system::error_code ec);
  // Closes once nghttp2 has nothing more to read or write (GOAWAY done).
  void CloseIfDone();
  void Close();

  // Requests.
  void Dispatch(Stream& stream);
  void Respond(Stream& stream, PlainResponse response);
  void StartUnary(Stream& stream, UnaryPlan plan);
  void OnUnaryDone(int32_t stream_id, const grpc::Status& status, size_t reply_bytes,
                   const std::string& reply);
  void EndUnary(Stream& stream, bool cancel, int http_status, grpc::StatusCode code);

  // Streams.
  void StartStream(Stream& stream, StreamPlan plan);
  void Pump(Stream& stream);
  void SubmitStreamHead(Stream& stream);
  // Submits a response head (:status, then `fields`, lower-cased); its body,
  // when `with_body`, comes from ReadBody.
  void SubmitHead(Stream& stream, int status, Headers fields, bool with_body);
  void FinishStream(Stream& stream, const grpc::Status& status);
  void CutStream(Stream& stream);
  void WriteStreamClose(Stream& stream, StreamClose close);
  // Queues stream body bytes, through the stream's compressor when it has
  // one (which ends with them when the stream is ending).
  void AppendBody(Stream& stream, const std::string& bytes);
  // Queues bytes as they are for nghttp2 to take.
  void AppendRaw(Stream& stream, const std::string& bytes);
  void ReleaseRelay(Stream& stream);
  void EndStream(Stream& stream);
  // Ends whatever the stream serves (its peer reset it, or the connection ends).
  void EndServing(Stream& stream);

  // Deadlines.
  void ArmTimer(Clock::time_point at);
  void OnTimer();

  Transport transport_;
  const Protocol protocol_;
  const std::shared_ptr<BridgeState> state_;
  nghttp2_session* session_ = nullptr;
  std::string client_address_;
  std::string received_;  // the sniffed bytes, fed at Start

  std::map<int32_t, std::unique_ptr<Stream>> streams_;
  std::shared_ptr<Wakeups> wakeups_;  // made at Start (it needs weak_from_this)
  // Streams whose waiting bytes nghttp2 took in the last send: they may take
  // more events from their relays.
  std::vector<int32_t> drained_;

  std::unique_ptr<uint8_t[]> read_buffer_;
  bool reading_ = false;
  std::string out_;  // the write in flight
  bool writing_ = false;
  bool send_scheduled_ = false;
  bool closed_ = false;
  bool draining_ = false;
  bool closing_ = false;  // a protocol error's GOAWAY is being written; then close

  boost::asio::steady_timer timer_;
  Clock::time_point timer_at_ = Clock::time_point::max();
  Clock::time_point write_deadline_ = Clock::time_point::max();
  // The first request (header_timeout), or the next one (idle_timeout).
  Clock::time_point idle_deadline_ = Clock::time_point::max();
  Clock::time_point next_keepalive_ = Clock::time_point::max();
  std::string events_;  // scratch: events taken from a relay
};

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_HTTP2_SESSION_H_
