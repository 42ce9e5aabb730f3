// One HTTP/1.1 connection (session.h has the diagram). In short:
// - phase: Phase, changed only by Enter(), which checks the move;
// - writer: writer_ (ConnectionWriter) is the only code that writes the
//   socket; Flush() starts a write, OnWritten() decides what comes next;
// - ownership: the pending Asio operations own the session; while it is
//   open the read side always has one pending (a request read, or a watch),
//   which CheckOwned() asserts at the end of each handler;
// - ends: Close() and the destructor go through EndServing(), which cancels
//   the upstream call and writes the access-log line.
#include "bridge/internal/session.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "boost/asio/post.hpp"
#include "bridge/internal/gzip_stream.h"
#include "bridge/internal/status_mapping.h"
#include "bridge/internal/stream_format.h"
#include "bridge/internal/trace_context.h"

namespace gravity::bridge::internal {

namespace http = boost::beast::http;
namespace net = boost::asio;
using boost::beast::error_code;

namespace {

// "HTTP/1.1 <status>\r\n<fields>\r\n": the bridge writes its response heads
// itself, so a head and the first events leave in one write.
std::string ResponseHead(http::status status, const Headers& fields, bool keep_alive) {
  std::string head =
      absl::StrCat("HTTP/1.1 ", static_cast<int>(status), " ",
                   std::string(http::obsolete_reason(status)), "\r\nServer: gravity-bridge\r\n");
  for (const auto& [name, value] : fields) absl::StrAppend(&head, name, ": ", value, "\r\n");
  if (!keep_alive) head += "Connection: close\r\n";
  head += "\r\n";
  return head;
}

// What the kernel says of a connection whose readability tells nothing
// (bytes of a next request wait unread; Linux keeps them readable even after
// a reset).
enum class PeerState {
  kOpen,
  kHalfClosed,  // the peer sent FIN
  kFailed,      // reset, or another error
};
PeerState ReadPeerState(int fd) {
  int error = 0;
  socklen_t length = sizeof error;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error != 0) {
    return PeerState::kFailed;
  }
  tcp_info info{};
  length = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0) return PeerState::kOpen;
  if (info.tcpi_state == TCP_CLOSE) return PeerState::kFailed;
  return info.tcpi_state == TCP_CLOSE_WAIT ? PeerState::kHalfClosed : PeerState::kOpen;
}

constexpr absl::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

}  // namespace

Session::Session(Transport transport, boost::beast::flat_buffer received,
                 std::shared_ptr<BridgeState> state)
    : transport_(std::move(transport)),
      state_(std::move(state)),
      writer_(transport_),
      buffer_(std::move(received)),
      timer_(transport_.get_executor()) {
  deadlines_.fill(Clock::time_point::max());
  error_code ec;
  auto peer = transport_.socket().remote_endpoint(ec);
  if (!ec) client_address_ = peer.address().to_string();
  state_->metrics.connections_active++;
  state_->metrics.CountConnection(Protocol::kHttp1);
}

Session::~Session() {
  // Only when the bridge stops with this session's handlers unrun: what it
  // served still ends properly.
  if (phase_ != Phase::kClosed) EndServing();
  state_->metrics.connections_active--;
}

void Session::Start() {
  net::post(transport_.get_executor(), [self = shared_from_this()] {
    // A drain posted before this (Shutdown right after the accept) closed it;
    // one accepted after the drain's list of sessions was taken closes now.
    if (self->phase_ == Phase::kClosed) return;
    if (self->state_->draining.load()) {
      self->Close();
      return;
    }
    // A new connection's head must come within the header timeout.
    self->SetDeadline(kRead, self->state_->options.header_timeout);
    self->ReadRequest();
    self->CheckOwned();
  });
}

void Session::Drain() {
  net::post(transport_.get_executor(), [self = shared_from_this()] {
    self->keep_alive_ = false;
    self->close_after_write_ = true;
    switch (self->phase_) {
      case Phase::kAwaitingRequest:
        self->Close();
        break;
      case Phase::kReadingRequest:
        // Read on (within the header timeout): the router answers it 503
        // while draining, and the connection closes.
        break;
      case Phase::kCalling:
        // Accepted, so it gets an answer: the call is cancelled upstream and
        // the client is told to retry (elsewhere).
        self->EndUnary(/*cancel=*/true, 503, grpc::StatusCode::UNAVAILABLE);
        self->Respond(Unavailable("the bridge is shutting down; retry the call", *self->state_));
        break;
      case Phase::kStreaming:
        self->CutStream();
        break;
      case Phase::kResponding:
      case Phase::kClosed:
        break;  // closes once the response is out
    }
    self->CheckOwned();
  });
}

