#include "bridge/internal/session.h"

#include <cassert>
#include <chrono>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/post.hpp"
#include "boost/asio/write.hpp"
#include "boost/url/parse.hpp"
#include "bridge/internal/request_mapping.h"
#include "bridge/internal/sse.h"
#include "bridge/internal/status_mapping.h"
#include "google/protobuf/util/json_util.h"

namespace gravity::bridge::internal {

namespace http = boost::beast::http;
namespace net = boost::asio;
using boost::beast::error_code;

namespace {

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

// gRPC rejects metadata values outside printable ASCII.
bool IsValidMetadataValue(absl::string_view value) {
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

std::string EventId(const google::protobuf::Message& message,
                    const google::protobuf::FieldDescriptor* field) {
  if (field == nullptr || field->is_repeated()) return "";
  const auto* reflection = message.GetReflection();
  using FD = google::protobuf::FieldDescriptor;
  switch (field->cpp_type()) {
    case FD::CPPTYPE_INT32:
      return absl::StrCat(reflection->GetInt32(message, field));
    case FD::CPPTYPE_INT64:
      return absl::StrCat(reflection->GetInt64(message, field));
    case FD::CPPTYPE_UINT32:
      return absl::StrCat(reflection->GetUInt32(message, field));
    case FD::CPPTYPE_UINT64:
      return absl::StrCat(reflection->GetUInt64(message, field));
    case FD::CPPTYPE_STRING:
      return reflection->GetString(message, field);
    default:
      return "";
  }
}

// Metadata size as HTTP/2 (and gRPC's limit) counts it.
size_t MetadataSize(const std::vector<std::pair<std::string, std::string>>& metadata) {
  size_t size = 0;
  for (const auto& [key, value] : metadata) size += key.size() + value.size() + 32;
  return size;
}

// gRPC's own status for a call whose initial metadata the backend refused as
// too large. The backend fails its whole connection with it, so every call on
// that connection ends with this status, not only the oversized one.
bool IsBackendMetadataLimit(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
         absl::StartsWith(status.error_message(), "received initial metadata size exceeds limit");
}

}  // namespace

Session::Session(net::ip::tcp::socket socket, std::shared_ptr<BridgeState> state)
    : socket_(std::move(socket)),
      state_(std::move(state)),
      idle_timer_(socket_.get_executor()),
      write_timer_(socket_.get_executor()),
      keepalive_timer_(socket_.get_executor()),
      duration_timer_(socket_.get_executor()),
      accept_timer_(socket_.get_executor()) {
  error_code ec;
  auto peer = socket_.remote_endpoint(ec);
  if (!ec) client_address_ = peer.address().to_string();
  state_->metrics.connections_active++;
}

Session::~Session() {
  ReleaseUpstream(/*cancel=*/true);
  if (streaming_) state_->metrics.active_streams--;
  state_->metrics.connections_active--;
}

void Session::Start() {
  net::post(socket_.get_executor(), [self = shared_from_this()] {
    self->ArmIdleTimeout(self->state_->options.header_timeout);
    self->DoReadRequest();
  });
}

void Session::Drain() {
  net::post(socket_.get_executor(), [self = shared_from_this()] {
    self->keep_alive_ = false;
    if (self->streaming_) {
      self->CutStream();
    } else if (!self->responding()) {
      self->Close();
    }
  });
}

void Session::CutStream() {
  if (!streaming_ || body_done_) return;
  // Cut with a retry hint and no `end`: the browser reconnects (perhaps to
  // another bridge) and resumes from its Last-Event-ID. The connection closes
  // afterwards, so nothing of the cut call can meet a next stream.
  keep_alive_ = false;
  ReleaseUpstream(/*cancel=*/true);
  if (!headers_sent_) SendStreamHeaders();
  if (format_ == Format::kSse) {
    Queue(SseRetry(state_->options.retry));
  } else {
    Queue(NdjsonError(StatusJson(grpc::StatusCode::UNAVAILABLE, "stream cut; reconnect")));
  }
  body_done_ = true;
  DoWrite();
}

bool Session::responding() const { return response_.has_value(); }

// ---- Requests ------------------------------------------------------------

void Session::DoReadRequest() {
  if (reading_ || closed_) return;
  reading_ = true;
  parser_.emplace();
  parser_->header_limit(static_cast<uint32_t>(state_->options.max_header_bytes));
  parser_->body_limit(state_->options.max_body_bytes);
  http::async_read(socket_, buffer_, *parser_,
                   [self = shared_from_this()](error_code ec, size_t) { self->OnReadRequest(ec); });
}

void Session::OnReadRequest(error_code ec) {
  reading_ = false;
  idle_timer_.cancel();
  if (closed_) return;
  if (ec) {
    if (streaming_) {
      // The browser went away mid-stream: stop the backend at once.
      ReleaseUpstream(/*cancel=*/true);
      EndStream();
      Close();
      return;
    }
    if (responding()) {
      // One response at a time: close once the one being written is out.
      keep_alive_ = false;
      return;
    }
    if (ec == http::error::header_limit || ec == http::error::body_limit) {
      keep_alive_ = false;
      const bool header = ec == http::error::header_limit;
      Respond(
          header ? http::status::request_header_fields_too_large : http::status::payload_too_large,
          "application/json",
          StatusJson(grpc::StatusCode::INVALID_ARGUMENT,
                     header ? "request headers too large" : "request body too large") +
              "\n");
      return;
    }
    if (ec != http::error::end_of_stream && ec != net::error::operation_aborted &&
        ec != net::error::eof && ec != net::error::connection_reset) {
      keep_alive_ = false;
      Respond(http::status::bad_request, "application/json",
              StatusJson(grpc::StatusCode::INVALID_ARGUMENT,
                         absl::StrCat("malformed HTTP request: ", ec.message())) +
                  "\n");
      return;
    }
    Close();
    return;
  }
  Request request = parser_->release();
  if (streaming_ || responding()) {
    pipelined_ = std::move(request);  // served when the current response ends
    return;
  }
  HandleRequest(std::move(request));
}

void Session::HandleRequest(Request request) {
  keep_alive_ = request.keep_alive() && !state_->draining.load();
  origin_ = std::string(request[http::field::origin]);
  auto target = boost::urls::parse_origin_form(request.target());
  if (!target) {
    RespondError(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "malformed request target"));
    return;
  }
  const std::string path(target->encoded_path());
  if (request.method() == http::verb::options) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!CorsHeaders().empty()) {
      headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      std::string asked(request[http::field::access_control_request_headers]);
      if (!asked.empty()) headers.emplace_back("Access-Control-Allow-Headers", asked);
      headers.emplace_back("Access-Control-Max-Age", "600");
    }
    Respond(http::status::no_content, "", "", std::move(headers));
    return;
  }
  if (path == "/healthz") {
    const bool draining = state_->draining.load();
    Respond(draining ? http::status::service_unavailable : http::status::ok, "application/json",
            draining ? "{\"status\":\"DRAINING\"}\n" : "{\"status\":\"SERVING\"}\n");
    return;
  }
  if (path == "/metrics") {
    const Metrics& m = state_->metrics;
    Respond(http::status::ok, "text/plain; version=0.0.4",
            absl::StrCat("# HELP gravity_bridge_active_streams Streams being served now.\n",
                         "# TYPE gravity_bridge_active_streams gauge\n",
                         "gravity_bridge_active_streams ", m.active_streams.load(), "\n",
                         "# HELP gravity_bridge_streams_total Streams started.\n",
                         "# TYPE gravity_bridge_streams_total counter\n",
                         "gravity_bridge_streams_total ", m.streams_total.load(), "\n",
                         "# HELP gravity_bridge_events_sent_total Messages sent to clients.\n",
                         "# TYPE gravity_bridge_events_sent_total counter\n",
                         "gravity_bridge_events_sent_total ", m.events_sent.load(), "\n",
                         "# HELP gravity_bridge_connections_active Open HTTP connections.\n",
                         "# TYPE gravity_bridge_connections_active gauge\n",
                         "gravity_bridge_connections_active ", m.connections_active.load(), "\n"));
    return;
  }
  if (path == "/" && !state_->options.index_html.empty()) {
    Respond(http::status::ok, "text/html; charset=utf-8", state_->options.index_html);
    return;
  }
  std::optional<RouteMatch> match = state_->routes->Match(path);
  if (!match) {
    RespondError(grpc::Status(grpc::StatusCode::NOT_FOUND, absl::StrCat("no stream at ", path)));
    return;
  }
  if (request.method() != http::verb::get && request.method() != http::verb::post) {
    Respond(http::status::method_not_allowed, "application/json",
            StatusJson(grpc::StatusCode::UNIMPLEMENTED,
                       absl::StrCat(std::string(request.method_string()), " is not allowed on ",
                                    path, "; use GET or POST")) +
                "\n",
            {{"Allow", "GET, POST, OPTIONS"}});
    return;
  }
  auto query = ParseQuery(std::string(target->encoded_query()));
  if (!query.ok()) {
    RespondError(
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(query.status().message())));
    return;
  }
  StartStream(request, *match, *query);
}

