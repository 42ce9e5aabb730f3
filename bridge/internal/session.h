// Session: one HTTP/1.1 connection of the bridge, cleartext or TLS (its
// Transport): reads requests (keep-alive, pipelining), asks the Router what
// each means, and serves it: a plain response, a stream through its
// StreamRelay, or a unary call through its UpstreamUnaryCall. What a
// request/response decides is in exchange.h, shared with HTTP/2.
//
// Phases (Phase below; one transition function, Enter, checks each move):
//
//   kAwaitingRequest --first byte--> kReadingRequest --routed--+-> kResponding
//         ^                                                    +-> kCalling ---reply--->
//         kResponding |                                                    +-> kStreaming
//         --ended--> kResponding
//         +------------------- response written, keep-alive ----------------------------+
//   any phase --Close()--> kClosed
//
// The writer: a ConnectionWriter owns the socket's write side (queue, write
// in flight, the DirectWriter that lets events leave from gRPC threads).
//
// The read side: in kAwaitingRequest and kReadingRequest it reads the next
// request. While a request is served (kCalling, kStreaming, kResponding) it
// watches the socket instead: for readability, so that a client that leaves
// is seen at once (its call cancelled, its slots freed), and once bytes of a
// next request are waiting unread, for errors (a reset), since readability
// then says nothing. The waiting request is read when the response is out.
//
// Ownership rule: a session is owned by its pending Asio operations (each
// handler holds a shared_ptr) and by nothing else, so it lives exactly as long
// as it has something to wait for. While it is open, its read side always has
// exactly one operation pending (a read, or a watch); a gRPC completion only
// posts to the strand through a weak reference. Every path that ends a
// session (Close, or the destructor when the bridge stops with handlers
// unrun) ends what it serves: it cancels the upstream call and writes its
// access-log line.
//
// Thread map: everything runs on the connection's strand, except the
// relay's wake-up and a unary call's completion, which are called on gRPC
// threads and only post here, and the DirectWriter's sends, which the relay
// makes on gRPC threads while the writer has it enabled (cleartext only).
#ifndef GRAVITY_BRIDGE_INTERNAL_SESSION_H_
#define GRAVITY_BRIDGE_INTERNAL_SESSION_H_

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http.hpp"
#include "bridge/internal/bridge_state.h"
#include "bridge/internal/connection.h"
#include "bridge/internal/connection_writer.h"
#include "bridge/internal/exchange.h"
#include "bridge/internal/gzip_stream.h"
#include "bridge/internal/router.h"
#include "bridge/internal/stream_relay.h"
#include "bridge/internal/transport.h"
#include "bridge/internal/upstream_unary_call.h"

namespace gravity::bridge::internal {

class Session : public Connection, public std::enable_shared_from_this<Session> {
 public:
  // `received`: bytes already read from the connection (the protocol sniff).
  Session(Transport transport, boost::beast::flat_buffer received,
          std::shared_ptr<BridgeState> state);
  ~Session();

  void Start() override;
  // Asks the session to end, from any thread: an idle connection closes; a
  // stream gets a `retry:` cut; a unary call in flight is cancelled and
  // answered 503 with Retry-After; a response being written ends the
  // connection once it is out; a request being read is answered (503) and
  // the connection closes.
  void Drain() override;

 private:
  enum class Phase {
    kAwaitingRequest,  // keep-alive: no byte of the next request yet (idle timeout)
    kReadingRequest,   // a request's head or body is being read (header timeout)
    kCalling,          // a unary call is upstream; nothing written yet
    kStreaming,        // a stream's relay is live; its events are being written
    kResponding,       // a plain response or a stream's last bytes are queued or being written
    kClosed,
  };
  // What the read side has pending.
  enum class ReadSide {
    kNone,         // nothing (only while the session is being closed)
    kRequest,      // reading a request, or waiting for its first byte
    kWatch,        // waiting for readability: a client leaving, or a next request
    kWatchErrors,  // a next request's bytes wait unread: waiting for a reset
  };
  enum Deadline { kRead, kWrite, kKeepAlive, kAccept, kDuration, kDeadlines };
  using Clock = std::chrono::steady_clock;

  // The one place the phase changes; checks that the move is one of the
  // diagram's.
  void Enter(Phase next);
  // Debug check of the ownership rule at the end of each handler.
  void CheckOwned() const;

