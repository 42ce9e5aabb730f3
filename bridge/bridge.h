// Bridge: serves every server-streaming method of a gRPC backend to browsers
// as Server-Sent Events (and NDJSON), with no per-service code. The wire
// contract is docs/wire-contract.md; README.md lists the flags.
//
//   gravity::bridge::BridgeOptions options;
//   options.listen = "127.0.0.1:8080";
//   auto bridge = gravity::bridge::Bridge::Start(options, channel, descriptors);
//   ... (*bridge)->Shutdown();
//
// Runs its own Asio threads (one per core by default); each connection is
// served on a strand and each stream holds one upstream call. Thread-safety:
// Shutdown may be called from any thread; the Bridge must outlive nothing else.
#ifndef GRAVITY_BRIDGE_BRIDGE_H_
#define GRAVITY_BRIDGE_BRIDGE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/support/channel_arguments.h"

namespace gravity::bridge {

struct BridgeOptions {
  // host:port; port 0 picks a free port (see Bridge::port()).
  std::string listen = "127.0.0.1:8080";
  // A comment is sent this often while a stream is idle, so proxies keep it.
  absl::Duration keepalive = absl::Seconds(15);
  // The `retry:` hint sent when the backend is unavailable or we shut down.
  absl::Duration retry = absl::Seconds(2);
  // Each stream's `retry:` (and each 503's Retry-After) is `retry` times a
  // factor drawn uniformly from [1 - retry_jitter, 1 + retry_jitter], so the
  // clients of a bridge that dies or drains come back spread out, not in one
  // burst. 0: exactly `retry`.
  double retry_jitter = 0.5;
  // New streams started per second, bridge-wide (a token bucket with one
  // second of burst); 0: no limit. Past it an EventSource (Accept:
  // text/event-stream) gets a 200 whose body is only a jittered `retry:`
  // hint, so it reconnects later (EventSource gives up on a 503); other
  // clients get 503 with a jittered Retry-After.
  int max_stream_starts_per_second = 0;
  // Origins allowed by CORS, with credentials; "*" allows any origin without
  // credentials. Empty: no CORS headers at all.
  std::vector<std::string> cors_origins;
  // Request headers forwarded as metadata besides Authorization and Cookie
  // (case-insensitive names).
  std::vector<std::string> forward_headers;
  // Asio threads; 0 means one per core.
  int threads = 0;
  // Streams served at once; more get 503.
  int max_streams = 20000;
  // Unary calls in flight at once; more get 503 with Retry-After. Each holds
  // at most max_body_bytes of request and max_reply_bytes of reply.
  int max_unary_calls = 1000;
  // Streams at once from one client address; more get 429. 0: no limit
  // (behind a proxy every browser shares the proxy's address).
  int max_streams_per_client = 0;
  // Streams older than this are cut with a `retry:` hint (the browser
  // resumes, perhaps on another bridge); 0: no limit.
  absl::Duration max_stream_duration = absl::ZeroDuration();
  // Bounds on what a client may send.
  absl::Duration header_timeout = absl::Seconds(10);
  absl::Duration idle_timeout = absl::Seconds(60);
  // A backend that neither accepts nor refuses a call this long: 504.
  absl::Duration accept_timeout = absl::Seconds(30);
  // A socket write stalled this long means the browser is gone.
  absl::Duration write_timeout = absl::Seconds(60);
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 1024 * 1024;
  // A unary call's reply, as protobuf and as the JSON answered: a bigger one
  // is 502 with a RESOURCE_EXHAUSTED Status JSON (proto3 JSON can be 6x the
  // request: a client that echoes '<' gets \u003c). 0: no bound.
  size_t max_reply_bytes = 1024 * 1024;
  // One stream event, as protobuf and as encoded: a bigger message ends its
  // stream with RESOURCE_EXHAUSTED. With the read-ahead bound, it bounds what
  // a browser that stops reading holds of the bridge (see read_ahead_bytes).
  // 0: no bound.
  size_t max_event_bytes = 64 * 1024;
  // What one request may forward to the backend as metadata (Authorization or
  // ?access_token, Cookie, Last-Event-ID, forward_headers), counted as HTTP/2
  // counts it: name + value + 32 bytes per entry. More gets 431 and never goes
  // upstream. Why a bound of our own: a gRPC server refuses initial metadata
  // over its GRPC_ARG_MAX_METADATA_SIZE (8 KiB by default, the call's own
  // headers included) by failing its whole HTTP/2 connection, and so every
  // stream this bridge has on it. The default leaves 2 KiB of that 8 KiB for
  // the call's own headers (path, authority, te, user-agent, ...); against a
  // backend with a lower limit, set this 2 KiB below it.
  size_t max_metadata_bytes = 6 * 1024;
  // Read-ahead per stream: at most this many messages, or this many bytes of
  // encoded events (the socket write in flight included) plus one event, are
  // read from the backend ahead of the browser. That bounds the bridge's
  // memory for a browser that stops reading to about read_ahead_bytes +
  // max_event_bytes (+ gRPC's 64 KiB window); the backend is then held back
  // by HTTP/2 flow control (see BackendChannelArguments for the window).
  int read_ahead_events = 32;
  size_t read_ahead_bytes = 64 * 1024;
  // Streams still open when Shutdown starts get a `retry:` hint and are cut;
  // Shutdown waits at most this long for them to go.
  absl::Duration drain_timeout = absl::Seconds(5);
  // One JSON line per stream end (time, client address, route, HTTP status,
  // final gRPC code, events, bytes, duration): "-" for standard error, a
  // file path to append to, empty for none. Never a header or query value.
  std::string access_log;
  // HTML served at "/" (e.g. the demo page); empty serves nothing there.
  std::string index_html;
  // W3C trace context: a client's valid `traceparent` (and `tracestate`) is
  // always forwarded; with start_traces, a call without one gets a fresh one,
  // so every upstream call has one. That costs each idle stream about 1 KiB
  // more in the bridge and in the backend (gRPC keeps the call's metadata):
  // false forwards only what clients send.
  bool start_traces = true;
  // gzip for clients that accept it (Accept-Encoding): streams, flushed after
  // every batch of events, and plain or unary answers of 1 KiB or more.
  bool compression = true;
  // A compressed stream's window, 2^bits bytes (9 to 15). The window is what
  // an event is compressed against: 11 (2 KiB) saves about 54 % of chat-sized
  // JSON events for about 15 KiB of zlib state per compressed stream; 9 saves
  // about 46 % for 9 KiB (bench/run C1).
  int compression_window_bits = 11;