// ---- Phases ----------------------------------------------------------------

void Session::Enter(Phase next) {
  [[maybe_unused]] bool allowed = false;
  switch (phase_) {
    case Phase::kAwaitingRequest:
      allowed = next == Phase::kReadingRequest;
      break;
    case Phase::kReadingRequest:
      allowed = next == Phase::kResponding || next == Phase::kCalling || next == Phase::kStreaming;
      break;
    case Phase::kCalling:
    case Phase::kStreaming:
      allowed = next == Phase::kResponding;
      break;
    case Phase::kResponding:
      allowed = next == Phase::kAwaitingRequest;
      break;
    case Phase::kClosed:
      break;
  }
  allowed = allowed || (next == Phase::kClosed && phase_ != Phase::kClosed);
  assert(allowed && "a phase change the diagram in session.h does not have");
  phase_ = next;
}

void Session::CheckOwned() const {
  // The ownership rule: an open session always waits for something that
  // holds it (its read side, or the response's write once the client
  // half-closed). A failure here is a session freed mid-request.
  assert(phase_ == Phase::kClosed || read_side_ != ReadSide::kNone || writer_.writing());
  // Invariants the writer and the phases rely on.
  assert(phase_ != Phase::kCalling || unary_ != nullptr);
  assert(phase_ != Phase::kStreaming || relay_ != nullptr);
  assert(phase_ != Phase::kResponding || writer_.writing());
}

// ---- Reading requests ------------------------------------------------------

void Session::AwaitRequest() {
  // Idle until the next request starts; from its first byte the header
  // timeout applies, as on a new connection (else a slow sender would get the
  // idle timeout for its headers).
  SetDeadline(kRead, state_->options.idle_timeout);
  read_side_ = ReadSide::kRequest;
  if (transport_.pending() > 0) {
    // Decrypted bytes wait inside TLS, where no socket wait would see them.
    SetDeadline(kRead, state_->options.header_timeout);
    ReadRequest();
    return;
  }
  transport_.socket().async_wait(net::socket_base::wait_read,
                                 [self = shared_from_this()](error_code ec) {
                                   self->read_side_ = ReadSide::kNone;
                                   if (self->phase_ == Phase::kClosed) return;
                                   if (ec) {
                                     self->Close();
                                     return;
                                   }
                                   self->SetDeadline(kRead, self->state_->options.header_timeout);
                                   self->ReadRequest();
                                   self->CheckOwned();
                                 });
}

void Session::ReadRequest() {
  assert(read_side_ == ReadSide::kNone);
  Enter(Phase::kReadingRequest);
  read_side_ = ReadSide::kRequest;
  head_read_ = false;
  read_timed_out_ = false;
  parser_.emplace();
  parser_->header_limit(static_cast<uint32_t>(state_->options.max_header_bytes));
  parser_->body_limit(state_->options.max_body_bytes);
  // The head first, so fields that arrive later, in a chunked body's
  // trailer, can be told apart (and refused) instead of acting as headers.
  http::async_read_header(
      transport_, buffer_, *parser_,
      [self = shared_from_this()](error_code ec, size_t) { self->OnReadHeader(ec); });
}

void Session::OnReadHeader(error_code ec) {
  if (ec || phase_ == Phase::kClosed || parser_->is_done()) {
    OnReadRequest(ec);
    return;
  }
  head_read_ = true;
  header_fields_ = static_cast<size_t>(
      std::distance(parser_->get().base().begin(), parser_->get().base().end()));
  // HTTP/1.0 clients must not get an interim response (RFC 9110 §10.1.1).
  if (parser_->get().version() >= 11 &&
      boost::beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
    // The client waits for this before it sends its body; the body's read
    // starts at once beside it (the read deadline bounds the exchange).
    writer_.Append(kContinue);
    Flush();
  }
  http::async_read(transport_, buffer_, *parser_,
                   [self = shared_from_this()](error_code ec, size_t) { self->OnReadRequest(ec); });
}

