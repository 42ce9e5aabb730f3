// One HTTP/2 connection (http2_session.h has the model). nghttp2 calls back
// from inside Receive (nghttp2_session_mem_recv) and SendPending
// (nghttp2_session_mem_send); everything here runs on the strand.
#include "bridge/internal/http2_session.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "boost/asio/post.hpp"
#include "boost/asio/write.hpp"
#include "bridge/internal/gzip_stream.h"
#include "bridge/internal/status_mapping.h"
#include "bridge/internal/stream_format.h"
#include "bridge/internal/trace_context.h"

namespace gravity::bridge::internal {

namespace http = boost::beast::http;
namespace net = boost::asio;
using boost::system::error_code;

namespace {

constexpr size_t kReadBytes = 16 * 1024;
// One write carries at most about this much; the rest leaves with the next.
constexpr size_t kWriteBytes = 256 * 1024;
// A stream takes no more events from its relay while this many bytes of its
// own wait for its flow-control window: its read-ahead then fills and the
// upstream call stops reading.
constexpr size_t kStreamWaitingBytes = 16 * 1024;
// Rapid reset (CVE-2023-44487): each stream a client opens and resets costs an
// upstream call. Past a burst of this many resets, more than kResetRate per
// second end the connection with GOAWAY (ENHANCE_YOUR_CALM). A page that
// closes its 100 EventSources at once stays well inside.
constexpr uint64_t kResetBurst = 200;
constexpr uint64_t kResetRate = 50;

std::chrono::steady_clock::duration Chrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

nghttp2_nv Field(const std::string& name, const std::string& value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

struct Http2Session::Stream {
  enum class State {
    kReading,     // headers or body still coming
    kCalling,     // a unary call is upstream
    kStreaming,   // a stream's relay is live
    kResponding,  // the response's last bytes are with nghttp2
  };

  explicit Stream(int32_t stream_id) : id(stream_id) {}

  const int32_t id;
  State state = State::kReading;

  // The request.
  std::string method, path, authority;
  Headers fields;
  std::string cookie;  // HTTP/2 may split Cookie into several fields
  std::string body;
  size_t header_bytes = 0;
  bool headers_complete = false;  // its header block has ended
  bool request_complete = false;  // END_STREAM from the client
  bool headers_too_large = false;
  bool body_too_large = false;
  bool trailer = false;
  bool dispatched = false;
  bool head_only = false;
  std::string origin;
  bool accepts_gzip = false;  // Accept-Encoding (and --compression)
  Clock::time_point read_deadline = Clock::time_point::max();

  // The response's bytes that wait for nghttp2 (its window), and whether the
  // body ends after them.
  std::string waiting;
  size_t waiting_from = 0;
  bool ending = false;
  bool deferred = false;  // ReadBody said NGHTTP2_ERR_DEFERRED: resume on new bytes
  Clock::time_point stalled_since = Clock::time_point::max();

  // A stream.
  std::unique_ptr<StreamRelay> relay;
  std::optional<ClientStreamCounter::Slot> client_slot;  // held while it counts
  StreamFormat format = StreamFormat::kSse;
  bool wants_event_stream = false;
  absl::Duration retry;              // this stream's jittered retry: hint
  std::unique_ptr<GzipStream> gzip;  // a compressed stream's compressor
  bool headers_sent = false;
  bool wrote_since_tick = false;
  Clock::time_point accept_deadline = Clock::time_point::max();
  Clock::time_point duration_deadline = Clock::time_point::max();
  // A unary call.
  std::shared_ptr<UpstreamUnaryCall> unary;
  const RoutedMethod* unary_method = nullptr;

  // For /metrics and the access log.
  absl::Time arrived;
  ExchangeRecord exchange;

  size_t waiting_bytes() const { return waiting.size() - waiting_from; }
};

Http2Session::Http2Session(Transport transport, std::string received, Protocol protocol,
                           std::shared_ptr<BridgeState> state)
    : transport_(std::move(transport)),
      protocol_(protocol),
      state_(std::move(state)),
      received_(std::move(received)),
      timer_(transport_.get_executor()) {
  error_code ec;
  auto peer = transport_.socket().remote_endpoint(ec);
  if (!ec) client_address_ = peer.address().to_string();
  state_->metrics.connections_active++;
  state_->metrics.CountConnection(protocol_);

  nghttp2_session_callbacks* callbacks;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, OnFrameReceived);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, OnStreamClose);
  nghttp2_option* option;
  nghttp2_option_new(&option);
  nghttp2_option_set_stream_reset_rate_limit(option, kResetBurst, kResetRate);
  // nghttp2's own bounds, stated here so they are not a library default that
  // may change: CONTINUATION frames per header block (CVE-2024-27316 class),
  // SETTINGS entries, and the SETTINGS/PING acknowledgements a client that
  // does not read can queue before the connection ends.
  nghttp2_option_set_max_continuations(option, 8);
  nghttp2_option_set_max_settings(option, 32);
  nghttp2_option_set_max_outbound_ack(option, 1000);
  nghttp2_session_server_new2(&session_, callbacks, this, option);
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);

  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
       static_cast<uint32_t>(state_->options.http2_max_concurrent_streams)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
       static_cast<uint32_t>(state_->options.max_header_bytes)},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
}

