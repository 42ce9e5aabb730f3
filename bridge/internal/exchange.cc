#include "bridge/internal/exchange.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bridge/internal/gzip_stream.h"
#include "bridge/internal/status_mapping.h"
#include "bridge/internal/stream_format.h"
#include "bridge/internal/trace_context.h"

namespace gravity::bridge::internal {

namespace http = boost::beast::http;

bool TryReserve(std::atomic<int64_t>& gauge, int64_t limit) {
  if (gauge.fetch_add(1) < limit) return true;
  gauge.fetch_sub(1);
  return false;
}

Headers PlainResponseFields(const PlainResponse& response, const std::string& origin,
                            const BridgeOptions& options) {
  Headers fields;
  if (!response.content_type.empty()) fields.emplace_back("Content-Type", response.content_type);
  fields.emplace_back("Cache-Control", "no-store");
  for (auto& field : CorsHeaders(origin, options)) fields.push_back(std::move(field));
  for (const auto& field : response.headers) fields.push_back(field);
  // A 204 has no body and no Content-Length (RFC 9110 §8.6).
  if (response.status != http::status::no_content) {
    fields.emplace_back("Content-Length", absl::StrCat(response.body.size()));
  }
  return fields;
}

Headers StreamHeadFields(StreamFormat format, const std::string& origin,
                         const BridgeOptions& options, bool gzip) {
  Headers fields = {
      {"Content-Type",
       format == StreamFormat::kSse ? "text/event-stream; charset=utf-8" : "application/x-ndjson"},
      {"Cache-Control", "no-cache, no-transform"},
      {"X-Accel-Buffering", "no"},
  };
  for (auto& field : CorsHeaders(origin, options)) fields.push_back(std::move(field));
  if (gzip) {
    fields.emplace_back("Content-Encoding", "gzip");
    fields.emplace_back("Vary", "Accept-Encoding");
  }
  return fields;
}

void CompressIfWorth(PlainResponse& response, bool accepts_gzip) {
  constexpr size_t kWorth = 1024;
  if (!accepts_gzip || response.body.size() < kWorth) return;
  response.body = Gzip(response.body);
  response.headers.emplace_back("Content-Encoding", "gzip");
  response.headers.emplace_back("Vary", "Accept-Encoding");
}

PlainResponse UnaryReply(const BridgeState& state, const RoutedMethod& method,
                         const grpc::Status& status, size_t reply_bytes, const std::string& reply,
                         grpc::StatusCode* code) {
  // The call's outcome as the client sees it. A reply over the reply bound,
  // as protobuf or as its JSON (which can be several times bigger), is
  // RESOURCE_EXHAUSTED, as gRPC answers a message over its receive limit; one
  // that does not parse is the bridge's INTERNAL, whatever the backend said.
  grpc::Status outcome = status;
  std::string json;
  const size_t max_reply = state.options.max_reply_bytes;
  auto over_bound = [&](absl::string_view form, size_t bytes) {
    outcome = grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat("the reply takes ", bytes, " bytes ", form, ", over the bridge's bound of ",
                     max_reply, " (--max_reply_bytes)"));
  };
  const google::protobuf::Descriptor* type = method.method->output_type();
  if (outcome.ok() && max_reply > 0 && reply_bytes > max_reply) {
    over_bound("as protobuf", reply_bytes);
  }
  if (outcome.ok()) {
    std::unique_ptr<google::protobuf::Message> parsed(state.factory->GetPrototype(type)->New());
    if (!parsed->ParseFromString(reply) || !state.json->AppendJson(*parsed, reply, &json).ok()) {
      outcome =
          grpc::Status(grpc::StatusCode::INTERNAL,
                       absl::StrCat("the backend's reply does not parse as ", type->full_name()));
    } else if (max_reply > 0 && json.size() + 1 > max_reply) {
      over_bound("as JSON", json.size() + 1);
      std::string().swap(json);
    }
  }
  PlainResponse response =
      outcome.ok() ? PlainResponse{http::status::ok, "application/json", std::move(json) + "\n"}
                   : ErrorResponse(outcome, state);
  // Not the client's doing (429 would tell it to retry): the backend's reply
  // is one this gateway will not pass on.
  if (outcome.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED && status.ok()) {
    response.status = http::status::bad_gateway;
  }
  *code = outcome.error_code();
  return response;
}