void Session::OnReadRequest(error_code ec) {
  read_side_ = ReadSide::kNone;
  ClearDeadline(kRead);
  if (phase_ == Phase::kClosed) return;
  if (ec) {
    if (read_timed_out_) {
      // The head came, the body did not in time: say so (a silent close
      // would look like a network fault).
      Respond(RefusedRequest(http::status::request_timeout,
                             absl::StrCat("the request body did not arrive within ",
                                          absl::FormatDuration(state_->options.header_timeout)),
                             /*close=*/true));
      return;
    }
    if (ec == http::error::header_limit || ec == http::error::body_limit) {
      const bool header = ec == http::error::header_limit;
      Respond(RefusedRequest(
          header ? http::status::request_header_fields_too_large : http::status::payload_too_large,
          header ? "request headers too large" : "request body too large", /*close=*/true));
      return;
    }
    if (ec != http::error::end_of_stream && ec != net::error::operation_aborted &&
        ec != net::error::eof && ec != net::error::connection_reset) {
      Respond(RefusedRequest(http::status::bad_request,
                             absl::StrCat("malformed HTTP request: ", ec.message()),
                             /*close=*/true));
      return;
    }
    Close();
    return;
  }
  const bool trailer = parser_->chunked() && static_cast<size_t>(std::distance(
                                                 parser_->get().base().begin(),
                                                 parser_->get().base().end())) != header_fields_;
  HttpRequest request = parser_->release();
  parser_.reset();
  if (trailer) {
    // Fields from a trailer would act as headers (Authorization, Origin, ...).
    Respond(RefusedRequest(http::status::bad_request, "a request trailer is not accepted",
                           /*close=*/true));
    return;
  }
  HandleRequest(std::move(request));
  CheckOwned();
}

void Session::HandleRequest(HttpRequest request) {
  request_arrived_ = absl::Now();
  keep_alive_ = keep_alive_ && request.keep_alive() && !state_->draining.load();
  origin_ = std::string(request[http::field::origin]);
  const auto encoding = request[http::field::accept_encoding];
  accepts_gzip_ = state_->options.compression &&
                  AcceptsGzip(absl::string_view(encoding.data(), encoding.size()));
  head_only_ = request.method() == http::verb::head;
  http10_ = request.version() < 11;
  Routed routed = Route(request, *state_);
  if (auto* plain = std::get_if<PlainResponse>(&routed)) {
    Respond(std::move(*plain));
    return;
  }
  if (auto* unary = std::get_if<UnaryPlan>(&routed)) {
    StartUnary(std::move(*unary));
    return;
  }
  StartStream(std::move(std::get<StreamPlan>(routed)));
}

// ---- The read side while serving ---------------------------------------------

void Session::EnsureWatching() {
  if (read_side_ == ReadSide::kNone) Watch();
}

void Session::Watch() {
  // Nothing is read while a request is served, but the client leaving must
  // be seen at once: wait for readability, no buffer or parser held.
  read_side_ = ReadSide::kWatch;
  transport_.socket().async_wait(net::socket_base::wait_read,
                                 [self = shared_from_this()](error_code ec) { self->OnWatch(ec); });
}

bool Session::WatchEnded() {
  read_side_ = ReadSide::kNone;
  if (phase_ == Phase::kClosed) return true;
  if (phase_ == Phase::kAwaitingRequest) {
    NextRequest();  // the response is out: the watch hands over to the reader
    CheckOwned();
    return true;
  }
  return false;
}

void Session::OnWatch(error_code ec) {
  if (WatchEnded()) return;
  if (ec) {
    Close();
    return;
  }
  char byte;
  const ssize_t n = ::recv(transport_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) {
    WatchErrors();  // a next request: read once this one is answered
  } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    Watch();
  } else if (n == 0 && phase_ == Phase::kResponding) {
    // A half close after the request: the answer is on its way; the write
    // holds the session until it is out, then the connection closes (after
    // the requests already read, which the reader finds before the end).
    if (buffer_.size() == 0) {
      keep_alive_ = false;
      close_after_write_ = true;
    }
  } else {
    Close();  // the client went away mid-stream or mid-call: stop the backend
  }
  CheckOwned();
}

