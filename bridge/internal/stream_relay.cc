#include "bridge/internal/stream_relay.h"

namespace gravity::bridge::internal {

StreamRelay::StreamRelay(std::shared_ptr<EventEncoder> encoder, ReadAheadLimits limits,
                         std::function<void()> wake, DirectWriter* writer,
                         std::atomic<int64_t>* events_sent, LatencyHistogram* first_event,
                         absl::Time started)
    : encoder_(std::move(encoder)),
      limits_(limits),
      wake_(std::move(wake)),
      writer_(writer),
      events_sent_(events_sent),
      first_event_(first_event),
      started_(started) {}

StreamRelay::~StreamRelay() { Release(); }

void StreamRelay::Start(grpc::GenericStub& stub, const std::string& method,
                        const grpc::ByteBuffer& request,
                        const std::vector<std::pair<std::string, std::string>>& metadata,
                        std::shared_ptr<std::atomic<int64_t>> live_calls) {
  call_ =
      UpstreamCall::Start(stub, method, request, metadata, this, encoder_, std::move(live_calls));
}

StreamRelay::Taken StreamRelay::Take(std::string* out) {
  Taken taken;
  bool resume = false;
  {
    absl::MutexLock lock(&mu_);
    wake_pending_ = false;
    taken.accepted = accepted_;
    taken.events = ready_events_;
    if (out->empty()) {
      out->swap(ready_);  // keeps both buffers' capacity for the next rounds
    } else {
      out->append(ready_);
    }
    ready_.clear();
    ready_events_ = 0;
    if (paused_ && call_ != nullptr) {
      paused_ = false;
      resume = true;
    }
    if (ready_.capacity() > 4 * limits_.max_bytes) std::string().swap(ready_);
    taken.done = done_;
  }
  // Reads start outside the lock: a reaction may run inline and take it.
  if (resume) call_->ResumeReading();
  return taken;
}

void StreamRelay::Release() {
  if (call_ == nullptr) return;
  UpstreamCall* call = call_;
  call_ = nullptr;
  call->Release();
}

void StreamRelay::OnUpstreamAccepted() {
  bool wake;
  {
    absl::MutexLock lock(&mu_);
    accepted_ = true;
    wake = NeedsWake();
  }
  if (wake) wake_();
}

bool StreamRelay::OnUpstreamEvent(const absl::Status& encoded, std::string* event) {
  bool wake;
  bool more;
  {
    absl::MutexLock lock(&mu_);
    if (done_) return false;
    if (!encoded.ok()) {
      // Not what the descriptors promise (INTERNAL), or over the event bound
      // (RESOURCE_EXHAUSTED): the stream ends with that status (the session
      // releases the call, which cancels it).
      done_ = grpc::Status(static_cast<grpc::StatusCode>(encoded.code()),
                           std::string(encoded.message()));
      more = false;
    } else {
      ++ready_events_;
      if (events_.fetch_add(1, std::memory_order_relaxed) == 0 && first_event_ != nullptr) {
        first_event_->Observe(absl::Now() - started_);
      }
      bytes_.fetch_add(static_cast<int64_t>(event->size()), std::memory_order_relaxed);
      // Messages are accepted implicitly: a backend may skip initial metadata.
      accepted_ = true;
      // The common case, nothing read ahead: the event's own buffer becomes
      // the read-ahead (the call gets the empty one back to reuse).
      if (ready_.empty()) {
        ready_.swap(*event);
      } else {
        ready_.append(*event);
      }
      // Everything read ahead goes, in order, in the one send.
      const DirectWriter::Sent sent =
          writer_ != nullptr ? writer_->TrySend(ready_, ready_events_) : DirectWriter::Sent::kNo;
      if (sent != DirectWriter::Sent::kNo) {
        // A partial send's events are counted by the session, which writes
        // their rest.
        if (sent == DirectWriter::Sent::kAll && events_sent_ != nullptr) {
          *events_sent_ += ready_events_;
        }
        ready_.clear();
        ready_events_ = 0;
        if (sent == DirectWriter::Sent::kAll) return true;  // nothing for the session to do
      }
      more = ready_events_ < limits_.max_events &&
             ready_.size() + in_flight_.load(std::memory_order_relaxed) < limits_.max_bytes;
      paused_ = !more;
    }
    wake = NeedsWake();
  }
  if (wake) wake_();
  return more;
}

void StreamRelay::OnUpstreamDone(const grpc::Status& status) {
  bool wake;
  {
    absl::MutexLock lock(&mu_);
    if (!done_) done_ = status;
    wake = NeedsWake();
  }
  if (wake) wake_();
}

bool StreamRelay::NeedsWake() {
  if (wake_pending_) return false;
  wake_pending_ = true;
  return true;
}

}  // namespace gravity::bridge::internal
