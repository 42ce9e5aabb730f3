#include "bridge/internal/session.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "boost/asio/post.hpp"
#include "boost/asio/write.hpp"
#include "bridge/internal/sse.h"
#include "bridge/internal/status_mapping.h"

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

}  // namespace

Session::Session(net::ip::tcp::socket socket, std::shared_ptr<BridgeState> state)
    : socket_(std::move(socket)), state_(std::move(state)), timer_(socket_.get_executor()) {
  deadlines_.fill(Clock::time_point::max());
  error_code ec;
  auto peer = socket_.remote_endpoint(ec);
  if (!ec) client_address_ = peer.address().to_string();
  state_->metrics.connections_active++;
}

Session::~Session() {
  relay_.reset();  // releases the call
  if (streaming_) state_->metrics.active_streams--;
  state_->metrics.connections_active--;
}

void Session::Start() {
  net::post(socket_.get_executor(), [self = shared_from_this()] {
    self->SetDeadline(kRead, self->state_->options.header_timeout);
    self->DoReadRequest();
  });
}

void Session::Drain() {
  net::post(socket_.get_executor(), [self = shared_from_this()] {
    self->keep_alive_ = false;
    if (self->streaming_) {
      self->CutStream();
    } else if (!self->responding_) {
      self->Close();
    }
  });
}

// ---- Requests ------------------------------------------------------------

void Session::DoReadRequest() {
  if (reading_ || closed_) return;
  reading_ = true;
  parser_.emplace();
  parser_->header_limit(static_cast<uint32_t>(state_->options.max_header_bytes));
  parser_->body_limit(state_->options.max_body_bytes);
  // The head first, so fields that arrive later, in a chunked body's
  // trailer, can be told apart (and refused) instead of acting as headers.
  http::async_read_header(
      socket_, buffer_, *parser_,
      [self = shared_from_this()](error_code ec, size_t) { self->OnReadHeader(ec); });
}

void Session::OnReadHeader(error_code ec) {
  if (ec || closed_ || parser_->is_done()) {
    OnReadRequest(ec);
    return;
  }
  header_fields_ = static_cast<size_t>(
      std::distance(parser_->get().base().begin(), parser_->get().base().end()));
  auto read_body = [self = shared_from_this()] {
    http::async_read(self->socket_, self->buffer_, *self->parser_,
                     [self](error_code ec, size_t) { self->OnReadRequest(ec); });
  };
  if (boost::beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
    // The client waits for this before it sends its body (the read deadline
    // still bounds the exchange).
    static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
    net::async_write(socket_, net::buffer(kContinue, sizeof kContinue - 1),
                     [self = shared_from_this(), read_body](error_code ec, size_t) {
                       if (ec || self->closed_) {
                         self->Close();
                         return;
                       }
                       read_body();
                     });
    return;
  }
  read_body();
}

void Session::WatchForDisconnect() {
  // While a stream is served nothing is read, but the browser leaving must
  // be seen at once: wait for readability, no buffer or parser held.
  socket_.async_wait(
      net::socket_base::wait_read, [self = shared_from_this(), stream = streams_](error_code ec) {
        const bool serving = self->streaming_ || self->unary_ != nullptr;
        if (self->closed_ || !serving || stream != self->streams_) return;
        if (ec) {
          self->Close();
          return;
        }
        char byte;
        const ssize_t n = ::recv(self->socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n > 0) return;  // a pipelined request: read once the stream ends
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
          self->WatchForDisconnect();
          return;
        }
        self->Close();  // the browser went away mid-stream or mid-call: stop the backend
      });
}