void Session::WatchErrors() {
  read_side_ = ReadSide::kWatchErrors;
  transport_.socket().async_wait(
      net::socket_base::wait_error,
      [self = shared_from_this()](error_code ec) { self->OnWatchErrors(ec); });
  // A reset that came before the wait was armed raises no new event.
  if (ReadPeerState(transport_.socket().native_handle()) == PeerState::kFailed) Close();
}

void Session::OnWatchErrors(error_code ec) {
  if (WatchEnded()) return;
  if (ec || ReadPeerState(transport_.socket().native_handle()) == PeerState::kFailed) {
    Close();
    return;
  }
  // Urgent (out-of-band) data, say: nothing to do with the connection's life.
  // Unread, it would end the next wait at once, for ever: take it.
  char urgent;
  while (::recv(transport_.socket().native_handle(), &urgent, 1, MSG_OOB | MSG_DONTWAIT) > 0) {
  }
  WatchErrors();
  CheckOwned();
}

void Session::ContinueConnection() {
  if (!keep_alive_ || close_after_write_ || http10_ || state_->draining.load()) {
    Close();
    return;
  }
  Enter(Phase::kAwaitingRequest);
  if (read_side_ == ReadSide::kNone) {
    NextRequest();
    return;
  }
  // The watch ends (its handler, seeing kAwaitingRequest, reads the next
  // request): one read-side operation at a time, no gap between them.
  error_code ignored;
  transport_.socket().cancel(ignored);
}

void Session::NextRequest() {
  if (buffer_.size() > 0 || transport_.pending() > 0) {
    // A pipelined request's bytes are here already.
    SetDeadline(kRead, state_->options.header_timeout);
    ReadRequest();
    return;
  }
  AwaitRequest();
}

// ---- Unary calls -------------------------------------------------------------

void Session::StartUnary(UnaryPlan plan) {
  if (!TryReserve(state_->metrics.unary_calls_active, state_->options.max_unary_calls)) {
    Respond(Unavailable("the bridge is at its limit of unary calls in flight", *state_));
    return;
  }
  Enter(Phase::kCalling);
  unary_method_ = plan.method;
  exchange_.Begin(*plan.method, plan.metadata);
  state_->metrics.unary_calls_total++;
  // Called on a gRPC thread: only a post; the posted handler owns the
  // session reference, so the session is never destroyed on a gRPC thread.
  auto done = [weak = weak_from_this(), executor = transport_.get_executor()](
                  const grpc::Status& status, size_t reply_bytes, std::string reply) {
    if (auto self = weak.lock()) {
      net::post(executor, [self = std::move(self), status, reply_bytes, reply = std::move(reply)] {
        self->OnUnaryDone(status, reply_bytes, reply);
      });
    }
  };
  // The backend gets the accept timeout as its deadline: a reply is this
  // call's acceptance.
  unary_ = UpstreamUnaryCall::Start(*state_->stub, plan.method->grpc_path,
                                    std::move(plan.request_bytes), plan.metadata,
                                    state_->options.accept_timeout, state_->options.max_reply_bytes,
                                    state_->upstream_calls_live, std::move(done));
  EnsureWatching();
}

void Session::OnUnaryDone(const grpc::Status& status, size_t reply_bytes,
                          const std::string& reply) {
  if (phase_ != Phase::kCalling) return;  // closed, or drained with a 503 meanwhile
  grpc::StatusCode code;
  PlainResponse response = UnaryReply(*state_, *unary_method_, status, reply_bytes, reply, &code);
  EndUnary(/*cancel=*/false, static_cast<int>(response.status), code);
  Respond(std::move(response));
  CheckOwned();
}

void Session::EndUnary(bool cancel, int http_status, grpc::StatusCode code) {
  if (unary_ == nullptr) return;
  // The backend sees a cancel (a client that left, a drain); `done` then
  // finds the session past kCalling and does nothing.
  if (cancel) unary_->Cancel();
  unary_.reset();
  state_->metrics.unary_calls_active--;
  LogAccess(*state_, client_address_, Protocol::kHttp1, exchange_, http_status, code);
}

// ---- Plain responses -------------------------------------------------------