Http2Session::~Http2Session() {
  // Only when the bridge stops with handlers unrun: what it served ends.
  for (auto& [id, stream] : streams_) EndServing(*stream);
  streams_.clear();
  nghttp2_session_del(session_);
  state_->metrics.connections_active--;
}

void Http2Session::Start() {
  wakeups_ = std::make_shared<Wakeups>(weak_from_this(), transport_.get_executor());
  net::post(transport_.get_executor(), [self = shared_from_this()] {
    if (self->closed_) return;
    if (self->state_->draining.load()) {
      self->Close();
      return;
    }
    // The first request must come within the header timeout (a preface
    // followed by silence holds nothing for long).
    self->idle_deadline_ = Clock::now() + Chrono(self->state_->options.header_timeout);
    self->ArmTimer(self->idle_deadline_);
    std::string received = std::move(self->received_);
    if (!self->Receive(reinterpret_cast<const uint8_t*>(received.data()), received.size())) return;
    self->SendPending();
    if (!self->closed_) self->Read();
  });
}

void Http2Session::Drain() {
  net::post(transport_.get_executor(), [self = shared_from_this()] {
    if (self->closed_ || self->draining_) return;
    self->draining_ = true;
    for (auto& [id, stream] : self->streams_) {
      if (stream->state == Stream::State::kStreaming) {
        self->CutStream(*stream);
      } else if (stream->state == Stream::State::kCalling) {
        self->EndUnary(*stream, /*cancel=*/true, 503, grpc::StatusCode::UNAVAILABLE);
        self->Respond(*stream,
                      Unavailable("the bridge is shutting down; retry the call", *self->state_));
      }
      // kReading: answered 503 by the router once it is in.
    }
    nghttp2_submit_goaway(self->session_, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(self->session_), NGHTTP2_NO_ERROR,
                          nullptr, 0);
    self->SendPending();
    self->CloseIfDone();
  });
}

void Http2Session::Wakeups::Wake(int32_t stream_id) {
  {
    absl::MutexLock lock(&mu_);
    woken_.push_back(stream_id);
    if (posted_) return;
    posted_ = true;
  }
  // The posted handler owns the session reference: it is never released here.
  if (auto session = session_.lock()) {
    net::post(executor_, [session = std::move(session)] { session->OnWakeups(); });
  }
}

std::vector<int32_t> Http2Session::Wakeups::Take() {
  std::vector<int32_t> woken;
  absl::MutexLock lock(&mu_);
  woken.swap(woken_);
  posted_ = false;
  return woken;
}

void Http2Session::OnWakeups() {
  const std::vector<int32_t> woken = wakeups_->Take();
  if (closed_) return;
  for (int32_t id : woken) {
    if (Stream* stream = Find(id)) Pump(*stream);
  }
  SendPending();
}

Http2Session::Stream* Http2Session::Find(int32_t stream_id) {
  auto it = streams_.find(stream_id);
  return it == streams_.end() ? nullptr : it->second.get();
}

// ---- nghttp2's callbacks ------------------------------------------------------

int Http2Session::OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
  auto* self = static_cast<Http2Session*>(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  auto stream = std::make_unique<Stream>(frame->hd.stream_id);
  stream->arrived = absl::Now();
  // Headers and body must come within the header timeout, as over HTTP/1.1.
  stream->read_deadline = Clock::now() + Chrono(self->state_->options.header_timeout);
  self->ArmTimer(stream->read_deadline);
  self->idle_deadline_ = Clock::time_point::max();
  self->streams_.emplace(frame->hd.stream_id, std::move(stream));
  return 0;
}