void Session::OnReadRequest(error_code ec) {
  reading_ = false;
  ClearDeadline(kRead);
  if (closed_) return;
  if (ec) {
    if (streaming_) {
      // The browser went away mid-stream: stop the backend at once.
      Close();
      return;
    }
    if (responding_) {
      // One response at a time: close once the one being written is out.
      keep_alive_ = false;
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
  if (streaming_ || responding_) {
    pipelined_ = std::move(request);  // served when the current response ends
    return;
  }
  HandleRequest(std::move(request));
}

void Session::HandleRequest(HttpRequest request) {
  request_arrived_ = absl::Now();
  keep_alive_ = keep_alive_ && request.keep_alive() && !state_->draining.load();
  origin_ = std::string(request[http::field::origin]);
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

void Session::StartUnary(UnaryPlan plan) {
  // Like a plain response being written: a pipelined request waits for it.
  responding_ = true;
  unary_method_ = plan.method;
  route_ = plan.method->grpc_path;
  stream_started_ = Clock::now();
  state_->metrics.unary_calls_total++;
  // Called on a gRPC thread: only a post; the posted handler owns the
  // session reference, so the session is never destroyed on a gRPC thread.
  auto done = [weak = weak_from_this(), executor = socket_.get_executor()](
                  const grpc::Status& status, std::string reply) {
    if (auto self = weak.lock()) {
      net::post(executor, [self = std::move(self), status, reply = std::move(reply)] {
        self->OnUnaryDone(status, reply);
      });
    }
  };
  // The backend gets the accept timeout as its deadline: a reply is this
  // call's acceptance.
  unary_ = UpstreamUnaryCall::Start(
      *state_->stub, plan.method->grpc_path, std::move(plan.request_bytes), plan.metadata,
      state_->options.accept_timeout, state_->upstream_calls_live, std::move(done));
  ++streams_;
  WatchForDisconnect();
}

void Session::OnUnaryDone(const grpc::Status& status, const std::string& reply) {
  if (closed_ || unary_ == nullptr) return;
  unary_.reset();
  // The call's outcome as the client sees it: a reply that does not parse is
  // the bridge's INTERNAL, whatever the backend said.
  grpc::Status outcome = status;
  std::string json;
  if (outcome.ok() &&
      !state_->json->ToJson(*unary_method_->method->output_type(), reply, &json).ok()) {
    outcome = grpc::Status(grpc::StatusCode::INTERNAL,
                           absl::StrCat("the backend's reply does not parse as ",
                                        unary_method_->method->output_type()->full_name()));
  }
  PlainResponse response =
      outcome.ok() ? PlainResponse{http::status::ok, "application/json", std::move(json) + "\n"}
                   : ErrorResponse(outcome, *state_);
  LogAccess(static_cast<int>(response.status), outcome.error_code(), 0, 0);
  Respond(std::move(response));
}

void Session::StartStream(StreamPlan plan) {
  client_slot_ = state_->client_streams.Acquire(client_address_);
  if (!client_slot_) {
    Respond(ErrorResponse(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                       "too many streams from this client address"),
                          *state_));
    return;
  }
  streaming_ = true;
  stream_started_ = Clock::now();
  route_ = plan.method->grpc_path;
  final_code_ = grpc::StatusCode::CANCELLED;  // until the stream says otherwise
  final_http_ = 0;
  stream_events_ = 0;
  stream_bytes_ = 0;
  headers_sent_ = false;
  body_done_ = false;
  wrote_since_tick_ = false;
  format_ = plan.format;
  wants_event_stream_ = plan.wants_event_stream;
  state_->metrics.active_streams++;
  state_->metrics.streams_total++;

  const google::protobuf::Message& prototype =
      *state_->factory->GetPrototype(plan.method->method->output_type());
  auto encoder = std::make_unique<EventEncoder>(*plan.method, *state_->json, prototype, format_);
  // Called on gRPC threads: only a post. The posted handler owns the session
  // reference, so the session is never destroyed on a gRPC thread.
  auto wake = [weak = weak_from_this(), executor = socket_.get_executor()] {
    if (auto self = weak.lock()) {
      net::post(executor, [self = std::move(self)] { self->Pump(); });
    }
  };
  relay_ = std::make_unique<StreamRelay>(
      std::move(encoder),
      ReadAheadLimits{state_->options.read_ahead_events, state_->options.read_ahead_bytes},
      std::move(wake), &direct_, &state_->metrics.events_sent, &state_->metrics.first_event,
      request_arrived_);
  grpc::Slice slice(std::move(plan.request_bytes));
  grpc::ByteBuffer payload(&slice, 1);
  relay_->Start(*state_->stub, plan.method->grpc_path, payload, plan.metadata,
                state_->upstream_calls_live);
  ++streams_;
  if (buffer_.size() == 0) buffer_.shrink_to_fit();  // an idle stream holds no read buffer
  WatchForDisconnect();
  SetDeadline(kKeepAlive, state_->options.keepalive);
  // A backend that neither accepts nor refuses in time is as good as absent.
  SetDeadline(kAccept, state_->options.accept_timeout);
  if (state_->options.max_stream_duration > absl::ZeroDuration()) {
    SetDeadline(kDuration, state_->options.max_stream_duration);
  }
}

// ---- Plain responses -------------------------------------------------------

void Session::Respond(PlainResponse response) {
  if (response.close) keep_alive_ = false;
  const int status = static_cast<int>(response.status);
  if (status >= 400) state_->metrics.CountRejection(status);
  Headers fields;
  if (!response.content_type.empty()) fields.emplace_back("Content-Type", response.content_type);
  fields.emplace_back("Cache-Control", "no-store");
  for (auto& field : CorsHeaders(origin_, state_->options)) fields.push_back(std::move(field));
  for (auto& field : response.headers) fields.push_back(std::move(field));
  fields.emplace_back("Content-Length", absl::StrCat(response.body.size()));
  out_ += ResponseHead(response.status, fields, keep_alive_);
  // A HEAD response announces the body's length but carries none.
  if (!head_only_) out_ += response.body;
  responding_ = true;
  close_after_write_ = !keep_alive_;
  Write();
}

void Session::ContinueConnection() {
  if (closed_) return;
  if (!keep_alive_ || http10_ || state_->draining.load()) {
    Close();
    return;
  }
  if (pipelined_) {
    HttpRequest next = std::move(*pipelined_);
    pipelined_.reset();
    HandleRequest(std::move(next));
    return;
  }
  if (buffer_.size() > 0) {
    // A pipelined request's bytes are here already.
    SetDeadline(kRead, state_->options.header_timeout);
    DoReadRequest();
    return;
  }
  // Idle until the next request starts; from its first byte the header
  // timeout applies, as on a new connection (else a slow sender would get the
  // idle timeout for its headers).
  SetDeadline(kRead, state_->options.idle_timeout);
  reading_ = true;
  socket_.async_wait(net::socket_base::wait_read, [self = shared_from_this()](error_code ec) {
    self->reading_ = false;
    if (self->closed_) return;
    if (ec) {
      self->Close();
      return;
    }
    self->SetDeadline(kRead, self->state_->options.header_timeout);
    self->DoReadRequest();
  });
}

// ---- Streams -------------------------------------------------------------

void Session::Pump() {
  if (closed_ || !streaming_ || body_done_ || relay_ == nullptr || writing_) return;
  // From here until it is enabled again only this strand writes: an event
  // sent directly between Take and a write of what Take found would
  // overtake it. (Disable waits for a send in progress.)
  direct_.Disable();
  // What a direct send could not finish goes first (out_ is empty: nothing
  // is queued while no write is in flight).
  if (std::string leftover = direct_.TakeLeftover(); !leftover.empty()) out_.insert(0, leftover);
  StreamRelay::Taken taken = relay_->Take(&events_);
  if (taken.accepted && !headers_sent_) AppendStreamHead();
  if (!events_.empty()) {
    if (!headers_sent_) AppendStreamHead();
    AppendChunk(events_);
    events_.clear();
    state_->metrics.events_sent += taken.events;
    wrote_since_tick_ = true;
  }
  if (taken.done) {
    FinishStream(*taken.done);
    return;
  }
  if (out_.empty()) {
    // Nothing to write: the next events may leave from the gRPC thread.
    if (headers_sent_) direct_.Enable(socket_.native_handle(), /*chunked=*/!http10_);
    return;
  }
  Write();
}

void Session::FinishStream(const grpc::Status& status) {
  ReleaseRelay();  // over or failed: nothing more comes from it
  final_code_ = status.error_code();
  ClearDeadline(kAccept);
  switch (DecideStreamEnd(status, headers_sent_, wants_event_stream_)) {
    case StreamEnd::kHttpError:
      final_http_ = HttpStatusFor(status.error_code());
      EndStream();
      Respond(ErrorResponse(status, *state_));
      return;
    case StreamEnd::kHeaderTooLarge: {
      // Never accepted, refused for its metadata: 431, so EventSource stops.
      final_http_ = 431;
      EndStream();
      PlainResponse response = ErrorResponse(status, *state_);
      response.status = http::status::request_header_fields_too_large;
      response.close = true;
      Respond(std::move(response));
      return;
    }
    case StreamEnd::kRetry:
      // An outage, not the end: the browser retries and resumes (an SSE
      // head carries the retry: hint already).
      if (!headers_sent_) {
        AppendStreamHead();
        if (format_ == StreamFormat::kSse) break;
      }
      AppendChunk(
          format_ == StreamFormat::kSse
              ? SseRetry(state_->options.retry)
              : NdjsonError(StatusJson(grpc::StatusCode::UNAVAILABLE, status.error_message())));
      break;
    case StreamEnd::kEndEvent: {
      if (!headers_sent_) AppendStreamHead();
      const std::string status_json = StatusJson(status.error_code(), status.error_message(),
                                                 state_->json->DetailsJson(status.error_details()));
      if (format_ == StreamFormat::kSse) {
        AppendChunk(SseEnd(status_json));
      } else if (!status.ok()) {
        AppendChunk(NdjsonError(status_json));
      }
      break;
    }
  }
  AppendLastChunk();
  body_done_ = true;
  Write();
}

void Session::CutStream() {
  if (!streaming_ || body_done_) return;
  // Cut with a retry hint and no `end`: the browser reconnects (perhaps to
  // another bridge) and resumes from its Last-Event-ID. The connection closes
  // afterwards, so nothing of the cut call can meet a next stream.
  keep_alive_ = false;
  final_code_ = grpc::StatusCode::UNAVAILABLE;
  ReleaseRelay();
  if (headers_sent_ || format_ != StreamFormat::kSse) {
    if (!headers_sent_) AppendStreamHead();
    AppendChunk(
        format_ == StreamFormat::kSse
            ? SseRetry(state_->options.retry)
            : NdjsonError(StatusJson(grpc::StatusCode::UNAVAILABLE, "stream cut; reconnect")));
  } else {
    AppendStreamHead();  // an SSE head carries the retry: hint
  }
  AppendLastChunk();
  body_done_ = true;
  Write();
}

void Session::AppendStreamHead() {
  headers_sent_ = true;
  ClearDeadline(kAccept);
  Headers fields = {
      {"Content-Type",
       format_ == StreamFormat::kSse ? "text/event-stream; charset=utf-8" : "application/x-ndjson"},
      {"Cache-Control", "no-cache, no-transform"},
      {"X-Accel-Buffering", "no"},
  };
  for (auto& field : CorsHeaders(origin_, state_->options)) fields.push_back(std::move(field));
  // HTTP/1.0 has no chunked encoding: the body runs to the connection's close.
  if (!http10_) fields.emplace_back("Transfer-Encoding", "chunked");
  out_ += ResponseHead(http::status::ok, fields, keep_alive_ && !http10_);
  // The reconnection delay up front: a browser whose bridge dies (no cut
  // with a retry: of its own) then reconnects after --retry, not after its
  // default (3 s in Chromium and eventsource).
  if (format_ == StreamFormat::kSse) AppendChunk(SseRetry(state_->options.retry));
}

void Session::AppendChunk(absl::string_view body) {
  if (body.empty() || head_only_) return;
  if (http10_) {
    out_.append(body.data(), body.size());
    return;
  }
  absl::StrAppend(&out_, absl::Hex(body.size()), "\r\n", body, "\r\n");
}

void Session::AppendLastChunk() {
  if (!http10_ && !head_only_) out_ += "0\r\n\r\n";
}

void Session::ReleaseRelay() {
  if (relay_ == nullptr) return;
  stream_events_ = relay_->events();
  stream_bytes_ = relay_->bytes();
  relay_.reset();
}

void Session::EndStream() {
  if (!streaming_) return;
  streaming_ = false;
  direct_.Disable();
  ReleaseRelay();
  ClearDeadline(kKeepAlive);
  ClearDeadline(kAccept);
  ClearDeadline(kDuration);
  client_slot_.reset();
  state_->metrics.active_streams--;
  // A client that left before the headers: nginx's 499.
  const int http_status = headers_sent_ ? 200 : final_http_ != 0 ? final_http_ : 499;
  state_->metrics.CountStreamEnd(final_code_);
  LogAccess(http_status, final_code_, stream_events_, stream_bytes_);
  // An idle connection keeps no stream-sized buffers.
  std::string().swap(events_);
}

void Session::LogAccess(int http_status, grpc::StatusCode code, int64_t events, int64_t bytes) {
  if (state_->access_log == nullptr) return;
  // The route, never the target: a query may hold ?access_token=.
  state_->access_log->Write(absl::StrCat(
      "{\"time\":\"", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()),
      "\",\"client\":\"", client_address_, "\",\"route\":\"", route_, "\",\"status\":", http_status,
      ",\"code\":", static_cast<int>(code), ",\"events\":", events, ",\"bytes\":", bytes,
      ",\"duration_ms\":",
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - stream_started_).count(),
      "}"));
}