  // TLS: a PEM certificate chain (leaf first) and its PEM private key. Both
  // set: every connection is TLS 1.2+ (ALPN h2 and http/1.1); both empty:
  // cleartext. Start fails when a file does not load; ReloadTls() reads them
  // again (gravity-bridge does on SIGHUP).
  std::string tls_cert;
  std::string tls_key;
  // A TLS handshake not done within this closes the connection.
  absl::Duration tls_handshake_timeout = absl::Seconds(10);
  // HTTP/2: over TLS through ALPN, in cleartext with prior knowledge (h2c).
  // False: HTTP/1.1 only.
  bool http2 = true;
  // SETTINGS_MAX_CONCURRENT_STREAMS: streams one HTTP/2 connection may have
  // open at once (each also counts against max_streams and
  // max_streams_per_client).
  int http2_max_concurrent_streams = 100;
};

// The service names in `set` (every service of every file).
std::vector<std::string> ServicesIn(const google::protobuf::FileDescriptorSet& set);

// Reads a descriptor set written by `protoc --descriptor_set_out --include_imports`.
absl::StatusOr<google::protobuf::FileDescriptorSet> LoadDescriptorSet(const std::string& path);

// The descriptors of `services` compiled into this program, with their
// imports: for a bridge embedded in the process that serves them.
absl::StatusOr<google::protobuf::FileDescriptorSet> DescriptorsOfLinkedServices(
    const std::vector<std::string>& services);

// Arguments for the channel a bridge reads its backend through, as the
// bridge was measured with (gravity-bridge uses them; pass them to
// grpc::CreateCustomChannel for an embedded bridge):
// - no retries and no census: the bridge resumes through Last-Event-ID, not
//   gRPC retries, and both cost memory and CPU on every call;
// - a fixed 64 KiB HTTP/2 window per stream, without BDP probing (which grows
//   windows to megabytes): what a browser that stops reading can make the
//   bridge hold is bounded by this plus BridgeOptions' read-ahead;
// - reconnects within a second, as browsers retry every `retry`.
grpc::ChannelArguments BackendChannelArguments();

class Bridge {
 public:
  // Routes every server-streaming method of the services in `descriptors`
  // and starts listening. `backend` may be any channel: a remote target, a
  // load-balanced `dns:///` one, or a server's InProcessChannel().
  static absl::StatusOr<std::unique_ptr<Bridge>> Start(
      BridgeOptions options, std::shared_ptr<grpc::Channel> backend,
      const google::protobuf::FileDescriptorSet& descriptors);
  ~Bridge();  // Shutdown()

  int port() const;
  std::string address() const;
  // "GET /path -> package.Service/Method" lines, for start-up logs.
  std::vector<std::string> RouteDescriptions() const;
  // Warnings from start-up (e.g. skipped http templates).
  const std::vector<std::string>& warnings() const;
  int64_t active_streams() const;
  // Whether connections are TLS (tls_cert and tls_key set).
  bool tls() const;

  // Reads tls_cert and tls_key again: new handshakes get the new pair,
  // connections already up keep theirs. On error (the reason in the status)
  // the previous pair stays in service. Thread-safe.
  absl::Status ReloadTls();

  // Stops accepting, sends every open stream a `retry:` hint and closes it
  // (browsers reconnect elsewhere), waits up to drain_timeout. The cuts are
  // spread (at most 2,000 connections a second, over at most half of
  // drain_timeout) so that the clients do not all come back at once.
  // Idempotent.
  void Shutdown();

  class Impl;

 private:
  explicit Bridge(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gravity::bridge

#endif  // GRAVITY_BRIDGE_BRIDGE_H_