int Http2Session::OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                           size_t name_length, const uint8_t* value, size_t value_length, uint8_t,
                           void* user_data) {
  auto* self = static_cast<Http2Session*>(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  Stream* stream = self->Find(frame->hd.stream_id);
  if (stream == nullptr) return 0;
  if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
    stream->trailer = true;  // refused at dispatch, as over HTTP/1.1
    return 0;
  }
  // Counted as HTTP/2 counts a header list (RFC 9113 §6.5.2); past the bound
  // nothing more is stored (an HPACK bomb decodes into a counter).
  stream->header_bytes += name_length + value_length + 32;
  if (stream->header_bytes > self->state_->options.max_header_bytes) {
    stream->headers_too_large = true;
    return 0;
  }
  const absl::string_view key(reinterpret_cast<const char*>(name), name_length);
  const absl::string_view text(reinterpret_cast<const char*>(value), value_length);
  if (key == ":method") {
    stream->method = std::string(text);
  } else if (key == ":path") {
    stream->path = std::string(text);
  } else if (key == ":authority") {
    stream->authority = std::string(text);
  } else if (key == "cookie") {
    // RFC 9113 §8.2.3: split cookies are joined with "; ".
    if (!stream->cookie.empty()) stream->cookie += "; ";
    stream->cookie.append(text.data(), text.size());
  } else if (!key.empty() && key[0] != ':') {
    stream->fields.emplace_back(std::string(key), std::string(text));
  }
  return 0;
}

int Http2Session::OnFrameReceived(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
  auto* self = static_cast<Http2Session*>(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
  Stream* stream = self->Find(frame->hd.stream_id);
  if (stream == nullptr) return 0;
  // Called once a header block is complete (CONTINUATIONs included).
  if (frame->hd.type == NGHTTP2_HEADERS) stream->headers_complete = true;
  if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
    stream->request_complete = true;
    self->Dispatch(*stream);
  }
  return 0;
}

int Http2Session::OnDataChunk(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                              size_t length, void* user_data) {
  auto* self = static_cast<Http2Session*>(user_data);
  Stream* stream = self->Find(stream_id);
  if (stream == nullptr || stream->dispatched) return 0;  // after an early 413: dropped
  if (stream->body.size() + length > self->state_->options.max_body_bytes) {
    // Answered at once; the rest of the body is dropped as it comes.
    stream->body_too_large = true;
    std::string().swap(stream->body);
    self->Dispatch(*stream);
    return 0;
  }
  stream->body.append(reinterpret_cast<const char*>(data), length);
  return 0;
}

int Http2Session::OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t, void* user_data) {
  auto* self = static_cast<Http2Session*>(user_data);
  auto it = self->streams_.find(stream_id);
  if (it == self->streams_.end()) return 0;
  // Reset by the client (its call is cancelled at once), or its response is
  // complete (nothing left to end).
  self->EndServing(*it->second);
  self->streams_.erase(it);
  if (self->streams_.empty()) {
    self->idle_deadline_ = Clock::now() + Chrono(self->state_->options.idle_timeout);
    self->ArmTimer(self->idle_deadline_);
  }
  return 0;
}

ssize_t Http2Session::ReadBody(nghttp2_session*, int32_t, uint8_t* buffer, size_t length,
                               uint32_t* data_flags, nghttp2_data_source* source, void* user_data) {
  auto* self = static_cast<Http2Session*>(user_data);
  auto* stream = static_cast<Stream*>(source->ptr);
  const size_t n = std::min(length, stream->waiting_bytes());
  std::memcpy(buffer, stream->waiting.data() + stream->waiting_from, n);
  stream->waiting_from += n;
  if (stream->waiting_bytes() == 0) {
    stream->waiting.clear();
    stream->waiting_from = 0;
    stream->stalled_since = Clock::time_point::max();
    if (stream->ending) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
      // Answered before its request was complete (413, 408): the client is
      // asked to stop sending it (RFC 9113 §8.1), after the answer.
      if (!stream->request_complete) {
        nghttp2_submit_rst_stream(self->session_, NGHTTP2_FLAG_NONE, stream->id, NGHTTP2_NO_ERROR);
      }
      return static_cast<ssize_t>(n);
    }
    self->drained_.push_back(stream->id);
  } else if (n > 0) {
    stream->stalled_since = Clock::now();  // progress: the stall clock starts again
  }
  if (n == 0) {
    stream->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  return static_cast<ssize_t>(n);
}