// ---- The write queue -----------------------------------------------------

void Session::Write() {
  if (writing_ || closed_ || out_.empty()) return;
  // From here only this write queue sends; a direct send's rest goes first.
  direct_.Disable();
  if (std::string leftover = direct_.TakeLeftover(); !leftover.empty()) {
    out_.insert(0, leftover);
  }
  in_flight_.swap(out_);
  out_.clear();
  writing_ = true;
  SetDeadline(kWrite, state_->options.write_timeout);
  net::async_write(socket_, net::buffer(in_flight_),
                   [self = shared_from_this()](error_code ec, size_t) { self->OnWritten(ec); });
}

void Session::OnWritten(error_code ec) {
  writing_ = false;
  ClearDeadline(kWrite);
  in_flight_.clear();
  if (closed_) return;
  if (ec) {
    Close();
    return;
  }
  if (!out_.empty()) {
    Write();
    return;
  }
  if (streaming_ && !body_done_) {
    Pump();  // whatever the relay read meanwhile goes out as one write
    return;
  }
  // A response or a stream is completely out.
  if (in_flight_.capacity() > 64 * 1024) std::string().swap(in_flight_);
  if (streaming_) EndStream();
  responding_ = false;
  if (close_after_write_) {
    Close();
    return;
  }
  ContinueConnection();
}