void Session::StartStream(const Request& request, const RouteMatch& match,
                          const std::vector<std::pair<std::string, std::string>>& query) {
  auto invalid = [this](absl::string_view message) {
    RespondError(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(message)));
  };
  if (state_->draining.load()) {
    RespondError(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the bridge is shutting down"));
    return;
  }
  if (state_->metrics.active_streams.load() >= state_->options.max_streams) {
    RespondError(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the bridge is at its stream limit"));
    return;
  }
  const google::protobuf::MethodDescriptor* method = match.method->method;
  std::unique_ptr<google::protobuf::Message> message(
      state_->factory->GetPrototype(method->input_type())->New());
  if (request.method() == http::verb::post && !request.body().empty()) {
    auto parsed = google::protobuf::util::JsonStringToMessage(request.body(), message.get());
    if (!parsed.ok()) return invalid(absl::StrCat("request body: ", parsed.message().as_string()));
  }
  if (absl::Status applied = ApplyQuery(query, message.get()); !applied.ok()) {
    return invalid(applied.message());
  }
  for (const auto& [field, value] : match.path_fields) {
    if (absl::Status set = SetField(field, value, message.get()); !set.ok()) {
      return invalid(set.message());
    }
  }

  std::vector<std::pair<std::string, std::string>> metadata;
  auto forward = [&](std::string key, boost::beast::string_view header) {
    const absl::string_view value(header.data(), header.size());
    if (value.empty()) return true;
    if (!IsValidMetadataValue(value)) return false;
    metadata.emplace_back(std::move(key), std::string(value));
    return true;
  };
  std::string access_token;
  std::string last_event_id(request["Last-Event-ID"]);
  for (const auto& [key, value] : query) {
    if (key == kAccessTokenParam) access_token = value;
    if (key == kLastEventIdParam && last_event_id.empty()) last_event_id = value;
  }
  bool valid = true;
  if (!request[http::field::authorization].empty()) {
    valid &= forward("authorization", request[http::field::authorization]);
  } else if (!access_token.empty()) {
    valid &= forward("authorization", std::string("Bearer ") + access_token);
  }
  valid &= forward("cookie", request[http::field::cookie]);
  valid &= forward("last-event-id", last_event_id);
  for (const std::string& name : state_->options.forward_headers) {
    valid &= forward(absl::AsciiStrToLower(name), request[name]);
  }
  if (!valid) return invalid("a forwarded header holds characters gRPC metadata cannot carry");
  if (const size_t size = MetadataSize(metadata); size > state_->options.max_metadata_bytes) {
    // Before anything goes upstream: one oversized call would fail the
    // backend connection that every other stream shares.
    keep_alive_ = false;
    Respond(http::status::request_header_fields_too_large, "application/json",
            StatusJson(grpc::StatusCode::INVALID_ARGUMENT,
                       absl::StrCat("the forwarded headers (Authorization, Cookie, "
                                    "Last-Event-ID, ...) take ",
                                    size, " bytes; the bridge forwards at most ",
                                    state_->options.max_metadata_bytes)) +
                "\n");
    return;
  }

  const std::string accept(request[http::field::accept]);
  format_ = absl::StrContains(accept, "application/x-ndjson") ? Format::kNdjson : Format::kSse;
  wants_event_stream_ = absl::StrContains(accept, "text/event-stream");
  client_slot_ = state_->client_streams.Acquire(client_address_);
  if (!client_slot_) {
    RespondError(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                              "too many streams from this client address"));
    return;
  }
  std::string bytes;
  message->SerializeToString(&bytes);
  grpc::Slice slice(std::move(bytes));
  grpc::ByteBuffer payload(&slice, 1);

  ++stream_id_;
  streaming_ = true;
  method_ = match.method;
  scratch_.reset(state_->factory->GetPrototype(method->output_type())->New());
  headers_sent_ = false;
  body_done_ = false;
  last_chunk_sent_ = false;
  read_after_write_ = false;
  wrote_since_tick_ = false;
  final_status_.reset();
  state_->metrics.active_streams++;
  state_->metrics.streams_total++;
  assert(upstream_ == nullptr);
  upstream_ = UpstreamCall::Start(*state_->stub, match.method->grpc_path, payload, metadata,
                                  weak_from_this(), stream_id_, state_->upstream_calls_live);
  // Reading the next request doubles as noticing the browser leave.
  DoReadRequest();
  ArmKeepAlive();
  if (state_->options.max_stream_duration > absl::ZeroDuration()) {
    duration_timer_.expires_after(ToChrono(state_->options.max_stream_duration));
    duration_timer_.async_wait([self = shared_from_this(), id = stream_id_](error_code ec) {
      if (!ec && id == self->stream_id_) self->CutStream();
    });
  }
  // A backend that neither accepts nor refuses in time is as good as absent.
  accept_timer_.expires_after(ToChrono(state_->options.accept_timeout));
  accept_timer_.async_wait([self = shared_from_this(), id = stream_id_](error_code ec) {
    if (ec || id != self->stream_id_ || !self->streaming_ || self->headers_sent_ ||
        self->body_done_ || self->upstream_ == nullptr) {
      return;
    }
    self->final_status_ =
        grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "the backend did not answer in time");
    self->ReleaseUpstream(/*cancel=*/true);
  });
}