// ---- Reading and writing ----------------------------------------------------

void Http2Session::Read() {
  if (reading_ || closed_ || closing_) return;
  reading_ = true;
  if (read_buffer_ == nullptr) read_buffer_ = std::make_unique<uint8_t[]>(kReadBytes);
  transport_.async_read_some(
      net::buffer(read_buffer_.get(), kReadBytes),
      [self = shared_from_this()](error_code ec, size_t bytes) { self->OnRead(ec, bytes); });
}

void Http2Session::OnRead(error_code ec, size_t bytes) {
  reading_ = false;
  if (closed_) return;
  if (ec) {
    Close();  // the client left: every stream's call is cancelled
    return;
  }
  if (!Receive(read_buffer_.get(), bytes)) return;
  SendPending();
  if (closed_) return;
  // A client that sends faster than it reads (pings, say) waits for the
  // write in flight to go before more is read.
  if (!writing_ || out_.size() < kWriteBytes) Read();
}

bool Http2Session::Receive(const uint8_t* data, size_t length) {
  if (length == 0) return true;
  const ssize_t used = nghttp2_session_mem_recv(session_, data, length);
  if (used < 0) {
    // A protocol error nghttp2 answers with GOAWAY: send it, then close; a
    // flood or a bad preface: close at once.
    if (used != NGHTTP2_ERR_FLOODED && used != NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
      SendPending();
      if (writing_) {
        closing_ = true;  // the GOAWAY goes out first (bounded by the write timeout)
        return false;
      }
    }
    Close();
    return false;
  }
  return true;
}

void Http2Session::ScheduleSend() {
  if (send_scheduled_ || writing_ || closed_) return;
  send_scheduled_ = true;
  // Posted, so that every relay wake-up already queued on the strand adds its
  // stream's events first: one write carries them all.
  net::post(transport_.get_executor(), [self = shared_from_this()] {
    self->send_scheduled_ = false;
    self->SendPending();
  });
}

void Http2Session::SendPending() {
  if (writing_ || closed_) return;
  out_.clear();
  // Two rounds at most: streams that nghttp2 drained take their next events
  // from their relays, which the second round sends.
  for (int round = 0; round < 2; ++round) {
    for (;;) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        Close();
        return;
      }
      if (n == 0) break;
      out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
      if (out_.size() >= kWriteBytes) break;
    }
    if (drained_.empty()) break;
    std::vector<int32_t> drained;
    drained.swap(drained_);
    for (int32_t id : drained) {
      if (Stream* stream = Find(id)) Pump(*stream);
    }
    if (out_.size() >= kWriteBytes) break;
  }
  if (out_.empty()) {
    if (out_.capacity() > 64 * 1024) std::string().swap(out_);
    CloseIfDone();
    return;
  }
  writing_ = true;
  write_deadline_ = Clock::now() + Chrono(state_->options.write_timeout);
  ArmTimer(write_deadline_);
  net::async_write(transport_, net::buffer(out_),
                   [self = shared_from_this()](error_code ec, size_t) { self->OnWritten(ec); });
}

void Http2Session::OnWritten(error_code ec) {
  writing_ = false;
  write_deadline_ = Clock::time_point::max();
  if (closed_) return;
  if (closing_) {
    Close();
    return;
  }
  if (ec) {
    Close();
    return;
  }
  SendPending();
  if (!closed_) Read();
}

void Http2Session::CloseIfDone() {
  if (closed_ || writing_) return;
  if (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0) {
    Close();
  }
}

void Http2Session::Close() {
  if (closed_) return;
  closed_ = true;
  for (auto& [id, stream] : streams_) EndServing(*stream);
  streams_.clear();
  timer_.cancel();
  transport_.Close();
}

// ---- Requests -----------------------------------------------------------------

