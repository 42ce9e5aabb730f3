#include "bridge/internal/router.h"

#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "boost/url/parse.hpp"
#include "bridge/internal/request_mapping.h"
#include "bridge/internal/status_mapping.h"
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

PlainResponse Invalid(absl::string_view message) {
  return PlainResponse{http::status::bad_request, "application/json",
                       StatusJson(grpc::StatusCode::INVALID_ARGUMENT, message) + "\n"};
}

std::string MetricsText(const Metrics& m) {
  return absl::StrCat("# HELP gravity_bridge_active_streams Streams being served now.\n",
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
                      "gravity_bridge_connections_active ", m.connections_active.load(), "\n");
}

// The metadata forwarded for `request`, or the response refusing it.
std::variant<PlainResponse, Headers> ForwardedMetadata(
    const HttpRequest& request, const std::vector<std::pair<std::string, std::string>>& query,
    const BridgeOptions& options) {
  Headers metadata;
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
    forward(absl::AsciiStrToLower(name), View(request[name]));
  }
  if (!valid) return Invalid("a forwarded header holds characters gRPC metadata cannot carry");
  if (const size_t size = MetadataSize(metadata); size > options.max_metadata_bytes) {
    // Before anything goes upstream: one oversized call would fail the
    // backend connection that every other stream shares.
    return PlainResponse{
        http::status::request_header_fields_too_large,
        "application/json",
        StatusJson(grpc::StatusCode::INVALID_ARGUMENT,
                   absl::StrCat("the forwarded headers (Authorization, Cookie, Last-Event-ID, "
                                "...) take ",
                                size, " bytes; the bridge forwards at most ",
                                options.max_metadata_bytes)) +
            "\n",
        {},
        /*close=*/true};
  }
  return metadata;
}

Routed PlanStream(const HttpRequest& request, const RouteMatch& match,
                  const std::vector<std::pair<std::string, std::string>>& query,
                  const BridgeState& state) {
  if (state.draining.load()) {
    return ErrorResponse(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the bridge is shutting down"),
                         state);
  }
  if (state.metrics.active_streams.load() >= state.options.max_streams) {
    return ErrorResponse(
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "the bridge is at its stream limit"), state);
  }
  const google::protobuf::MethodDescriptor* method = match.method->method;
  std::unique_ptr<google::protobuf::Message> message(
      state.factory->GetPrototype(method->input_type())->New());
  if (request.method() == http::verb::post && !request.body().empty()) {
    auto parsed = google::protobuf::util::JsonStringToMessage(request.body(), message.get());
    if (!parsed.ok()) return Invalid(absl::StrCat("request body: ", parsed.message().as_string()));
  }
  if (absl::Status applied = ApplyQuery(query, message.get()); !applied.ok()) {
    return Invalid(applied.message());
  }
  for (const auto& [field, value] : match.path_fields) {
    if (absl::Status set = SetField(field, value, message.get()); !set.ok()) {
      return Invalid(set.message());
    }
  }
  auto metadata = ForwardedMetadata(request, query, state.options);
  if (auto* refused = std::get_if<PlainResponse>(&metadata)) return std::move(*refused);

  StreamPlan plan;
  plan.method = match.method;
  plan.metadata = std::move(std::get<Headers>(metadata));
  const absl::string_view accept = View(request[http::field::accept]);
  plan.format = absl::StrContains(accept, "application/x-ndjson") ? StreamFormat::kNdjson
                                                                  : StreamFormat::kSse;
  plan.wants_event_stream = absl::StrContains(accept, "text/event-stream");
  message->SerializeToString(&plan.request_bytes);
  return plan;
}

}  // namespace

Headers CorsHeaders(const std::string& origin, const BridgeOptions& options) {
  Headers headers;
  if (origin.empty()) return headers;
  bool any = false;
  for (const std::string& allowed : options.cors_origins) {
    if (allowed == origin) {
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

PlainResponse ErrorResponse(const grpc::Status& status, const BridgeState& state) {
  return PlainResponse{static_cast<http::status>(HttpStatusFor(status.error_code())),
                       "application/json",
                       StatusJson(status.error_code(), status.error_message(),
                                  state.json->DetailsJson(status.error_details())) +
                           "\n"};
}

Routed Route(const HttpRequest& request, const BridgeState& state) {
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
    return PlainResponse{http::status::ok, "text/plain; version=0.0.4", MetricsText(state.metrics)};
  }
  if (path == "/" && !state.options.index_html.empty()) {
    return PlainResponse{http::status::ok, "text/html; charset=utf-8", state.options.index_html};
  }
  std::optional<RouteMatch> match = state.routes->Match(path);
  if (!match) {
    return ErrorResponse(
        grpc::Status(grpc::StatusCode::NOT_FOUND, absl::StrCat("no stream at ", path)), state);
  }
  if (request.method() != http::verb::get && request.method() != http::verb::post) {
    return PlainResponse{
        http::status::method_not_allowed,
        "application/json",
        StatusJson(grpc::StatusCode::UNIMPLEMENTED,
                   absl::StrCat(std::string(request.method_string()), " is not allowed on ", path,
                                "; use GET or POST")) +
            "\n",
        {{"Allow", "GET, POST, OPTIONS"}}};
  }
  auto query = ParseQuery(std::string(target->encoded_query()));
  if (!query.ok()) return Invalid(query.status().message());
  return PlanStream(request, *match, *query, state);
}

}  // namespace gravity::bridge::internal