// ---- Plain responses -------------------------------------------------------

std::vector<std::pair<std::string, std::string>> Session::CorsHeaders() const {
  std::vector<std::pair<std::string, std::string>> headers;
  if (origin_.empty()) return headers;
  bool any = false;
  for (const std::string& allowed : state_->options.cors_origins) {
    if (allowed == origin_) {
      headers.emplace_back("Access-Control-Allow-Origin", origin_);
      headers.emplace_back("Access-Control-Allow-Credentials", "true");
      headers.emplace_back("Vary", "Origin");
      return headers;
    }
    any = any || allowed == "*";
  }
  // "*" never goes with credentials.
  if (any) headers.emplace_back("Access-Control-Allow-Origin", "*");
  return headers;
}

void Session::Respond(http::status status, std::string content_type, std::string body,
                      std::vector<std::pair<std::string, std::string>> headers) {
  response_.emplace(status, 11);
  response_->set(http::field::server, "gravity-bridge");
  if (!content_type.empty()) response_->set(http::field::content_type, content_type);
  response_->set(http::field::cache_control, "no-store");
  for (auto& [name, value] : CorsHeaders()) response_->set(name, value);
  for (auto& [name, value] : headers) response_->set(name, value);
  response_->keep_alive(keep_alive_);
  response_->body() = std::move(body);
  response_->prepare_payload();
  ArmWriteTimeout();
  http::async_write(socket_, *response_,
                    [self = shared_from_this()](error_code ec, size_t) { self->OnResponded(ec); });
}

