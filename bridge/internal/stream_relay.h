// StreamRelay: one stream's path from its upstream call to the browser's
// bytes: the call and a bounded read-ahead buffer of encoded events.
//
// Thread map:
//   gRPC threads run the UpstreamListener methods: a message is encoded there
//     (by the call, outside any lock) and appended to the read-ahead buffer; while the session's
//     DirectWriter is enabled (nothing else being written) the buffer leaves at once in one
//     non-blocking send, no thread hop; otherwise reading goes on while the
//     buffer is under its bounds, and the session is woken (one post to its
//     strand) only when no wake-up is already pending;
//   the session's strand runs everything else: Start, Take, Release.
// So a busy stream costs one thread hop per batch, not per event, and a
// browser that stops reading stops the upstream reads once the buffer is
// full: HTTP/2 flow control then holds the backend back.
//
// The read-ahead bound counts the session's write in flight too
// (SetWriteInFlight), so what a browser that stops reading holds is at most
// about max_bytes plus one event, the event itself bounded by the encoder.
//
// Owner: the session (unique_ptr). Release() before destruction; after it no
// callback touches the relay.
#ifndef GRAVITY_BRIDGE_INTERNAL_STREAM_RELAY_H_
#define GRAVITY_BRIDGE_INTERNAL_STREAM_RELAY_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "bridge/internal/direct_writer.h"
#include "bridge/internal/event_encoder.h"
#include "bridge/internal/metrics.h"
#include "bridge/internal/status_mapping.h"
#include "bridge/internal/upstream_call.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/status.h"

namespace gravity::bridge::internal {

struct ReadAheadLimits {
  int max_events = 32;
  size_t max_bytes = 64 * 1024;
};

class StreamRelay final : public UpstreamListener {
 public:
  // What Take found.
  struct Taken {
    bool accepted = false;             // the backend has accepted the call
    int events = 0;                    // events appended to the output
    std::optional<grpc::Status> done;  // the call is over (after the events)
  };

  // `wake` is called on a gRPC thread when Take has something new; it must
  // only post to the strand. `encoder` encodes this stream's messages.
  // `writer` (may be null) sends events straight from the gRPC thread while
  // the session has it enabled; `events_sent` counts the events it sent.
  // `first_event` (may be null) gets the time from `started` to the first
  // message.
  StreamRelay(std::shared_ptr<EventEncoder> encoder, ReadAheadLimits limits,
              std::function<void()> wake, DirectWriter* writer = nullptr,
              std::atomic<int64_t>* events_sent = nullptr, LatencyHistogram* first_event = nullptr,
              absl::Time started = absl::Now());
  ~StreamRelay() override;

  void Start(grpc::GenericStub& stub, const std::string& method, const grpc::ByteBuffer& request,
             const std::vector<std::pair<std::string, std::string>>& metadata,
             std::shared_ptr<std::atomic<int64_t>> live_calls);

  // Strand: appends the events read ahead to `out` and starts reading again
  // if the bound had paused it.
  Taken Take(std::string* out);

  // Strand: cancels the call unless it is over; nothing reaches the relay
  // afterwards. Idempotent. Never waits for an encoding in progress.
  void Release();

  // Strand: the bytes of the session's socket write in flight (0 when none),
  // counted against the read-ahead bound.
  void SetWriteInFlight(size_t bytes) { in_flight_.store(bytes, std::memory_order_relaxed); }

  // Events and bytes of events encoded so far (thread-safe).
  int64_t events() const { return events_.load(std::memory_order_relaxed); }
  int64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }

  // UpstreamListener (gRPC threads).
  void OnUpstreamAccepted() override;
  bool OnUpstreamEvent(const absl::Status& encoded, std::string* event) override;
  void OnUpstreamDone(const grpc::Status& status) override;

 private:
  // With mu_ held: a wake-up unless one is pending.
  bool NeedsWake() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<EventEncoder> encoder_;  // shared with the call, which uses it
  const ReadAheadLimits limits_;
  const std::function<void()> wake_;
  DirectWriter* const writer_;
  std::atomic<int64_t>* const events_sent_;
  LatencyHistogram* const first_event_;
  const absl::Time started_;
  std::atomic<int64_t> events_{0};
  std::atomic<int64_t> bytes_{0};
  std::atomic<size_t> in_flight_{0};
  UpstreamCall* call_ = nullptr;  // strand; null once released

  absl::Mutex mu_;
  std::string ready_ ABSL_GUARDED_BY(mu_);  // encoded events not yet taken
  int ready_events_ ABSL_GUARDED_BY(mu_) = 0;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool accepted_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> done_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_STREAM_RELAY_H_