void Http2Session::Dispatch(Stream& stream) {
  if (stream.dispatched) return;
  stream.dispatched = true;
  stream.read_deadline = Clock::time_point::max();
  if (stream.headers_too_large) {
    Respond(stream, RefusedRequest(http::status::request_header_fields_too_large,
                                   "request headers too large", /*close=*/false));
    return;
  }
  if (stream.body_too_large) {
    Respond(stream, RefusedRequest(http::status::payload_too_large, "request body too large",
                                   /*close=*/false));
    return;
  }
  if (stream.trailer) {
    // Fields from a trailer would act as headers (Authorization, Origin, ...).
    Respond(stream, RefusedRequest(http::status::bad_request, "a request trailer is not accepted",
                                   /*close=*/false));
    return;
  }
  // The same request an HTTP/1.1 client would have sent, for the same Router.
  HttpRequest request;
  request.version(11);
  const http::verb verb = http::string_to_verb(stream.method);
  if (verb == http::verb::unknown) {
    request.method_string(stream.method);
  } else {
    request.method(verb);
  }
  request.target(stream.path);
  for (auto& [name, value] : stream.fields) request.insert(name, value);
  if (!stream.cookie.empty()) request.set(http::field::cookie, stream.cookie);
  if (request.count(http::field::host) == 0 && !stream.authority.empty()) {
    request.set(http::field::host, stream.authority);
  }
  if (!stream.body.empty() && request.count(http::field::content_length) == 0) {
    request.content_length(stream.body.size());
  }
  request.body() = std::move(stream.body);
  // A stream can live for hours: it keeps nothing of its request.
  Headers().swap(stream.fields);
  std::string().swap(stream.method);
  std::string().swap(stream.path);
  std::string().swap(stream.authority);
  std::string().swap(stream.cookie);
  stream.origin = std::string(request[http::field::origin]);
  const auto encoding = request[http::field::accept_encoding];
  stream.accepts_gzip = state_->options.compression &&
                        AcceptsGzip(absl::string_view(encoding.data(), encoding.size()));
  stream.head_only = request.method() == http::verb::head;
  stream.arrived = absl::Now();
  Routed routed = Route(request, *state_);
  if (auto* plain = std::get_if<PlainResponse>(&routed)) {
    Respond(stream, std::move(*plain));
  } else if (auto* unary = std::get_if<UnaryPlan>(&routed)) {
    StartUnary(stream, std::move(*unary));
  } else {
    StartStream(stream, std::move(std::get<StreamPlan>(routed)));
  }
  ScheduleSend();
}

void Http2Session::Respond(Stream& stream, PlainResponse response) {
  stream.state = Stream::State::kResponding;
  const int status = static_cast<int>(response.status);
  if (status >= 400) state_->metrics.CountRejection(status);
  if (!stream.head_only) CompressIfWorth(response, stream.accepts_gzip);
  Headers fields = {{"server", "gravity-bridge"}};
  for (auto& field : PlainResponseFields(response, stream.origin, state_->options)) {
    fields.push_back(std::move(field));
  }
  if (stream.head_only || response.body.empty()) {
    SubmitHead(stream, status, std::move(fields), /*with_body=*/false);
    return;
  }
  stream.waiting = std::move(response.body);
  stream.waiting_from = 0;
  stream.ending = true;
  SubmitHead(stream, status, std::move(fields), /*with_body=*/true);
}

void Http2Session::SubmitHead(Stream& stream, int status, Headers fields, bool with_body) {
  const std::string status_name = ":status";
  const std::string status_text = absl::StrCat(status);
  std::vector<nghttp2_nv> nva;
  nva.reserve(fields.size() + 1);
  nva.push_back(Field(status_name, status_text));
  // HTTP/2 field names are lower case (RFC 9113 §8.2.1).
  for (auto& [name, value] : fields) absl::AsciiStrToLower(&name);
  for (const auto& [name, value] : fields) nva.push_back(Field(name, value));
  if (!with_body) {
    nghttp2_submit_response(session_, stream.id, nva.data(), nva.size(), nullptr);
    return;
  }
  nghttp2_data_provider provider;
  provider.source.ptr = &stream;
  provider.read_callback = ReadBody;
  nghttp2_submit_response(session_, stream.id, nva.data(), nva.size(), &provider);
}

void Http2Session::StartUnary(Stream& stream, UnaryPlan plan) {
  if (!TryReserve(state_->metrics.unary_calls_active, state_->options.max_unary_calls)) {
    Respond(stream, Unavailable("the bridge is at its limit of unary calls in flight", *state_));
    return;
  }
  stream.state = Stream::State::kCalling;
  stream.unary_method = plan.method;
  stream.exchange.Begin(*plan.method, plan.metadata);
  state_->metrics.unary_calls_total++;
  // Called on a gRPC thread: only a post, through a weak reference.
  auto done = [weak = weak_from_this(), executor = transport_.get_executor(), id = stream.id](
                  const grpc::Status& status, size_t reply_bytes, std::string reply) {
    if (auto self = weak.lock()) {
      net::post(executor,
                [self = std::move(self), id, status, reply_bytes, reply = std::move(reply)] {
                  self->OnUnaryDone(id, status, reply_bytes, reply);
                });
    }
  };
  stream.unary = UpstreamUnaryCall::Start(
      *state_->stub, plan.method->grpc_path, std::move(plan.request_bytes), plan.metadata,
      state_->options.accept_timeout, state_->options.max_reply_bytes, state_->upstream_calls_live,
      std::move(done));
}