void Session::RespondError(const grpc::Status& status) {
  Respond(static_cast<http::status>(HttpStatusFor(status.error_code())), "application/json",
          StatusJsonOf(status) + "\n");
}

std::string Session::StatusJsonOf(const grpc::Status& status) const {
  return StatusJson(status.error_code(), status.error_message(),
                    state_->json->DetailsJson(status.error_details()));
}

void Session::OnResponded(error_code ec) {
  response_.reset();
  write_timer_.cancel();
  if (ec || closed_) {
    Close();
    return;
  }
  ContinueConnection();
}

void Session::ContinueConnection() {
  if (closed_) return;
  if (!keep_alive_ || state_->draining.load()) {
    Close();
    return;
  }
  if (pipelined_) {
    Request next = std::move(*pipelined_);
    pipelined_.reset();
    HandleRequest(std::move(next));
    return;
  }
  ArmIdleTimeout(state_->options.idle_timeout);
  DoReadRequest();
}

// ---- Streams -------------------------------------------------------------

void Session::OnUpstreamAccepted(uint64_t call_id, bool ok) {
  if (!ok) return;  // rejected: the status arrives with OnUpstreamDone
  net::post(socket_.get_executor(), [self = shared_from_this(), call_id] {
    // The backend accepted (gravity servers say so before any message): the
    // browser's EventSource opens now, not at the first message.
    if (call_id == self->stream_id_ && self->streaming_ && !self->headers_sent_ &&
        !self->body_done_ && !self->closed_) {
      self->SendStreamHeaders();
    }
  });
}

