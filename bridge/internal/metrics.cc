#include "bridge/internal/metrics.h"

#include "absl/strings/str_cat.h"

namespace gravity::bridge::internal {

namespace {

constexpr const char* kCodeNames[17] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

void AppendHeader(const char* name, const char* help, const char* type, std::string* out) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

void AppendValue(const char* name, int64_t value, std::string* out) {
  absl::StrAppend(out, name, " ", value, "\n");
}

}  // namespace

void LatencyHistogram::Observe(absl::Duration latency) {
  const double seconds = absl::ToDoubleSeconds(latency);
  size_t bucket = 0;
  while (bucket < kBoundsSeconds.size() && seconds > kBoundsSeconds[bucket]) ++bucket;
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(absl::ToInt64Microseconds(latency), std::memory_order_relaxed);
}

void LatencyHistogram::AppendText(const char* name, const char* help, std::string* out) const {
  AppendHeader(name, help, "histogram", out);
  int64_t cumulative = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    const std::string bound = i < kBoundsSeconds.size() ? absl::StrCat(kBoundsSeconds[i]) : "+Inf";
    absl::StrAppend(out, name, "_bucket{le=\"", bound, "\"} ", cumulative, "\n");
  }
  absl::StrAppend(out, name, "_sum ",
                  static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / 1e6, "\n");
  absl::StrAppend(out, name, "_count ", count_.load(std::memory_order_relaxed), "\n");
}

void Metrics::CountStreamEnd(grpc::StatusCode code) {
  const int index = static_cast<int>(code);
  if (index < 0 || index >= static_cast<int>(streams_ended_.size())) return;
  streams_ended_[index].fetch_add(1, std::memory_order_relaxed);
}

void Metrics::CountRejection(int http_status) {
  size_t index = kRejectionStatuses.size() - 1;
  for (size_t i = 0; i + 1 < kRejectionStatuses.size(); ++i) {
    if (kRejectionStatuses[i] == http_status) index = i;
  }
  rejections_[index].fetch_add(1, std::memory_order_relaxed);
}

std::string Metrics::Text() const {
  std::string out;
  AppendHeader("gravity_bridge_active_streams", "Streams being served now.", "gauge", &out);
  AppendValue("gravity_bridge_active_streams", active_streams.load(), &out);
  AppendHeader("gravity_bridge_streams_total", "Streams started.", "counter", &out);
  AppendValue("gravity_bridge_streams_total", streams_total.load(), &out);
  AppendHeader("gravity_bridge_unary_calls_total", "Unary calls started.", "counter", &out);
  AppendValue("gravity_bridge_unary_calls_total", unary_calls_total.load(), &out);
  AppendHeader("gravity_bridge_unary_calls_active", "Unary calls in flight now.", "gauge", &out);
  AppendValue("gravity_bridge_unary_calls_active", unary_calls_active.load(), &out);
  AppendHeader("gravity_bridge_events_sent_total", "Messages sent to clients.", "counter", &out);
  AppendValue("gravity_bridge_events_sent_total", events_sent.load(), &out);
  AppendHeader("gravity_bridge_connections_active", "Open HTTP connections.", "gauge", &out);
  AppendValue("gravity_bridge_connections_active", connections_active.load(), &out);
  AppendHeader("gravity_bridge_connections_total",
               "Connections accepted, by protocol (http/1.1 cleartext or TLS; h2 over TLS; h2c).",
               "counter", &out);
  for (Protocol protocol : {Protocol::kHttp1, Protocol::kH2, Protocol::kH2c}) {
    absl::StrAppend(
        &out, "gravity_bridge_connections_total{protocol=\"", ProtocolName(protocol), "\"} ",
        connections_total_[static_cast<int>(protocol)].load(std::memory_order_relaxed), "\n");
  }
  AppendHeader("gravity_bridge_tls_handshakes_failed_total",
               "TLS handshakes that failed or did not finish within --tls_handshake_timeout.",
               "counter", &out);
  AppendValue("gravity_bridge_tls_handshakes_failed_total", tls_handshakes_failed.load(), &out);
  AppendHeader("gravity_bridge_streams_compressed_total",
               "Streams sent gzip-compressed (the client accepted gzip; --compression).", "counter",
               &out);
  AppendValue("gravity_bridge_streams_compressed_total", streams_compressed.load(), &out);
  AppendHeader("gravity_bridge_starts_over_budget_total",
               "Stream requests over --max_stream_starts_per_second, told to come back later.",
               "counter", &out);
  AppendValue("gravity_bridge_starts_over_budget_total", starts_over_budget.load(), &out);
  AppendHeader("gravity_bridge_streams_ended_total",
               "Streams ended, by final gRPC code (CANCELLED: the client left; UNAVAILABLE: cut "
               "with retry:).",
               "counter", &out);
  for (size_t i = 0; i < streams_ended_.size(); ++i) {
    absl::StrAppend(&out, "gravity_bridge_streams_ended_total{code=\"", kCodeNames[i], "\"} ",
                    streams_ended_[i].load(std::memory_order_relaxed), "\n");
  }
  AppendHeader("gravity_bridge_rejections_total",
               "Requests answered with an HTTP error instead of a stream, by status.", "counter",
               &out);
  for (size_t i = 0; i < rejections_.size(); ++i) {
    const std::string status =
        kRejectionStatuses[i] == 0 ? "other" : absl::StrCat(kRejectionStatuses[i]);
    absl::StrAppend(&out, "gravity_bridge_rejections_total{status=\"", status, "\"} ",
                    rejections_[i].load(std::memory_order_relaxed), "\n");
  }
  first_event.AppendText("gravity_bridge_time_to_first_event_seconds",
                         "From a stream request's arrival to its first event.", &out);
  AppendHeader("gravity_bridge_access_log_dropped_total",
               "Access log lines dropped because the log could not keep up.", "counter", &out);
  AppendValue("gravity_bridge_access_log_dropped_total", access_log_dropped.load(), &out);
  return out;
}

}  // namespace gravity::bridge::internal