void Session::Respond(PlainResponse response) {
  Enter(Phase::kResponding);
  if (response.close) keep_alive_ = false;
  const int status = static_cast<int>(response.status);
  if (status >= 400) state_->metrics.CountRejection(status);
  if (!head_only_) CompressIfWorth(response, accepts_gzip_);
  writer_.Append(ResponseHead(response.status,
                              PlainResponseFields(response, origin_, state_->options),
                              keep_alive_ && !close_after_write_));
  // A HEAD response announces the body's length but carries none.
  if (!head_only_) writer_.Append(response.body);
  close_after_write_ = close_after_write_ || !keep_alive_;
  EnsureWatching();
  FlushResponse();
}

// ---- Streams ---------------------------------------------------------------

void Session::StartStream(StreamPlan plan) {
  if (auto later = OverStartBudget(*state_, plan.wants_event_stream)) {
    Respond(std::move(*later));
    return;
  }
  client_slot_ = state_->client_streams.Acquire(client_address_);
  if (!client_slot_) {
    Respond(ErrorResponse(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                       "too many streams from this client address"),
                          *state_));
    return;
  }
  if (!TryReserve(state_->metrics.active_streams, state_->options.max_streams)) {
    client_slot_.reset();
    Respond(Unavailable("the bridge is at its stream limit", *state_));
    return;
  }
  Enter(Phase::kStreaming);
  exchange_.Begin(*plan.method, plan.metadata);
  headers_sent_ = false;
  wrote_since_tick_ = false;
  format_ = plan.format;
  wants_event_stream_ = plan.wants_event_stream;
  gzip_ = StreamCompressor(plan, head_only_, *state_);
  retry_ = JitteredRetry(state_->options);
  writer_.set_framing(head_only_ ? ConnectionWriter::Framing::kNone
                      : http10_  ? ConnectionWriter::Framing::kRaw
                                 : ConnectionWriter::Framing::kChunked);
  state_->metrics.streams_total++;

  const google::protobuf::Message& prototype =
      *state_->factory->GetPrototype(plan.method->method->output_type());
  auto encoder = std::make_shared<EventEncoder>(*plan.method, *state_->json, prototype, format_,
                                                state_->options.max_event_bytes);
  // Called on gRPC threads: only a post. The posted handler owns the session
  // reference, so the session is never destroyed on a gRPC thread.
  auto wake = [weak = weak_from_this(), executor = transport_.get_executor()] {
    if (auto self = weak.lock()) {
      net::post(executor, [self = std::move(self)] { self->Pump(); });
    }
  };
  relay_ = std::make_unique<StreamRelay>(
      std::move(encoder),
      ReadAheadLimits{state_->options.read_ahead_events, state_->options.read_ahead_bytes},
      std::move(wake), gzip_ != nullptr ? nullptr : writer_.direct(), &state_->metrics.events_sent,
      &state_->metrics.first_event, request_arrived_);
  grpc::Slice slice(std::move(plan.request_bytes));
  grpc::ByteBuffer payload(&slice, 1);
  relay_->Start(*state_->stub, plan.method->grpc_path, payload, plan.metadata,
                state_->upstream_calls_live);
  if (buffer_.size() == 0) buffer_.shrink_to_fit();  // an idle stream holds no read buffer
  EnsureWatching();
  SetDeadline(kKeepAlive, state_->options.keepalive);
  // A backend that neither accepts nor refuses in time is as good as absent.
  SetDeadline(kAccept, state_->options.accept_timeout);
  if (state_->options.max_stream_duration > absl::ZeroDuration()) {
    SetDeadline(kDuration, state_->options.max_stream_duration);
  }
}

void Session::Pump() {
  if (phase_ != Phase::kStreaming || writer_.writing()) return;
  // From here until it is enabled again only this strand writes: an event
  // sent directly between Take and a write of what Take found would
  // overtake it. What a direct send could not finish goes first.
  state_->metrics.events_sent += writer_.StopDirect();
  StreamRelay::Taken taken = relay_->Take(&events_);
  if (taken.accepted && !headers_sent_) AppendStreamHead();
  if (!events_.empty()) {
    if (!headers_sent_) AppendStreamHead();
    AppendStreamBody(events_);
    events_.clear();
    state_->metrics.events_sent += taken.events;
    wrote_since_tick_ = true;
  }
  if (taken.done) {
    FinishStream(*taken.done);
    return;
  }
  if (!writer_.queued()) {
    // Nothing to write: the next events may leave from the gRPC thread.
    // (Never for a compressed stream: its bytes go through its compressor.)
    if (headers_sent_ && !head_only_ && gzip_ == nullptr) writer_.EnableDirect();
    return;
  }
  Flush();
}

