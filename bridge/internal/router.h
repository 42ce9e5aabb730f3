// Router: what one HTTP request means, decided without sockets: a plain
// response (errors, preflight, /healthz, /metrics, the index page), the plan
// of a stream (method, request message, metadata to forward, format) or the
// plan of a unary call (method, request message, metadata).
//
// Pure apart from reading BridgeState (options, routes, metrics, draining);
// thread-safe. The session serves the result; the unit tests call it directly.
#ifndef GRAVITY_BRIDGE_INTERNAL_ROUTER_H_
#define GRAVITY_BRIDGE_INTERNAL_ROUTER_H_

#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "boost/beast/http.hpp"
#include "bridge/internal/bridge_state.h"
#include "bridge/internal/event_encoder.h"
#include "grpcpp/support/status.h"

namespace gravity::bridge::internal {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using Headers = std::vector<std::pair<std::string, std::string>>;

struct PlainResponse {
  PlainResponse(boost::beast::http::status status_code, std::string type = "",
                std::string text = "", Headers fields = {}, bool close_after = false)
      : status(status_code),
        content_type(std::move(type)),
        body(std::move(text)),
        headers(std::move(fields)),
        close(close_after) {}

  boost::beast::http::status status;
  std::string content_type;
  std::string body;
  Headers headers;
  bool close;  // close the connection afterwards
};

struct StreamPlan {
  const RoutedMethod* method = nullptr;
  std::string request_bytes;  // the serialized request message
  Headers metadata;           // lower-case keys
  StreamFormat format = StreamFormat::kSse;
  bool wants_event_stream = false;  // Accept: text/event-stream (EventSource)
  bool gzip = false;                // compressed (the client accepts it; --compression)
};

// A unary method, POSTed: one call, answered with the reply's JSON.
struct UnaryPlan {
  const RoutedMethod* method = nullptr;
  std::string request_bytes;  // the serialized request message
  Headers metadata;           // lower-case keys
};

using Routed = std::variant<PlainResponse, StreamPlan, UnaryPlan>;

Routed Route(const HttpRequest& request, const BridgeState& state);

// The bridge's own refusal of a request it will not serve: `status` with a
// Status JSON body of INVALID_ARGUMENT (the request is at fault); `close`
// ends the connection afterwards.
PlainResponse RefusedRequest(boost::beast::http::status status, absl::string_view message,
                             bool close);

// A plain response for a gRPC status: the mapped HTTP status, Status JSON;
// a 503 carries Retry-After (the --retry hint, in whole seconds).
PlainResponse ErrorResponse(const grpc::Status& status, const BridgeState& state);

// The bridge's own 503 (a limit reached, a drain): UNAVAILABLE with
// `message`, and Retry-After.
PlainResponse Unavailable(absl::string_view message, const BridgeState& state);

// The reconnection delay one client is told: options.retry jittered by
// options.retry_jitter (whole milliseconds, at least 1 ms). Thread-safe.
absl::Duration JitteredRetry(const BridgeOptions& options);

// CORS headers for a request from `origin` ("" when none).
Headers CorsHeaders(const std::string& origin, const BridgeOptions& options);

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_ROUTER_H_