  // Reading requests.
  void AwaitRequest();
  void ReadRequest();
  void OnReadHeader(boost::beast::error_code ec);
  void OnReadRequest(boost::beast::error_code ec);
  void HandleRequest(HttpRequest request);

  // The read side while serving.
  void EnsureWatching();
  // The common start of both watches' handlers: true when the handler has
  // nothing more to do (closed, or the response is out and the watch handed
  // over to the next request's read).
  bool WatchEnded();
  void Watch();
  void OnWatch(boost::beast::error_code ec);
  void WatchErrors();
  void OnWatchErrors(boost::beast::error_code ec);
  // After a response: reads the next request, or closes.
  void ContinueConnection();
  // The read side's turn to read the next request (the watch handed over).
  void NextRequest();

  // Unary calls.
  void StartUnary(UnaryPlan plan);
  void OnUnaryDone(const grpc::Status& status, size_t reply_bytes, const std::string& reply);
  // Ends the call in flight: cancelled upstream when `cancel`, its limit slot
  // given back, its access-log line written.
  void EndUnary(bool cancel, int http_status, grpc::StatusCode code);

  // Plain responses.
  void Respond(PlainResponse response);

  // Streams.
  void StartStream(StreamPlan plan);
  void Pump();
  void FinishStream(const grpc::Status& status);
  // Ends the stream early with a `retry:` hint and no `end`; then closes.
  void CutStream();
  void AppendStreamHead();
  // The stream's bookkeeping ends: relay released (its call cancelled unless
  // over), slots and gauges given back, the access-log line written.
  void EndStream();
  // Releases the relay (cancelling its call unless over), keeping its counts.
  void ReleaseRelay();

  // A stream's end (CloseStream, CutStreamBytes) written out.
  void WriteStreamClose(StreamClose close);
  // Queues stream body bytes, through the stream's compressor when it has one.
  void AppendStreamBody(absl::string_view bytes);

  // Writing.
  void Flush();
  // Flush for a response's last bytes; when nothing is left to write, the
  // response is out at once.
  void FlushResponse();
  // The response is out: the next request, or close.
  void ResponseOut();
  void OnWritten(boost::beast::error_code ec);

  // The deadlines: one timer for all of them.
  void SetDeadline(Deadline which, absl::Duration after);
  void ClearDeadline(Deadline which) { deadlines_[which] = Clock::time_point::max(); }
  void ArmTimer();
  void OnDeadlines();

  void Close();
  // Ends whatever is served (used by Close and the destructor).
  void EndServing();

  Transport transport_;
  const std::shared_ptr<BridgeState> state_;
  Phase phase_ = Phase::kAwaitingRequest;
  ReadSide read_side_ = ReadSide::kNone;
  ConnectionWriter writer_;

  // The request being read, and the connection's properties.
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  size_t header_fields_ = 0;  // fields of the request's head, before any trailer
  bool head_read_ = false;    // the request's head is in; its body is being read
  bool read_timed_out_ = false;
  std::string client_address_;
  bool keep_alive_ = true;
  bool close_after_write_ = false;  // the response being written ends the connection
  bool head_only_ = false;          // a HEAD request: headers, no body
  bool http10_ = false;             // an HTTP/1.0 client: no chunked encoding; close at the end
  std::string origin_;              // of the request being served

  // The deadline mechanism.
  boost::asio::steady_timer timer_;
  Clock::time_point timer_at_ = Clock::time_point::max();
  std::array<Clock::time_point, kDeadlines> deadlines_;

  // The stream being served (kStreaming).
  std::unique_ptr<StreamRelay> relay_;
  // Held exactly while the stream counts against max_streams (engaged even
  // when there is no per-client limit).
  std::optional<ClientStreamCounter::Slot> client_slot_;
  std::string events_;  // scratch: events taken from the relay
  bool wants_event_stream_ = false;
  StreamFormat format_ = StreamFormat::kSse;
  absl::Duration retry_;              // this stream's jittered retry: hint
  std::unique_ptr<GzipStream> gzip_;  // a compressed stream's compressor
  std::string compressed_;            // scratch: its output
  bool accepts_gzip_ = false;         // of the request being served
  bool headers_sent_ = false;
  bool wrote_since_tick_ = false;
  // The unary call being served (kCalling).
  std::shared_ptr<UpstreamUnaryCall> unary_;
  const RoutedMethod* unary_method_ = nullptr;

  // For /metrics and the access log.
  absl::Time request_arrived_;
  ExchangeRecord exchange_;  // the current (or last) call's
};

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_SESSION_H_