void Session::FinishStream(const grpc::Status& status) {
  ReleaseRelay();  // over or failed: nothing more comes from it
  exchange_.final_code = status.error_code();
  ClearDeadline(kAccept);
  WriteStreamClose(
      CloseStream(status, headers_sent_, wants_event_stream_, format_, retry_, *state_));
}

void Session::WriteStreamClose(StreamClose close) {
  if (close.error) {
    exchange_.final_http = static_cast<int>(close.error->status);
    EndStream();
    Respond(std::move(*close.error));
    return;
  }
  if (close.needs_head) AppendStreamHead();
  if (!close.body.empty()) AppendStreamBody(close.body);
  if (gzip_ != nullptr && headers_sent_ && !head_only_) {
    std::string end;
    gzip_->Finish(&end);
    writer_.AppendBody(end);
  }
  gzip_.reset();
  writer_.AppendBodyEnd();
  EndStream();
  Enter(Phase::kResponding);
  FlushResponse();
}

void Session::CutStream() {
  if (phase_ != Phase::kStreaming) return;
  // Cut with a retry hint and no `end`: the browser reconnects (perhaps to
  // another bridge) and resumes from its Last-Event-ID. The connection closes
  // afterwards, so nothing of the cut call can meet a next stream.
  keep_alive_ = false;
  close_after_write_ = true;
  exchange_.final_code = grpc::StatusCode::UNAVAILABLE;
  state_->metrics.events_sent += writer_.StopDirect();
  ReleaseRelay();
  WriteStreamClose(CutStreamBytes(headers_sent_, format_, retry_));
}

void Session::AppendStreamHead() {
  headers_sent_ = true;
  ClearDeadline(kAccept);
  Headers fields = StreamHeadFields(format_, origin_, state_->options, gzip_ != nullptr);
  // HTTP/1.0 has no chunked encoding: the body runs to the connection's close.
  if (!http10_) fields.emplace_back("Transfer-Encoding", "chunked");
  writer_.Append(ResponseHead(http::status::ok, fields, keep_alive_ && !http10_));
  // The reconnection delay up front: a browser whose bridge dies (no cut
  // with a retry: of its own) then reconnects after --retry, not after its
  // default (3 s in Chromium and eventsource).
  if (format_ == StreamFormat::kSse) AppendStreamBody(SseRetry(retry_));
}

void Session::AppendStreamBody(absl::string_view bytes) {
  if (gzip_ == nullptr || head_only_) {
    writer_.AppendBody(bytes);
    return;
  }
  gzip_->Append(bytes, &compressed_);
  writer_.AppendBody(compressed_);
  compressed_.clear();
}

void Session::ReleaseRelay() {
  if (relay_ == nullptr) return;
  exchange_.events = relay_->events();
  exchange_.bytes = relay_->bytes();
  relay_.reset();
}

void Session::EndStream() {
  // Once per stream: its client slot is held exactly while it counts.
  if (phase_ != Phase::kStreaming || !client_slot_) return;
  ReleaseRelay();
  gzip_.reset();
  ClearDeadline(kKeepAlive);
  ClearDeadline(kAccept);
  ClearDeadline(kDuration);
  client_slot_.reset();
  RecordStreamEnd(*state_, client_address_, Protocol::kHttp1, exchange_, headers_sent_);
  // An idle connection keeps no stream-sized buffers.
  std::string().swap(events_);
}

// ---- Writing -----------------------------------------------------------------

void Session::Flush() {
  // Bytes queued behind a write in flight leave with the next one; they must
  // not push back the deadline of the write that is stalled (a keep-alive
  // comment every 15 s would keep a client that stopped reading for ever).
  if (writer_.writing()) return;
  // Events of a partial direct send leave with this write.
  state_->metrics.events_sent +=
      writer_.Flush([self = shared_from_this()](error_code ec) { self->OnWritten(ec); });
  if (!writer_.writing()) return;
  SetDeadline(kWrite, state_->options.write_timeout);
  if (relay_ != nullptr) relay_->SetWriteInFlight(writer_.in_flight_bytes());
}

