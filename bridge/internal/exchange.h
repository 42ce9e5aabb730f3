// Exchange: what one request/response does, whatever the codec carries it
// (HTTP/1.1 Session, HTTP/2 Http2Session): the limits a stream or a call
// reserves, the fields of a response's head, the unary reply's outcome, the
// bytes that end a stream, and its access-log line. The codecs frame what
// these return; the decisions live here, once.
//
// Pure functions of their arguments and the BridgeState, thread-safe; and
// ExchangeRecord, what the codecs keep of each call for the log.
#ifndef GRAVITY_BRIDGE_INTERNAL_EXCHANGE_H_
#define GRAVITY_BRIDGE_INTERNAL_EXCHANGE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "bridge/internal/bridge_state.h"
#include "bridge/internal/gzip_stream.h"
#include "bridge/internal/router.h"
#include "bridge/internal/transport.h"
#include "grpcpp/support/status.h"

namespace gravity::bridge::internal {

// Takes one of `limit` slots of `gauge`, or none: a reservation, so that
// concurrent starts on different threads can never pass the limit together.
bool TryReserve(std::atomic<int64_t>& gauge, int64_t limit);

// The head fields of a plain response (type, cache, CORS, its own fields,
// Content-Length unless a 204), with HTTP/1.1's capitalisation.
Headers PlainResponseFields(const PlainResponse& response, const std::string& origin,
                            const BridgeOptions& options);

// The head fields of a stream's 200 (type, no caching or proxy buffering,
// CORS); the codec adds its framing.
Headers StreamHeadFields(StreamFormat format, const std::string& origin,
                         const BridgeOptions& options, bool gzip);

// Compresses a plain response's body with gzip when the client accepts it
// (`accepts_gzip`, --compression) and it is worth it (1 KiB or more; error
// bodies are smaller); sets Content-Encoding and Vary.
void CompressIfWorth(PlainResponse& response, bool accepts_gzip);

// A unary call's answer: its reply's JSON, or the error the client sees
// (the reply bound, a reply that does not parse, the backend's status).
// `code` gets the outcome's gRPC code.
PlainResponse UnaryReply(const BridgeState& state, const RoutedMethod& method,
                         const grpc::Status& status, size_t reply_bytes, const std::string& reply,
                         grpc::StatusCode* code);

// How a stream whose call ended with `status` ends for the client.
struct StreamClose {
  // Set when the stream becomes a plain error response (nothing was sent).
  std::optional<PlainResponse> error;
  // Otherwise: the stream's head must go first when not sent yet
  // (`needs_head`), then `body`, then the end of the body.
  bool needs_head = false;
  std::string body;
};
// `retry`: this stream's (jittered) reconnection delay.
StreamClose CloseStream(const grpc::Status& status, bool headers_sent, bool wants_event_stream,
                        StreamFormat format, absl::Duration retry, const BridgeState& state);

// The bytes of a stream cut early (drain, max duration): a `retry:` hint and
// no `end`, so the browser reconnects and resumes. `needs_head` as above.
StreamClose CutStreamBytes(bool headers_sent, StreamFormat format, absl::Duration retry);

// The answer to a stream request over max_stream_starts_per_second, or
// nullopt when the budget has room (and takes its token): an EventSource
// gets a 200 that is only a jittered `retry:` hint (it reconnects later; a
// 503 would end it for good), anything else 503 with a jittered Retry-After.
std::optional<PlainResponse> OverStartBudget(BridgeState& state, bool wants_event_stream);

// What /metrics and the access log learn of one call (a stream or a unary
// call), kept alike by both codecs: HTTP/1.1's Session holds one per
// connection, HTTP/2 one per stream. A plain value type, used on its codec's
// strand only.
struct ExchangeRecord {
  using Clock = std::chrono::steady_clock;

  Clock::time_point started;
  std::string route;     // the gRPC method's path: never the target, whose query may hold a token
  std::string trace_id;  // of the call's traceparent; may be empty
  grpc::StatusCode final_code = grpc::StatusCode::CANCELLED;  // until the call says otherwise
  int final_http = 0;  // the error status when a stream became a plain response
  int64_t events = 0;
  int64_t bytes = 0;

  // A call of `method` starts now: resets everything.
  void Begin(const RoutedMethod& method, const Headers& metadata);
  // The HTTP status a stream's end reports: 200 once its head is out, else
  // the plain answer it became, else 499 (nginx's: the client left first).
  int StreamHttpStatus(bool headers_sent) const;
};

// One access-log line (when the log is on) for a call's end, from `client`
// over `protocol`.
void LogAccess(BridgeState& state, const std::string& client, Protocol protocol,
               const ExchangeRecord& exchange, int http_status, grpc::StatusCode code);

// A stream's end, once: frees its active_streams slot, counts its final code
// and writes its access-log line.
void RecordStreamEnd(BridgeState& state, const std::string& client, Protocol protocol,
                     const ExchangeRecord& exchange, bool headers_sent);

// A stream's compressor when its plan asks for gzip (and it has a body),
// counted in streams_compressed; else null.
std::unique_ptr<GzipStream> StreamCompressor(const StreamPlan& plan, bool head_only,
                                             BridgeState& state);

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_EXCHANGE_H_
