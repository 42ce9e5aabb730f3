#include "bridge/internal/router.h"

#include <algorithm>
#include <memory>
#include <optional>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "boost/url/parse.hpp"
#include "bridge/internal/gzip_stream.h"
#include "bridge/internal/request_mapping.h"
#include "bridge/internal/status_mapping.h"
#include "bridge/internal/trace_context.h"
#include "google/protobuf/util/json_util.h"

namespace gravity::bridge::internal {

namespace http = boost::beast::http;

namespace {

absl::string_view View(boost::beast::string_view text) { return {text.data(), text.size()}; }

// gRPC rejects metadata values outside printable ASCII.
bool IsValidMetadataValue(absl::string_view value) {
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// Metadata size as HTTP/2 (and gRPC's limit) counts it.
size_t MetadataSize(const Headers& metadata) {
  size_t size = 0;
  for (const auto& [key, value] : metadata) size += key.size() + value.size() + 32;
  return size;
}

PlainResponse Invalid(absl::string_view message, bool close = false) {
  return RefusedRequest(http::status::bad_request, message, close);
}

// RFC 9112 §6: the bridge's parser (Beast) is lenient about message framing,
// and what it lets through could frame a body differently than a proxy in
// front did (request smuggling). So: Transfer-Encoding only as exactly
// "chunked" (else 501), never with Content-Length, never on HTTP/1.0, and one
// Content-Length of one value. Each refusal closes the connection: where the
// next request starts is unknown.
std::optional<PlainResponse> RefusedFraming(const HttpRequest& request) {
  std::vector<absl::string_view> codings;
  for (auto [it, end] = request.equal_range(http::field::transfer_encoding); it != end; ++it) {
    codings.push_back(View(it->value()));
  }
  const size_t lengths = request.count(http::field::content_length);
  if (!codings.empty()) {
    if (lengths > 0) return Invalid("Transfer-Encoding with Content-Length", /*close=*/true);
    if (request.version() < 11) return Invalid("Transfer-Encoding in HTTP/1.0", /*close=*/true);
    const std::string coding = absl::StrJoin(codings, ", ");
    if (!absl::EqualsIgnoreCase(coding, "chunked")) {
      return PlainResponse{http::status::not_implemented,
                           "application/json",
                           StatusJson(grpc::StatusCode::UNIMPLEMENTED,
                                      absl::StrCat("Transfer-Encoding \"", coding,
                                                   "\" is not implemented; only \"chunked\" is")) +
                               "\n",
                           {},
                           /*close=*/true};
    }
  }
  if (lengths > 1 || absl::StrContains(View(request[http::field::content_length]), ',')) {
    return Invalid("more than one Content-Length", /*close=*/true);
  }
  return std::nullopt;
}

// ---- Accept (RFC 9110 §12.5.1) ----

bool IsToken(absl::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!absl::ascii_isalnum(c) && !absl::StrContains("!#$%&'*+-.^_`|~", c)) return false;
  }
  return true;
}

// Splits `text` at each `separator` outside a quoted string.
std::vector<absl::string_view> SplitOutsideQuotes(absl::string_view text, char separator) {
  std::vector<absl::string_view> parts;
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (quoted && text[i] == '\\') {
      ++i;
    } else if (text[i] == '"') {
      quoted = !quoted;
    } else if (!quoted && text[i] == separator) {
      parts.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(text.substr(std::min(start, text.size())));
  return parts;
}

// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) in thousandths,
// or -1 when malformed.
int QValue(absl::string_view text) {
  if (text.empty() || text.size() > 5 || (text[0] != '0' && text[0] != '1')) return -1;
  if (text.size() > 1 && text[1] != '.') return -1;
  int weight = (text[0] - '0') * 1000;
  int scale = 100;
  for (size_t i = 2; i < text.size(); ++i, scale /= 10) {
    if (!absl::ascii_isdigit(text[i])) return -1;
    weight += (text[i] - '0') * scale;
  }
  return weight > 1000 ? -1 : weight;
}

struct MediaRange {
  std::string type;  // lower case: "text/event-stream", "text/*", "*/*"
  int weight;        // q in thousandths
};

// The media ranges of every Accept field, in order. A malformed range (not
// type/subtype tokens, a parameter that is not name=value, a bad q) is
// dropped: it makes nothing acceptable.
std::vector<MediaRange> AcceptedRanges(const HttpRequest& request) {
  std::vector<MediaRange> ranges;
  for (auto [it, end] = request.equal_range(http::field::accept); it != end; ++it) {
    for (absl::string_view element : SplitOutsideQuotes(View(it->value()), ',')) {
      const std::vector<absl::string_view> parts = SplitOutsideQuotes(element, ';');
      const absl::string_view range = absl::StripAsciiWhitespace(parts[0]);
      if (range.empty() && parts.size() == 1) continue;  // an empty list element
      const size_t slash = range.find('/');
      if (slash == absl::string_view::npos || !IsToken(range.substr(0, slash)) ||
          !IsToken(range.substr(slash + 1))) {
        continue;
      }
      int weight = 1000;
      for (size_t i = 1; i < parts.size() && weight >= 0; ++i) {
        const absl::string_view parameter = absl::StripAsciiWhitespace(parts[i]);
        if (parameter.empty()) continue;
        const size_t equals = parameter.find('=');
        if (equals == absl::string_view::npos || !IsToken(parameter.substr(0, equals)) ||
            equals + 1 == parameter.size()) {
          weight = -1;
        } else if (absl::EqualsIgnoreCase(parameter.substr(0, equals), "q")) {
          weight = QValue(parameter.substr(equals + 1));
        }
      }
      if (weight >= 0) ranges.push_back({absl::AsciiStrToLower(range), weight});
    }
  }
  return ranges;
}

// The weight `ranges` give the media type `type` (lower case): that of the
// most specific range matching it (the type itself, then "text/*", then
// "*/*"; the first listed among equals), or only of `type` itself when
// `exact`. -1 when none matches.
int WeightOf(const std::vector<MediaRange>& ranges, absl::string_view type, bool exact) {
  const std::string any_subtype = absl::StrCat(type.substr(0, type.find('/')), "/*");
  int weight = -1;
  int specificity = 0;
  for (const MediaRange& range : ranges) {
    int s = range.type == type ? 3 : range.type == any_subtype ? 2 : range.type == "*/*" ? 1 : 0;
    if (exact && s != 3) s = 0;
    if (s > specificity) {
      specificity = s;
      weight = range.weight;
    }
  }
  return weight;
}

// The metadata forwarded for `request`, or the response refusing it.
std::variant<PlainResponse, Headers> ForwardedMetadata(
    const HttpRequest& request, const std::vector<std::pair<std::string, std::string>>& query,
    const BridgeOptions& options) {
  Headers metadata;
  // Two of these would leave it to chance which one the backend sees.
  for (const char* name : {"Authorization", "Last-Event-ID"}) {
    if (request.count(name) > 1) return Invalid(absl::StrCat(name, " given more than once"));
  }
  bool valid = true;
  auto forward = [&](std::string key, absl::string_view value) {
    if (value.empty()) return;
    if (!IsValidMetadataValue(value)) {
      valid = false;
      return;
    }
    metadata.emplace_back(std::move(key), std::string(value));
  };
  std::string access_token;
  std::string last_event_id(View(request["Last-Event-ID"]));
  for (const auto& [key, value] : query) {
    if (key == kAccessTokenParam) access_token = value;
    if (key == kLastEventIdParam && last_event_id.empty()) last_event_id = value;
  }
  const absl::string_view authorization = View(request[http::field::authorization]);
  if (!authorization.empty()) {
    forward("authorization", authorization);
  } else if (!access_token.empty()) {
    forward("authorization", absl::StrCat("Bearer ", access_token));
  }
  forward("cookie", View(request[http::field::cookie]));
  forward("last-event-id", last_event_id);
  for (const std::string& name : options.forward_headers) {
    const std::string key = absl::AsciiStrToLower(name);
    if (key == "traceparent" || key == "tracestate") continue;  // below, always
    forward(key, View(request[name]));
  }
  // Trace context: every upstream call carries a traceparent, the client's
  // when it sent one valid one (with its tracestate), else a fresh one.
  const absl::string_view traceparent = View(request["traceparent"]);
  const bool client_trace = request.count("traceparent") == 1 && IsValidTraceparent(traceparent);
  if (client_trace) {
    forward("traceparent", traceparent);
    if (request.count("tracestate") == 1) forward("tracestate", View(request["tracestate"]));
  }
  if (!valid) return Invalid("a forwarded header holds characters gRPC metadata cannot carry");
  if (const size_t size = MetadataSize(metadata); size > options.max_metadata_bytes) {
    // Before anything goes upstream: one oversized call would fail the
    // backend connection that every other stream shares.
    return RefusedRequest(
        http::status::request_header_fields_too_large,
        absl::StrCat("the forwarded headers (Authorization, Cookie, Last-Event-ID, ...) take ",
                     size, " bytes; the bridge forwards at most ", options.max_metadata_bytes),
        /*close=*/true);
  }
  // The bridge's own (98 bytes as HTTP/2 counts them) is not the client's
  // to pay for: it comes out of the room max_metadata_bytes leaves below the
  // backend's limit.
  if (!client_trace && options.start_traces) {
    metadata.emplace_back("traceparent", NewTraceparent());
  }
  return metadata;
}

// The request message: the POST body (the whole request, or the field the
// route names), then the query, then the path's fields; or the refusal.
std::variant<PlainResponse, std::string> RequestBytes(
    const HttpRequest& request, const RouteMatch& match,
    const std::vector<std::pair<std::string, std::string>>& query, const BridgeState& state) {
  const google::protobuf::MethodDescriptor* method = match.method->method;
  std::unique_ptr<google::protobuf::Message> message(
      state.factory->GetPrototype(method->input_type())->New());
  if (request.method() == http::verb::post && !request.body().empty()) {
    google::protobuf::Message* target = message.get();
    if (!match.body_field.empty()) {
      target = message->GetReflection()->MutableMessage(
          message.get(), method->input_type()->FindFieldByName(match.body_field),
          state.factory.get());
    }
    auto parsed = google::protobuf::util::JsonStringToMessage(request.body(), target);
    if (!parsed.ok()) return Invalid(absl::StrCat("request body: ", parsed.message().as_string()));
    std::vector<const google::protobuf::FieldDescriptor*> in_body;
    if (absl::Status once = CheckBodyFields(request.body(), *target->GetDescriptor(), &in_body);
        !once.ok()) {
      return Invalid(once.message());
    }
    // A field in both the body and the query would be resolved silently, and
    // a proxy could read another value than the backend gets.
    const google::protobuf::FieldDescriptor* body_field =
        match.body_field.empty() ? nullptr
                                 : method->input_type()->FindFieldByName(match.body_field);
    for (const auto& [key, value] : query) {
      const google::protobuf::FieldDescriptor* field = QueryKeyField(key, *method->input_type());
      if (field == nullptr) continue;  // the bridge's own, or ApplyQuery's error below
      if (field == body_field || (body_field == nullptr && std::find(in_body.begin(), in_body.end(),
                                                                     field) != in_body.end())) {
        return Invalid(
            absl::StrCat("field \"", field->name(), "\" given in both the body and the query"));
      }
    }
  }
  if (absl::Status applied = ApplyQuery(query, message.get()); !applied.ok()) {
    return Invalid(applied.message());
  }
  for (const auto& [field, value] : match.path_fields) {
    if (absl::Status set = SetField(field, value, message.get()); !set.ok()) {
      return Invalid(set.message());
    }
  }
  std::string bytes;
  message->SerializeToString(&bytes);
  return bytes;
}

PlainResponse ShuttingDown(const BridgeState& state) {
  return Unavailable("the bridge is shutting down", state);
}

Routed PlanStream(const HttpRequest& request, const RouteMatch& match,
                  const std::vector<std::pair<std::string, std::string>>& query,
                  const BridgeState& state) {
  if (state.draining.load()) return ShuttingDown(state);
  // A cheap early refusal, before the request is parsed; the session's
  // reservation is the one that counts.
  if (state.metrics.active_streams.load() >= state.options.max_streams) {
    return Unavailable("the bridge is at its stream limit", state);
  }
  auto bytes = RequestBytes(request, match, query, state);
  if (auto* refused = std::get_if<PlainResponse>(&bytes)) return std::move(*refused);
  auto metadata = ForwardedMetadata(request, query, state.options);
  if (auto* refused = std::get_if<PlainResponse>(&metadata)) return std::move(*refused);

  StreamPlan plan;
  plan.method = match.method;
  plan.request_bytes = std::move(std::get<std::string>(bytes));
  plan.metadata = std::move(std::get<Headers>(metadata));
  // NDJSON only when asked for by name, with q > 0 and at least the weight
  // text/event-stream gets; otherwise SSE.
  const std::vector<MediaRange> accepted = AcceptedRanges(request);
  const int ndjson = WeightOf(accepted, "application/x-ndjson", /*exact=*/true);
  plan.format = ndjson > 0 && ndjson >= WeightOf(accepted, "text/event-stream", /*exact=*/false)
                    ? StreamFormat::kNdjson
                    : StreamFormat::kSse;
  plan.wants_event_stream = WeightOf(accepted, "text/event-stream", /*exact=*/true) > 0;
  plan.gzip = state.options.compression &&
              AcceptsGzip(View(request[boost::beast::http::field::accept_encoding]));
  return plan;
}

Routed PlanUnary(const HttpRequest& request, const RouteMatch& match,
                 const std::vector<std::pair<std::string, std::string>>& query,
                 const BridgeState& state) {
  if (state.draining.load()) return ShuttingDown(state);
  auto bytes = RequestBytes(request, match, query, state);
  if (auto* refused = std::get_if<PlainResponse>(&bytes)) return std::move(*refused);
  auto metadata = ForwardedMetadata(request, query, state.options);
  if (auto* refused = std::get_if<PlainResponse>(&metadata)) return std::move(*refused);
  UnaryPlan plan;
  plan.method = match.method;
  plan.request_bytes = std::move(std::get<std::string>(bytes));
  plan.metadata = std::move(std::get<Headers>(metadata));
  return plan;
}

// Whether a POST's body is declared JSON. Browsers send text/plain, form and
// multipart bodies from any site without a preflight, so a body that is not
// declared JSON is never parsed as JSON (which would make every method a
// target of cross-site request forgery).
bool DeclaresJson(const HttpRequest& request) {
  const absl::string_view type = View(request[http::field::content_type]);
  const absl::string_view media = absl::StripAsciiWhitespace(type.substr(0, type.find(';')));
  return absl::EqualsIgnoreCase(media, "application/json");
}

// Whether a request from `origin` may call a unary method: no Origin (not a
// browser's cross-site request), the bridge's own origin (Origin's host is
// the request's Host), or an origin the CORS allowlist names ("*" included).
bool MayChangeState(const HttpRequest& request, const BridgeOptions& options) {
  const absl::string_view origin = View(request[http::field::origin]);
  if (origin.empty()) return true;
  for (const std::string& allowed : options.cors_origins) {
    if (allowed == "*" || allowed == origin) return true;
  }
  const size_t scheme_end = origin.find("://");
  if (scheme_end == absl::string_view::npos) return false;  // "null", say
  const absl::string_view scheme = origin.substr(0, scheme_end);
  return (scheme == "http" || scheme == "https") &&
         absl::EqualsIgnoreCase(origin.substr(scheme_end + 3), View(request[http::field::host]));
}

PlainResponse MethodNotAllowed(const HttpRequest& request, const std::string& path,
                               absl::string_view allowed) {
  return PlainResponse{http::status::method_not_allowed,
                       "application/json",
                       StatusJson(grpc::StatusCode::UNIMPLEMENTED,
                                  absl::StrCat(std::string(request.method_string()),
                                               " is not allowed on ", path, "; use ", allowed)) +
                           "\n",
                       {{"Allow", absl::StrCat(allowed, ", OPTIONS")}}};
}

}  // namespace

Headers CorsHeaders(const std::string& origin, const BridgeOptions& options) {
  Headers headers;
  if (origin.empty()) return headers;
  bool any = false;
  for (const std::string& allowed : options.cors_origins) {
    // "*" is a wildcard, never a credentialed origin (not even `Origin: *`).
    if (allowed != "*" && allowed == origin) {
      headers.emplace_back("Access-Control-Allow-Origin", origin);
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

PlainResponse RefusedRequest(http::status status, absl::string_view message, bool close) {
  return PlainResponse{status,
                       "application/json",
                       StatusJson(grpc::StatusCode::INVALID_ARGUMENT, message) + "\n",
                       {},
                       close};
}

absl::Duration JitteredRetry(const BridgeOptions& options) {
  const double jitter = std::clamp(options.retry_jitter, 0.0, 1.0);
  if (jitter == 0) return options.retry;
  thread_local absl::BitGen random;
  const double factor = absl::Uniform(random, 1 - jitter, 1 + jitter);
  return std::max(absl::Milliseconds(1),
                  absl::Floor(options.retry * factor, absl::Milliseconds(1)));
}

PlainResponse ErrorResponse(const grpc::Status& status, const BridgeState& state) {
  PlainResponse response{static_cast<http::status>(HttpStatusFor(status.error_code())),
                         "application/json",
                         StatusJson(status.error_code(), status.error_message(),
                                    state.json->DetailsJson(status.error_details())) +
                             "\n"};
  if (response.status == http::status::service_unavailable) {
    // Clients that retry (@gravity/client, proxies) wait this long, not at once.
    const int64_t seconds = std::max<int64_t>(
        1, absl::ToInt64Seconds(absl::Ceil(JitteredRetry(state.options), absl::Seconds(1))));
    response.headers.emplace_back("Retry-After", absl::StrCat(seconds));
  }
  return response;
}

PlainResponse Unavailable(absl::string_view message, const BridgeState& state) {
  return ErrorResponse(grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(message)), state);
}

Routed Route(const HttpRequest& request, const BridgeState& state) {
  if (auto refused = RefusedFraming(request)) return std::move(*refused);
  // RFC 9112 §3.2: HTTP/1.1 requires exactly one Host (HTTP/1.0 may omit it).
  const size_t hosts = request.count(http::field::host);
  if (hosts > 1 || (hosts == 0 && request.version() >= 11)) {
    return Invalid(hosts > 1 ? "more than one Host" : "an HTTP/1.1 request without Host");
  }
  auto target = boost::urls::parse_origin_form(request.target());
  if (!target) return Invalid("malformed request target");
  const std::string path(target->encoded_path());
  if (request.method() == http::verb::options) {
    PlainResponse preflight{http::status::no_content};
    if (!CorsHeaders(std::string(request[http::field::origin]), state.options).empty()) {
      preflight.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      std::string asked(request[http::field::access_control_request_headers]);
      if (!asked.empty()) preflight.headers.emplace_back("Access-Control-Allow-Headers", asked);
      preflight.headers.emplace_back("Access-Control-Max-Age", "600");
    }
    return preflight;
  }
  if (path == "/healthz") {
    const bool draining = state.draining.load();
    return PlainResponse{draining ? http::status::service_unavailable : http::status::ok,
                         "application/json",
                         draining ? "{\"status\":\"DRAINING\"}\n" : "{\"status\":\"SERVING\"}\n"};
  }
  if (path == "/metrics") {
    return PlainResponse{http::status::ok, "text/plain; version=0.0.4", state.metrics.Text()};
  }
  if (path == "/" && !state.options.index_html.empty()) {
    return PlainResponse{http::status::ok, "text/html; charset=utf-8", state.options.index_html};
  }
  std::optional<RouteMatch> match = state.routes->Match(path);
  if (!match) {
    return ErrorResponse(
        grpc::Status(grpc::StatusCode::NOT_FOUND, absl::StrCat("no method at ", path)), state);
  }
  // A unary call may change state, so only POST reaches it (never a GET a
  // crawler or a prefetch could make).
  if (match->method->unary && request.method() != http::verb::post) {
    return MethodNotAllowed(request, path, "POST");
  }
  if (request.method() != http::verb::get && request.method() != http::verb::post) {
    return MethodNotAllowed(request, path, "GET, POST");
  }
  if (request.method() == http::verb::post && !DeclaresJson(request)) {
    return PlainResponse{
        http::status::unsupported_media_type,
        "application/json",
        StatusJson(grpc::StatusCode::INVALID_ARGUMENT,
                   absl::StrCat("a POST body must be Content-Type: application/json, not \"",
                                View(request[http::field::content_type]), "\"")) +
            "\n",
        {{"Accept-Post", "application/json"}}};
  }
  if (match->method->unary && !MayChangeState(request, state.options)) {
    return PlainResponse{
        http::status::forbidden, "application/json",
        StatusJson(grpc::StatusCode::PERMISSION_DENIED,
                   absl::StrCat("a call from origin \"", View(request[http::field::origin]),
                                "\" is not allowed: it is not this bridge's origin and not on "
                                "its --cors_origin list")) +
            "\n"};
  }
  auto query = ParseQuery(std::string(target->encoded_query()));
  if (!query.ok()) return Invalid(query.status().message());
  if (match->method->unary) return PlanUnary(request, *match, *query, state);
  return PlanStream(request, *match, *query, state);
}

}  // namespace gravity::bridge::internal
