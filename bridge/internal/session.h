// Session: one browser connection: reads HTTP/1.1 requests (keep-alive),
// answers the small ones, and serves a stream by driving one UpstreamCall.
//
// Owner: itself through shared_ptr: each pending Asio operation and each
// posted upstream result holds it. It owns its socket and its upstream call
// (released and cancelled when the browser leaves). Strand: everything but the
// UpstreamListener methods runs on the connection's strand; those only post.
#ifndef GRAVITY_BRIDGE_INTERNAL_SESSION_H_
#define GRAVITY_BRIDGE_INTERNAL_SESSION_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http.hpp"
#include "bridge/internal/bridge_state.h"
#include "bridge/internal/upstream_call.h"
#include "google/protobuf/message.h"

namespace gravity::bridge::internal {

class Session : public UpstreamListener, public std::enable_shared_from_this<Session> {
 public:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;

  Session(boost::asio::ip::tcp::socket socket, std::shared_ptr<BridgeState> state);
  ~Session() override;

  void Start();
  // Asks the session to end: an open stream gets a `retry:` hint and the
  // connection closes. Safe from any thread.
  void Drain();

  // UpstreamListener: gRPC threads; they post to the strand.
  void OnUpstreamAccepted(uint64_t call_id, bool ok) override;
  void OnUpstreamRead(uint64_t call_id, bool ok, grpc::ByteBuffer message) override;
  void OnUpstreamDone(uint64_t call_id, grpc::Status status) override;

 private:
  enum class Format { kSse, kNdjson };

  // Requests.
  void DoReadRequest();
  void OnReadRequest(boost::beast::error_code ec);
  void HandleRequest(Request request);
  void StartStream(const Request& request, const RouteMatch& match,
                   const std::vector<std::pair<std::string, std::string>>& query);

  // Plain responses.
  void Respond(boost::beast::http::status status, std::string content_type, std::string body,
               std::vector<std::pair<std::string, std::string>> headers = {});
  void RespondError(const grpc::Status& status);
  // google.rpc.Status JSON of `status`, with its details.
  std::string StatusJsonOf(const grpc::Status& status) const;
  void OnResponded(boost::beast::error_code ec);
  // After a response or a stream: the next request, or close.
  void ContinueConnection();
  bool responding() const;

  // Streams.
  void OnUpstreamReadOnStrand(bool ok, grpc::ByteBuffer message);
  void OnUpstreamDoneOnStrand(grpc::Status status);
  void SendStreamHeaders();
  void Queue(std::string bytes);
  void DoWrite();
  void OnWrite(boost::beast::error_code ec);
  void EndStream();
  // Ends the stream early with a `retry:` hint and no `end` event.
  void CutStream();
  void ArmKeepAlive();
  void ArmIdleTimeout(absl::Duration timeout);
  void ArmWriteTimeout();
  void ReleaseUpstream(bool cancel);
  void Close();

  std::vector<std::pair<std::string, std::string>> CorsHeaders() const;

  boost::asio::ip::tcp::socket socket_;
  const std::shared_ptr<BridgeState> state_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  boost::asio::steady_timer idle_timer_;
  boost::asio::steady_timer write_timer_;
  boost::asio::steady_timer keepalive_timer_;
  boost::asio::steady_timer duration_timer_;
  boost::asio::steady_timer accept_timer_;
  uint64_t write_id_ = 0;  // so a late write-timer wake-up cannot cut a later write
  std::string client_address_;
  std::optional<ClientStreamCounter::Slot> client_slot_;
  bool reading_ = false;
  bool closed_ = false;
  bool keep_alive_ = true;
  std::string origin_;  // of the request being served
  std::optional<Request> pipelined_;

  // The plain response being written.
  std::optional<boost::beast::http::response<boost::beast::http::string_body>> response_;

  // The stream being served. stream_id_ names it (and its upstream call):
  // results and timers of an earlier stream of this connection are ignored.
  uint64_t stream_id_ = 0;
  bool streaming_ = false;
  bool wants_event_stream_ = false;  // Accept: text/event-stream (EventSource)
  Format format_ = Format::kSse;
  const StreamMethod* method_ = nullptr;
  UpstreamCall* upstream_ = nullptr;  // valid until ReleaseUpstream
  // Reused for every message of the stream, to read its event id.
  std::unique_ptr<google::protobuf::Message> scratch_;
  std::string message_bytes_;
  std::optional<boost::beast::http::response<boost::beast::http::empty_body>> stream_header_;
  std::optional<boost::beast::http::response_serializer<boost::beast::http::empty_body>>
      header_serializer_;
  bool headers_sent_ = false;
  bool writing_ = false;
  bool read_after_write_ = false;  // the next upstream read waits for the socket
  bool wrote_since_tick_ = false;
  bool body_done_ = false;  // the terminal event is queued
  bool last_chunk_sent_ = false;
  std::string outbox_;    // bytes waiting for the current write
  std::string in_write_;  // bytes of the write in flight
  std::optional<grpc::Status> final_status_;
};

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_SESSION_H_