void Http2Session::OnUnaryDone(int32_t stream_id, const grpc::Status& status, size_t reply_bytes,
                               const std::string& reply) {
  Stream* stream = Find(stream_id);
  // Reset, closed, or drained with a 503 meanwhile.
  if (closed_ || stream == nullptr || stream->state != Stream::State::kCalling) return;
  grpc::StatusCode code;
  PlainResponse response =
      UnaryReply(*state_, *stream->unary_method, status, reply_bytes, reply, &code);
  EndUnary(*stream, /*cancel=*/false, static_cast<int>(response.status), code);
  Respond(*stream, std::move(response));
  SendPending();
}

void Http2Session::EndUnary(Stream& stream, bool cancel, int http_status, grpc::StatusCode code) {
  if (stream.unary == nullptr) return;
  if (cancel) stream.unary->Cancel();
  stream.unary.reset();
  state_->metrics.unary_calls_active--;
  LogAccess(*state_, client_address_, protocol_, stream.exchange, http_status, code);
}

// ---- Streams --------------------------------------------------------------------

void Http2Session::StartStream(Stream& stream, StreamPlan plan) {
  if (auto later = OverStartBudget(*state_, plan.wants_event_stream)) {
    Respond(stream, std::move(*later));
    return;
  }
  stream.client_slot = state_->client_streams.Acquire(client_address_);
  if (!stream.client_slot) {
    Respond(stream, ErrorResponse(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                               "too many streams from this client address"),
                                  *state_));
    return;
  }
  if (!TryReserve(state_->metrics.active_streams, state_->options.max_streams)) {
    stream.client_slot.reset();
    Respond(stream, Unavailable("the bridge is at its stream limit", *state_));
    return;
  }
  stream.state = Stream::State::kStreaming;
  stream.exchange.Begin(*plan.method, plan.metadata);
  stream.format = plan.format;
  stream.wants_event_stream = plan.wants_event_stream;
  stream.retry = JitteredRetry(state_->options);
  stream.gzip = StreamCompressor(plan, stream.head_only, *state_);
  state_->metrics.streams_total++;

  const google::protobuf::Message& prototype =
      *state_->factory->GetPrototype(plan.method->method->output_type());
  auto encoder = std::make_shared<EventEncoder>(*plan.method, *state_->json, prototype,
                                                stream.format, state_->options.max_event_bytes);
  // Called on gRPC threads: notes the stream; at most one post per batch.
  auto wake = [wakeups = wakeups_, id = stream.id] { wakeups->Wake(id); };
  stream.relay = std::make_unique<StreamRelay>(
      std::move(encoder),
      ReadAheadLimits{state_->options.read_ahead_events, state_->options.read_ahead_bytes},
      std::move(wake), /*writer=*/nullptr, &state_->metrics.events_sent,
      &state_->metrics.first_event, stream.arrived);
  grpc::Slice slice(std::move(plan.request_bytes));
  grpc::ByteBuffer payload(&slice, 1);
  stream.relay->Start(*state_->stub, plan.method->grpc_path, payload, plan.metadata,
                      state_->upstream_calls_live);
  // A backend that neither accepts nor refuses in time is as good as absent.
  stream.accept_deadline = Clock::now() + Chrono(state_->options.accept_timeout);
  ArmTimer(stream.accept_deadline);
  if (state_->options.max_stream_duration > absl::ZeroDuration()) {
    stream.duration_deadline = Clock::now() + Chrono(state_->options.max_stream_duration);
    ArmTimer(stream.duration_deadline);
  }
  if (next_keepalive_ == Clock::time_point::max()) {
    next_keepalive_ = Clock::now() + Chrono(state_->options.keepalive);
    ArmTimer(next_keepalive_);
  }
}

