// Session: one browser connection's loop: reads HTTP/1.1 requests
// (keep-alive, pipelining), asks the Router what each means, writes plain
// responses, serves a stream through its StreamRelay and a unary call through
// its UpstreamUnaryCall.
//
// Thread map: everything runs on the connection's strand, but the relay's
// wake-up and a unary call's completion, which are called on gRPC threads and
// only post here, and
// the DirectWriter's sends, which the relay makes on gRPC threads while the
// session has it enabled (headers out, no Asio write in flight).
// One write queue (out_ collects, in_flight_ is being written: at most one
// write at a time, everything queued meanwhile goes out as one write) and one
// deadline mechanism (one timer for the read, write, keep-alive, accept and
// duration deadlines).
//
// Owner: itself through shared_ptr: each pending Asio operation and each
// posted wake-up holds it. It owns its socket and its stream's relay, which it
// releases (cancelling the upstream call) when the stream ends or the browser
// leaves.
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
#include "bridge/internal/direct_writer.h"
#include "bridge/internal/router.h"
#include "bridge/internal/stream_relay.h"
#include "bridge/internal/upstream_unary_call.h"

namespace gravity::bridge::internal {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(boost::asio::ip::tcp::socket socket, std::shared_ptr<BridgeState> state);
  ~Session();

  void Start();
  // Asks the session to end: an open stream gets a `retry:` hint and the
  // connection closes. Safe from any thread.
  void Drain();

 private:
  enum Deadline { kRead, kWrite, kKeepAlive, kAccept, kDuration, kDeadlines };
  using Clock = std::chrono::steady_clock;

  // Requests.
  void DoReadRequest();
  void OnReadHeader(boost::beast::error_code ec);
  void OnReadRequest(boost::beast::error_code ec);
  void WatchForDisconnect();
  void HandleRequest(HttpRequest request);
  void StartStream(StreamPlan plan);
  void StartUnary(UnaryPlan plan);
  void OnUnaryDone(const grpc::Status& status, const std::string& reply);
  // One JSON line of the access log, when it is on: a stream's or a unary
  // call's end.
  void LogAccess(int http_status, grpc::StatusCode code, int64_t events, int64_t bytes);

  // Plain responses.
  void Respond(PlainResponse response);
  // After a response or a stream: the next request, or close.
  void ContinueConnection();

  // Streams.
  void Pump();
  void FinishStream(const grpc::Status& status);
  // Ends the stream early with a `retry:` hint and no `end`; then closes.
  void CutStream();
  void AppendStreamHead();
  // Appends `body` as one chunk (raw for an HTTP/1.0 client).
  void AppendChunk(absl::string_view body);
  void AppendLastChunk();
  void EndStream();
  // Releases the relay (cancelling its call unless over), keeping its counts.
  void ReleaseRelay();

  // The write queue.
  void Write();
  void OnWritten(boost::beast::error_code ec);

  // The deadlines.
  void SetDeadline(Deadline which, absl::Duration after);
  void ClearDeadline(Deadline which) { deadlines_[which] = Clock::time_point::max(); }
  void ArmTimer();
  void OnDeadlines();

  void Close();

  boost::asio::ip::tcp::socket socket_;
  const std::shared_ptr<BridgeState> state_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::optional<HttpRequest> pipelined_;
  size_t header_fields_ = 0;  // fields of the request's head, before any trailer
  uint64_t streams_ = 0;      // streams and calls served, so a stale disconnect watch can tell
  std::string client_address_;
  bool reading_ = false;
  bool closed_ = false;
  bool keep_alive_ = true;
  bool head_only_ = false;  // a HEAD request: headers, no body
  bool http10_ = false;     // an HTTP/1.0 client: no chunked encoding; close at the end
  std::string origin_;      // of the request being served

  // The write queue.
  DirectWriter direct_;
  std::string out_;
  std::string in_flight_;
  bool writing_ = false;
  bool close_after_write_ = false;  // a plain response that ends the connection
  bool responding_ = false;         // a plain response is queued or being written

  // The deadline mechanism.
  boost::asio::steady_timer timer_;
  Clock::time_point timer_at_ = Clock::time_point::max();
  std::array<Clock::time_point, kDeadlines> deadlines_;

  // The stream being served.
  std::unique_ptr<StreamRelay> relay_;
  std::optional<ClientStreamCounter::Slot> client_slot_;
  std::string events_;  // scratch: events taken from the relay
  bool streaming_ = false;
  bool wants_event_stream_ = false;
  StreamFormat format_ = StreamFormat::kSse;
  bool headers_sent_ = false;
  bool body_done_ = false;  // the terminal bytes are queued
  bool wrote_since_tick_ = false;
  // The unary call being served.
  std::shared_ptr<UpstreamUnaryCall> unary_;
  const RoutedMethod* unary_method_ = nullptr;

  // For /metrics and the access log.
  absl::Time request_arrived_;
  Clock::time_point stream_started_;
  std::string route_;
  grpc::StatusCode final_code_ = grpc::StatusCode::CANCELLED;
  int final_http_ = 0;  // the error status when the stream became a plain response
  int64_t stream_events_ = 0;
  int64_t stream_bytes_ = 0;
};

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_SESSION_H_