void Session::OnUpstreamRead(uint64_t call_id, bool ok, grpc::ByteBuffer message) {
  net::post(socket_.get_executor(),
            [self = shared_from_this(), call_id, ok, message = std::move(message)]() mutable {
              if (call_id == self->stream_id_) self->OnUpstreamReadOnStrand(ok, std::move(message));
            });
}

void Session::OnUpstreamDone(uint64_t call_id, grpc::Status status) {
  net::post(socket_.get_executor(),
            [self = shared_from_this(), call_id, status = std::move(status)] {
              if (call_id == self->stream_id_) self->OnUpstreamDoneOnStrand(status);
            });
}

void Session::OnUpstreamReadOnStrand(bool ok, grpc::ByteBuffer bytes) {
  if (!streaming_ || upstream_ == nullptr || closed_) return;
  if (!ok) {
    ReleaseUpstream(/*cancel=*/false);  // OnUpstreamDone brings the status
    return;
  }
  message_bytes_.clear();
  std::vector<grpc::Slice> slices;
  if (bytes.Dump(&slices).ok()) {
    for (const grpc::Slice& slice : slices) {
      message_bytes_.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
  }
  const google::protobuf::Descriptor& type = *method_->method->output_type();
  std::string json;
  std::string id;
  bool valid = state_->json->ToJson(type, message_bytes_, &json).ok();
  if (valid && method_->event_id != nullptr) {
    scratch_->Clear();
    valid = scratch_->ParseFromString(message_bytes_);
    id = EventId(*scratch_, method_->event_id);
  }
  if (!valid) {
    final_status_ =
        grpc::Status(grpc::StatusCode::INTERNAL,
                     absl::StrCat("the backend sent a message that is not a ", type.full_name()));
    ReleaseUpstream(/*cancel=*/true);
    return;
  }
  if (!headers_sent_) SendStreamHeaders();
  Queue(format_ == Format::kSse ? SseMessage(id, json) : NdjsonResult(json));
  state_->metrics.events_sent++;
  // Flow control: the next read waits until the browser has taken this one.
  read_after_write_ = true;
  DoWrite();
}

void Session::OnUpstreamDoneOnStrand(grpc::Status status) {
  if (!streaming_ || body_done_ || closed_) return;
  const grpc::Status final_status = final_status_ ? *final_status_ : status;
  if (IsBackendMetadataLimit(final_status)) {
    if (!headers_sent_) {
      // Never accepted: most likely this request's own metadata (a backend
      // limit below --max_metadata_bytes). 431, so EventSource stops.
      EndStream();
      keep_alive_ = false;
      Respond(http::status::request_header_fields_too_large, "application/json",
              StatusJsonOf(final_status) + "\n");
      return;
    }
    // Accepted, so its own metadata was fine: another call failed the shared
    // connection. That is an outage of this stream, not its end: resume.
    CutStream();
    return;
  }
  const bool unavailable = final_status.error_code() == grpc::StatusCode::UNAVAILABLE;
  // Before the first message only EventSource gets "200 + retry:" (it would
  // give up on a 503); other clients get the 503.
  if (!headers_sent_ && !final_status.ok() && !(unavailable && wants_event_stream_)) {
    // Before the first message an error is an HTTP status, so EventSource stops.
    EndStream();
    RespondError(final_status);
    return;
  }
  if (!headers_sent_) SendStreamHeaders();
  if (format_ == Format::kSse) {
    // UNAVAILABLE is not the end: the browser retries and resumes.
    Queue(unavailable ? SseRetry(state_->options.retry) : SseEnd(StatusJsonOf(final_status)));
  } else if (!final_status.ok()) {
    Queue(NdjsonError(StatusJsonOf(final_status)));
  }
  body_done_ = true;
  DoWrite();
}

void Session::SendStreamHeaders() {
  headers_sent_ = true;
  stream_header_.emplace(http::status::ok, 11);
  auto& header = *stream_header_;
  header.set(http::field::server, "gravity-bridge");
  header.set(http::field::content_type,
             format_ == Format::kSse ? "text/event-stream; charset=utf-8" : "application/x-ndjson");
  header.set(http::field::cache_control, "no-cache, no-transform");
  header.set("X-Accel-Buffering", "no");
  for (auto& [name, value] : CorsHeaders()) header.set(name, value);
  header.keep_alive(keep_alive_);
  header.chunked(true);
  header_serializer_.emplace(header);
  writing_ = true;
  ArmWriteTimeout();
  http::async_write_header(
      socket_, *header_serializer_,
      [self = shared_from_this()](error_code ec, size_t) { self->OnWrite(ec); });
}

void Session::Queue(std::string bytes) {
  outbox_ += bytes;
  wrote_since_tick_ = true;
}

void Session::DoWrite() {
  if (writing_ || closed_ || !headers_sent_) return;
  auto on_write = [self = shared_from_this()](error_code ec, size_t) { self->OnWrite(ec); };
  if (!outbox_.empty()) {
    // Everything queued goes out as one chunk: batched writes.
    in_write_ = std::move(outbox_);
    outbox_.clear();
    writing_ = true;
    ArmWriteTimeout();
    net::async_write(socket_, http::make_chunk(net::buffer(in_write_)), std::move(on_write));
    return;
  }
  if (body_done_) {
    if (!last_chunk_sent_) {
      last_chunk_sent_ = true;
      writing_ = true;
      ArmWriteTimeout();
      net::async_write(socket_, http::make_chunk_last(), std::move(on_write));
    } else {
      EndStream();
      ContinueConnection();
    }
    return;
  }
  if (read_after_write_ && upstream_ != nullptr) {
    read_after_write_ = false;
    upstream_->RequestRead();
  }
}

void Session::OnWrite(error_code ec) {
  writing_ = false;
  write_timer_.cancel();
  if (closed_) return;
  if (ec) {
    ReleaseUpstream(/*cancel=*/true);
    EndStream();
    Close();
    return;
  }
  DoWrite();
}

void Session::EndStream() {
  if (!streaming_) return;
  streaming_ = false;
  keepalive_timer_.cancel();
  duration_timer_.cancel();
  accept_timer_.cancel();
  client_slot_.reset();
  state_->metrics.active_streams--;
  method_ = nullptr;
  scratch_.reset();
  // The header, its serializer and in_write_ stay: a write still in flight
  // (the browser left mid-write) reads them until its handler runs. The next
  // stream replaces them, when no write is in flight.
  outbox_.clear();
}

void Session::ArmKeepAlive() {
  keepalive_timer_.expires_after(ToChrono(state_->options.keepalive));
  keepalive_timer_.async_wait([self = shared_from_this(), id = stream_id_](error_code ec) {
    if (ec || id != self->stream_id_ || !self->streaming_ || self->body_done_ || self->closed_) {
      return;
    }
    // Before the backend has answered nothing may go out, not even headers.
    if (!self->wrote_since_tick_ && self->headers_sent_ && self->format_ == Format::kSse) {
      self->Queue(SseKeepAlive());
      self->DoWrite();
    }
    self->wrote_since_tick_ = false;
    self->ArmKeepAlive();
  });
}

void Session::ArmWriteTimeout() {
  // A browser that stops reading for this long is gone.
  const uint64_t id = ++write_id_;
  write_timer_.expires_after(ToChrono(state_->options.write_timeout));
  write_timer_.async_wait([self = shared_from_this(), id](error_code ec) {
    if (!ec && id == self->write_id_ && (self->writing_ || self->responding())) self->Close();
  });
}

void Session::ArmIdleTimeout(absl::Duration timeout) {
  idle_timer_.expires_after(ToChrono(timeout));
  idle_timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (!ec && self->reading_ && !self->streaming_ && !self->responding()) self->Close();
  });
}

void Session::ReleaseUpstream(bool cancel) {
  if (upstream_ == nullptr) return;
  if (cancel) upstream_->Cancel();
  upstream_->Release();
  upstream_ = nullptr;
}

void Session::Close() {
  if (closed_) return;
  closed_ = true;
  ReleaseUpstream(/*cancel=*/true);
  EndStream();
  idle_timer_.cancel();
  write_timer_.cancel();
  keepalive_timer_.cancel();
  duration_timer_.cancel();
  accept_timer_.cancel();
  error_code ignored;
  socket_.shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace gravity::bridge::internal