void Http2Session::Pump(Stream& stream) {
  if (stream.state != Stream::State::kStreaming) return;
  // Back-pressure: while the stream's own bytes wait for its window, its
  // relay keeps what it read (and stops reading at its bound).
  if (stream.waiting_bytes() >= kStreamWaitingBytes) return;
  StreamRelay::Taken taken = stream.relay->Take(&events_);
  if (taken.accepted && !stream.headers_sent) SubmitStreamHead(stream);
  if (!events_.empty()) {
    if (!stream.headers_sent) SubmitStreamHead(stream);
    AppendBody(stream, events_);
    events_.clear();
    state_->metrics.events_sent += taken.events;
    stream.wrote_since_tick = true;
  }
  if (taken.done) {
    FinishStream(stream, *taken.done);
    return;
  }
  if (stream.relay != nullptr) stream.relay->SetWriteInFlight(stream.waiting_bytes());
}

void Http2Session::SubmitStreamHead(Stream& stream) {
  stream.headers_sent = true;
  stream.accept_deadline = Clock::time_point::max();
  Headers fields =
      StreamHeadFields(stream.format, stream.origin, state_->options, stream.gzip != nullptr);
  if (stream.head_only) {
    // A HEAD stream: the head says what a GET would get; no body, no call.
    SubmitHead(stream, 200, std::move(fields), /*with_body=*/false);
    stream.exchange.final_code = grpc::StatusCode::OK;
    ReleaseRelay(stream);
    EndStream(stream);
    stream.state = Stream::State::kResponding;
    return;
  }
  SubmitHead(stream, 200, std::move(fields), /*with_body=*/true);
  // The reconnection delay up front (see Session::AppendStreamHead).
  if (stream.format == StreamFormat::kSse) AppendBody(stream, SseRetry(stream.retry));
}

void Http2Session::AppendBody(Stream& stream, const std::string& bytes) {
  if (bytes.empty() || stream.head_only) return;
  if (stream.gzip != nullptr) {
    std::string compressed;
    stream.gzip->Append(bytes, &compressed);
    if (stream.ending) {
      stream.gzip->Finish(&compressed);
      stream.gzip.reset();
    }
    AppendRaw(stream, compressed);
    return;
  }
  AppendRaw(stream, bytes);
}

void Http2Session::AppendRaw(Stream& stream, const std::string& bytes) {
  if (stream.waiting_bytes() == 0) stream.stalled_since = Clock::now();
  if (stream.waiting.empty()) {
    stream.waiting = bytes;
  } else {
    stream.waiting.append(bytes);
  }
  if (stream.deferred) {
    stream.deferred = false;
    nghttp2_session_resume_data(session_, stream.id);
  }
  ArmTimer(stream.stalled_since + Chrono(state_->options.write_timeout));
}

void Http2Session::FinishStream(Stream& stream, const grpc::Status& status) {
  ReleaseRelay(stream);  // over or failed: nothing more comes from it
  stream.exchange.final_code = status.error_code();
  stream.accept_deadline = Clock::time_point::max();
  WriteStreamClose(stream, CloseStream(status, stream.headers_sent, stream.wants_event_stream,
                                       stream.format, stream.retry, *state_));
}

void Http2Session::CutStream(Stream& stream) {
  if (stream.state != Stream::State::kStreaming) return;
  stream.exchange.final_code = grpc::StatusCode::UNAVAILABLE;
  ReleaseRelay(stream);
  WriteStreamClose(stream, CutStreamBytes(stream.headers_sent, stream.format, stream.retry));
}

void Http2Session::WriteStreamClose(Stream& stream, StreamClose close) {
  if (close.error) {
    stream.exchange.final_http = static_cast<int>(close.error->status);
    EndStream(stream);
    close.error->close = false;  // HTTP/2 refuses the stream, not the connection
    Respond(stream, std::move(*close.error));
    return;
  }
  if (close.needs_head) SubmitStreamHead(stream);
  if (stream.state != Stream::State::kStreaming) return;  // a HEAD stream ended with its head
  stream.ending = true;
  if (close.body.empty() && stream.gzip != nullptr) {
    std::string end;
    stream.gzip->Finish(&end);
    stream.gzip.reset();
    AppendRaw(stream, end);
  } else {
    AppendBody(stream, close.body);
  }
  if (stream.deferred) {  // no bytes, but the end must still be sent
    stream.deferred = false;
    nghttp2_session_resume_data(session_, stream.id);
  }
  EndStream(stream);
  stream.state = Stream::State::kResponding;
}

void Http2Session::ReleaseRelay(Stream& stream) {
  if (stream.relay == nullptr) return;
  stream.exchange.events = stream.relay->events();
  stream.exchange.bytes = stream.relay->bytes();
  stream.relay.reset();
}