void Session::FlushResponse() {
  Flush();
  // A HEAD stream's end has no bytes of its own to write.
  if (!writer_.writing()) ResponseOut();
}

void Session::ResponseOut() {
  // A response or a stream is completely out.
  if (close_after_write_) {
    Close();
  } else {
    ContinueConnection();
  }
}

void Session::OnWritten(error_code ec) {
  ClearDeadline(kWrite);
  if (relay_ != nullptr) relay_->SetWriteInFlight(0);
  if (phase_ == Phase::kClosed) return;
  if (ec) {
    Close();
    return;
  }
  if (writer_.queued()) {
    Flush();
  } else if (phase_ == Phase::kStreaming) {
    Pump();  // whatever the relay read meanwhile goes out as one write
  } else if (phase_ == Phase::kResponding) {
    ResponseOut();
  }
  // kReadingRequest: the interim 100 Continue is out; the body's read goes on.
  CheckOwned();
}

// ---- The deadlines ---------------------------------------------------------

void Session::SetDeadline(Deadline which, absl::Duration after) {
  deadlines_[which] = Clock::now() + absl::ToChronoNanoseconds(after);
  ArmTimer();
}

void Session::ArmTimer() {
  const Clock::time_point earliest = *std::min_element(deadlines_.begin(), deadlines_.end());
  if (phase_ == Phase::kClosed || earliest >= timer_at_) return;
  timer_at_ = earliest;
  timer_.expires_at(earliest);
  timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (ec == net::error::operation_aborted) return;  // re-armed earlier, or closed
    self->timer_at_ = Clock::time_point::max();
    self->OnDeadlines();
  });
}

void Session::OnDeadlines() {
  if (phase_ == Phase::kClosed) return;
  const Clock::time_point now = Clock::now();
  auto due = [&](Deadline which) {
    if (deadlines_[which] > now) return false;
    ClearDeadline(which);
    return true;
  };
  if (due(kWrite) && writer_.writing()) {
    Close();  // a client that stops reading for this long is gone
    return;
  }
  if (due(kRead)) {
    if (phase_ == Phase::kAwaitingRequest || (phase_ == Phase::kReadingRequest && !head_read_)) {
      Close();  // idle, or a head that crawls in: no answer (a slowloris gets nothing)
      return;
    }
    if (phase_ == Phase::kReadingRequest) {
      // The body is late: the read ends (aborted) and answers 408.
      read_timed_out_ = true;
      error_code ignored;
      transport_.socket().cancel(ignored);
    }
  }
  if (due(kAccept) && phase_ == Phase::kStreaming && !headers_sent_) {
    FinishStream(
        grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "the backend did not answer in time"));
  }
  if (due(kDuration)) CutStream();
  // due() clears what it finds due: asked once.
  const bool keepalive_due = due(kKeepAlive);
  if (keepalive_due && phase_ == Phase::kStreaming && read_side_ == ReadSide::kWatchErrors &&
      ReadPeerState(transport_.socket().native_handle()) != PeerState::kOpen) {
    // Bytes of a next request wait, so readability says nothing, and a
    // graceful close raises no error: looked at each tick instead.
    Close();
    return;
  }
  if (keepalive_due && phase_ == Phase::kStreaming) {
    // Before the backend has answered nothing may go out, not even headers.
    const bool sent_directly = writer_.DirectSentSinceLastAsked();
    if (!wrote_since_tick_ && !sent_directly && headers_sent_ && format_ == StreamFormat::kSse) {
      // The comment goes between events, never inside one's write.
      state_->metrics.events_sent += writer_.StopDirect();
      AppendStreamBody(SseKeepAlive());
      Flush();
    }
    wrote_since_tick_ = false;
    deadlines_[kKeepAlive] = now + absl::ToChronoNanoseconds(state_->options.keepalive);
  }
  ArmTimer();
  CheckOwned();
}

void Session::EndServing() {
  // No send may meet a closed (or reused) descriptor.
  writer_.StopDirect();
  EndStream();
  // The client left before the reply: the backend sees a cancel.
  EndUnary(/*cancel=*/true, 499, grpc::StatusCode::CANCELLED);
}

void Session::Close() {
  if (phase_ == Phase::kClosed) return;
  EndServing();
  Enter(Phase::kClosed);
  timer_.cancel();
  transport_.Close();
}

}  // namespace gravity::bridge::internal
