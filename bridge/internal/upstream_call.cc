#include "bridge/internal/upstream_call.h"

namespace gravity::bridge::internal {

UpstreamCall::UpstreamCall(UpstreamListener* listener, std::shared_ptr<MessageEncoder> encoder,
                           std::shared_ptr<std::atomic<int64_t>> live_calls)
    : encoder_(std::move(encoder)), listener_(listener), live_calls_(std::move(live_calls)) {
  ++*live_calls_;
}

UpstreamCall::~UpstreamCall() = default;

UpstreamCall* UpstreamCall::Start(grpc::GenericStub& stub, const std::string& method,
                                  const grpc::ByteBuffer& request,
                                  const std::vector<std::pair<std::string, std::string>>& metadata,
                                  UpstreamListener* listener,
                                  std::shared_ptr<MessageEncoder> encoder,
                                  std::shared_ptr<std::atomic<int64_t>> live_calls) {
  auto* call = new UpstreamCall(listener, std::move(encoder), std::move(live_calls));
  for (const auto& [key, value] : metadata) call->context_.AddMetadata(key, value);
  call->request_ = request;
  stub.PrepareBidiStreamingCall(&call->context_, method, grpc::StubOptions(), call);
  call->AddHold();
  // A server-streaming call on the wire: one request message, then half-close.
  call->StartWriteLast(&call->request_, grpc::WriteOptions());
  call->StartRead(&call->read_buffer_);
  call->StartCall();
  return call;
}

void UpstreamCall::ResumeReading() { StartRead(&read_buffer_); }

void UpstreamCall::Release() {
  bool cancel;
  bool remove_hold;
  {
    absl::MutexLock lock(&mu_);
    listener_ = nullptr;
    cancel = !done_;
    remove_hold = holding_;
    holding_ = false;
  }
  // The context lives until the last Unref, so a cancel racing OnDone is safe.
  if (cancel) context_.TryCancel();
  if (remove_hold) RemoveHold();
  Unref();
}

void UpstreamCall::OnReadInitialMetadataDone(bool ok) {
  if (!ok) return;  // refused: the status comes with OnDone
  absl::MutexLock lock(&mu_);
  if (listener_ != nullptr) listener_->OnUpstreamAccepted();
}

void UpstreamCall::OnReadDone(bool ok) {
  if (!ok) {
    // The stream's end: the status may now come.
    bool remove_hold;
    {
      absl::MutexLock lock(&mu_);
      remove_hold = holding_;
      holding_ = false;
    }
    if (remove_hold) RemoveHold();
    return;
  }
  // The user-sized work, outside the lock: a Release() meanwhile does not wait
  // for it, and the encoder it uses is the call's own.
  event_.clear();
  const absl::Status encoded = encoder_->Append(read_buffer_, &event_);
  read_buffer_.Clear();
  bool more = false;
  {
    absl::MutexLock lock(&mu_);
    if (listener_ != nullptr) more = listener_->OnUpstreamEvent(encoded, &event_);
  }
  // A big event's buffer is not kept for the life of the stream.
  if (event_.capacity() > 64 * 1024) std::string().swap(event_);
  if (more) StartRead(&read_buffer_);
}

void UpstreamCall::OnDone(const grpc::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    done_ = true;
    if (listener_ != nullptr) listener_->OnUpstreamDone(status);
  }
  Unref();
}

void UpstreamCall::Unref() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  std::shared_ptr<std::atomic<int64_t>> live_calls = live_calls_;
  delete this;  // drops this call's channel reference while the bridge still holds one
  --*live_calls;
}

}  // namespace gravity::bridge::internal