void Http2Session::EndStream(Stream& stream) {
  // Once per stream: its client slot is held exactly while it counts.
  if (!stream.client_slot) return;
  ReleaseRelay(stream);
  stream.accept_deadline = Clock::time_point::max();
  stream.duration_deadline = Clock::time_point::max();
  stream.client_slot.reset();
  RecordStreamEnd(*state_, client_address_, protocol_, stream.exchange, stream.headers_sent);
}

void Http2Session::EndServing(Stream& stream) {
  EndStream(stream);
  EndUnary(stream, /*cancel=*/true, 499, grpc::StatusCode::CANCELLED);
}

// ---- Deadlines ----------------------------------------------------------------

void Http2Session::ArmTimer(Clock::time_point at) {
  if (closed_ || at >= timer_at_) return;
  timer_at_ = at;
  timer_.expires_at(at);
  timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (ec == net::error::operation_aborted) return;  // re-armed earlier, or closed
    self->timer_at_ = Clock::time_point::max();
    self->OnTimer();
  });
}

void Http2Session::OnTimer() {
  if (closed_) return;
  const Clock::time_point now = Clock::now();
  if (writing_ && now >= write_deadline_) {
    Close();  // a client that stops reading for this long is gone
    return;
  }
  if (streams_.empty() && now >= idle_deadline_) {
    // No request in time (a preface then silence), or idle: GOAWAY, close.
    nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
    SendPending();
    CloseIfDone();
    if (!closed_ && !writing_) Close();
    return;
  }
  const bool keepalive_due = now >= next_keepalive_;
  bool streaming = false;
  Clock::time_point next =
      std::min(write_deadline_, streams_.empty() ? idle_deadline_ : Clock::time_point::max());
  std::vector<int32_t> stalled;
  for (auto& [id, owned] : streams_) {
    Stream& stream = *owned;
    if (stream.state == Stream::State::kReading && now >= stream.read_deadline &&
        !stream.headers_complete) {
      // A header block never finished: nothing else can be read on this
      // connection until it is, so the connection ends.
      nghttp2_session_terminate_session(session_, NGHTTP2_ENHANCE_YOUR_CALM);
      SendPending();
      CloseIfDone();
      if (!closed_ && !writing_) Close();
      return;
    }
    if (stream.state == Stream::State::kReading && now >= stream.read_deadline) {
      // The body is late: say so (a silent reset looks like a fault).
      stream.dispatched = true;
      stream.read_deadline = Clock::time_point::max();
      Respond(stream, RefusedRequest(http::status::request_timeout,
                                     "the request did not arrive within the header timeout",
                                     /*close=*/false));
      continue;
    }
    if (stream.waiting_bytes() > 0 &&
        now - stream.stalled_since >= Chrono(state_->options.write_timeout)) {
      stalled.push_back(id);  // its window stayed shut: the client is not reading it
      continue;
    }
    if (stream.state == Stream::State::kStreaming && !stream.headers_sent &&
        now >= stream.accept_deadline) {
      FinishStream(stream, grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                                        "the backend did not answer in time"));
    } else if (stream.state == Stream::State::kStreaming && now >= stream.duration_deadline) {
      CutStream(stream);
    }
    if (stream.state == Stream::State::kStreaming) {
      streaming = true;
      if (keepalive_due && !stream.wrote_since_tick && stream.headers_sent &&
          stream.format == StreamFormat::kSse) {
        AppendBody(stream, SseKeepAlive());
      }
      if (keepalive_due) stream.wrote_since_tick = false;
      next = std::min({next, stream.accept_deadline, stream.duration_deadline});
    }
    next = std::min(next, stream.read_deadline);
    if (stream.waiting_bytes() > 0) {
      next = std::min(next, stream.stalled_since + Chrono(state_->options.write_timeout));
    }
  }
  for (int32_t id : stalled) {
    // OnStreamClose ends what it serves once nghttp2 has sent the reset.
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    if (Stream* stream = Find(id)) stream->stalled_since = Clock::time_point::max();
  }
  if (keepalive_due) {
    next_keepalive_ =
        streaming ? now + Chrono(state_->options.keepalive) : Clock::time_point::max();
  }
  next = std::min(next, next_keepalive_);
  if (next != Clock::time_point::max())
    ArmTimer(std::max(next, now + std::chrono::milliseconds(1)));
  SendPending();
}

}  // namespace gravity::bridge::internal