// ---- The deadlines -------------------------------------------------------

void Session::SetDeadline(Deadline which, absl::Duration after) {
  deadlines_[which] = Clock::now() + absl::ToChronoNanoseconds(after);
  ArmTimer();
}

void Session::ArmTimer() {
  const Clock::time_point earliest = *std::min_element(deadlines_.begin(), deadlines_.end());
  if (closed_ || earliest >= timer_at_) return;
  timer_at_ = earliest;
  timer_.expires_at(earliest);
  timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (ec == net::error::operation_aborted) return;  // re-armed earlier, or closed
    self->timer_at_ = Clock::time_point::max();
    self->OnDeadlines();
  });
}

void Session::OnDeadlines() {
  if (closed_) return;
  const Clock::time_point now = Clock::now();
  auto due = [&](Deadline which) {
    if (deadlines_[which] > now) return false;
    ClearDeadline(which);
    return true;
  };
  if (due(kWrite) && writing_) {
    Close();  // a browser that stops reading for this long is gone
    return;
  }
  if (due(kRead) && reading_ && !streaming_ && !responding_) {
    Close();
    return;
  }
  if (due(kAccept) && streaming_ && !headers_sent_ && !body_done_) {
    ReleaseRelay();
    FinishStream(
        grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "the backend did not answer in time"));
  }
  if (due(kDuration)) CutStream();
  if (due(kKeepAlive) && streaming_ && !body_done_) {
    // Before the backend has answered nothing may go out, not even headers.
    const bool sent_directly = direct_.SentSinceLastAsked();
    if (!wrote_since_tick_ && !sent_directly && headers_sent_ && format_ == StreamFormat::kSse) {
      direct_.Disable();  // the comment goes between events, never inside one's write
      AppendChunk(SseKeepAlive());
      Write();
    }
    wrote_since_tick_ = false;
    deadlines_[kKeepAlive] = now + absl::ToChronoNanoseconds(state_->options.keepalive);
  }
  ArmTimer();
}

void Session::Close() {
  if (closed_) return;
  closed_ = true;
  direct_.Disable();  // no send may meet a closed (or reused) descriptor
  ReleaseRelay();
  EndStream();
  if (unary_ != nullptr) {
    // The client left before the reply: the backend sees a cancel.
    unary_->Cancel();
    unary_.reset();
    LogAccess(499, grpc::StatusCode::CANCELLED, 0, 0);
  }
  error_code ignored;
  timer_.cancel();
  socket_.shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace gravity::bridge::internal