StreamClose CloseStream(const grpc::Status& status, bool headers_sent, bool wants_event_stream,
                        StreamFormat format, absl::Duration retry, const BridgeState& state) {
  StreamClose close;
  switch (DecideStreamEnd(status, headers_sent, wants_event_stream)) {
    case StreamEnd::kHttpError:
      close.error = ErrorResponse(status, state);
      return close;
    case StreamEnd::kHeaderTooLarge:
      // Never accepted, refused for its metadata: 431, so EventSource stops.
      close.error = ErrorResponse(status, state);
      close.error->status = http::status::request_header_fields_too_large;
      close.error->close = true;
      return close;
    case StreamEnd::kRetry:
      // An outage, not the end: the browser retries and resumes (an SSE
      // head carries the retry: hint already).
      close.needs_head = !headers_sent;
      if (!headers_sent && format == StreamFormat::kSse) return close;
      close.body =
          format == StreamFormat::kSse
              ? SseRetry(retry)
              : NdjsonError(StatusJson(grpc::StatusCode::UNAVAILABLE, status.error_message()));
      return close;
    case StreamEnd::kEndEvent: {
      close.needs_head = !headers_sent;
      const std::string status_json = StatusJson(status.error_code(), status.error_message(),
                                                 state.json->DetailsJson(status.error_details()));
      if (format == StreamFormat::kSse) {
        close.body = SseEnd(status_json);
      } else if (!status.ok()) {
        close.body = NdjsonError(status_json);
      }
      return close;
    }
  }
  return close;
}

StreamClose CutStreamBytes(bool headers_sent, StreamFormat format, absl::Duration retry) {
  StreamClose close;
  close.needs_head = !headers_sent;
  // An SSE head carries the retry: hint already.
  if (headers_sent || format != StreamFormat::kSse) {
    close.body =
        format == StreamFormat::kSse
            ? SseRetry(retry)
            : NdjsonError(StatusJson(grpc::StatusCode::UNAVAILABLE, "stream cut; reconnect"));
  }
  return close;
}

std::optional<PlainResponse> OverStartBudget(BridgeState& state, bool wants_event_stream) {
  if (state.start_budget.TryTake()) return std::nullopt;
  state.metrics.starts_over_budget++;
  if (!wants_event_stream) {
    return Unavailable("the bridge is over its rate of new streams; retry later", state);
  }
  return PlainResponse{http::status::ok, "text/event-stream; charset=utf-8",
                       SseRetry(JitteredRetry(state.options))};
}

void ExchangeRecord::Begin(const RoutedMethod& method, const Headers& metadata) {
  *this = ExchangeRecord();
  started = Clock::now();
  route = method.grpc_path;
  trace_id = TraceIdOf(metadata);
}

int ExchangeRecord::StreamHttpStatus(bool headers_sent) const {
  return headers_sent ? 200 : final_http != 0 ? final_http : 499;
}

void LogAccess(BridgeState& state, const std::string& client, Protocol protocol,
               const ExchangeRecord& exchange, int http_status, grpc::StatusCode code) {
  if (state.access_log == nullptr) return;
  const absl::Duration duration = absl::FromChrono(ExchangeRecord::Clock::now() - exchange.started);
  state.access_log->Write(absl::StrCat(
      "{\"time\":\"", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()),
      "\",\"client\":\"", client, "\",\"protocol\":\"", ProtocolName(protocol), "\",\"route\":\"",
      exchange.route, "\",\"status\":", http_status, ",\"code\":", static_cast<int>(code),
      ",\"events\":", exchange.events, ",\"bytes\":", exchange.bytes, ",\"duration_ms\":",
      absl::ToInt64Milliseconds(duration), ",\"trace_id\":\"", exchange.trace_id, "\"}"));
}

void RecordStreamEnd(BridgeState& state, const std::string& client, Protocol protocol,
                     const ExchangeRecord& exchange, bool headers_sent) {
  state.metrics.active_streams--;
  state.metrics.CountStreamEnd(exchange.final_code);
  LogAccess(state, client, protocol, exchange, exchange.StreamHttpStatus(headers_sent),
            exchange.final_code);
}

std::unique_ptr<GzipStream> StreamCompressor(const StreamPlan& plan, bool head_only,
                                             BridgeState& state) {
  if (!plan.gzip || head_only) return nullptr;
  state.metrics.streams_compressed++;
  return std::make_unique<GzipStream>(state.options.compression_window_bits);
}

}  // namespace gravity::bridge::internal
