// Metrics: the bridge's counters, gauges and its one histogram, and their
// Prometheus text form (served at /metrics).
//
// Thread-safe: every figure is an atomic, updated from the connections'
// strands and gRPC threads alike; Text() reads them without a lock (each
// figure is exact, the set is not a snapshot).
#ifndef GRAVITY_BRIDGE_INTERNAL_METRICS_H_
#define GRAVITY_BRIDGE_INTERNAL_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "bridge/internal/protocol.h"
#include "grpcpp/support/status.h"

namespace gravity::bridge::internal {

// Time to first event: from the request's arrival to its first event.
class LatencyHistogram {
 public:
  static constexpr std::array<double, 8> kBoundsSeconds = {0.001, 0.005, 0.01, 0.05,
                                                           0.1,   0.5,   1,    5};
  void Observe(absl::Duration latency);
  void AppendText(const char* name, const char* help, std::string* out) const;

 private:
  std::array<std::atomic<int64_t>, kBoundsSeconds.size() + 1> buckets_{};  // last: +Inf
  std::atomic<int64_t> count_{0};
  std::atomic<int64_t> sum_micros_{0};
};

struct Metrics {
  std::atomic<int64_t> active_streams{0};
  std::atomic<int64_t> streams_total{0};
  std::atomic<int64_t> unary_calls_total{0};
  std::atomic<int64_t> unary_calls_active{0};
  std::atomic<int64_t> events_sent{0};
  std::atomic<int64_t> connections_active{0};
  std::atomic<int64_t> access_log_dropped{0};
  LatencyHistogram first_event;

  // A stream's end, by its final gRPC code (a browser that left: CANCELLED;
  // a cut with `retry:`: UNAVAILABLE).
  void CountStreamEnd(grpc::StatusCode code);
  // A connection accepted, by the protocol it speaks.
  void CountConnection(Protocol protocol) {
    connections_total_[static_cast<int>(protocol)].fetch_add(1, std::memory_order_relaxed);
  }
  // A TLS handshake that failed or did not finish in time.
  std::atomic<int64_t> tls_handshakes_failed{0};
  // Streams sent gzip-compressed (their client accepted it).
  std::atomic<int64_t> streams_compressed{0};
  // Stream requests turned away by max_stream_starts_per_second.
  std::atomic<int64_t> starts_over_budget{0};

  // A request answered with an HTTP error status (4xx, 5xx) instead of a
  // stream: the status is its reason.
  void CountRejection(int http_status);

  std::string Text() const;

 private:
  static constexpr std::array<int, 13> kRejectionStatuses = {
      400, 401, 403, 404, 405, 413, 429, 431, 500, 501, 503, 504, 0};  // 0: other
  std::array<std::atomic<int64_t>, 17> streams_ended_{};
  std::array<std::atomic<int64_t>, kProtocols> connections_total_{};
  std::array<std::atomic<int64_t>, kRejectionStatuses.size()> rejections_{};
};

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_METRICS_H_
