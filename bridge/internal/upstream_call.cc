#include "bridge/internal/upstream_call.h"

namespace gravity::bridge::internal {

UpstreamCall::UpstreamCall(std::weak_ptr<UpstreamListener> listener, uint64_t call_id,
                           std::shared_ptr<std::atomic<int64_t>> live_calls)
    : listener_(std::move(listener)), call_id_(call_id), live_calls_(std::move(live_calls)) {
  ++*live_calls_;
}

UpstreamCall* UpstreamCall::Start(grpc::GenericStub& stub, const std::string& method,
                                  const grpc::ByteBuffer& request,
                                  const std::vector<std::pair<std::string, std::string>>& metadata,
                                  std::weak_ptr<UpstreamListener> listener, uint64_t call_id,
                                  std::shared_ptr<std::atomic<int64_t>> live_calls) {
  auto* call = new UpstreamCall(std::move(listener), call_id, std::move(live_calls));
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

void UpstreamCall::RequestRead() { StartRead(&read_buffer_); }

void UpstreamCall::Cancel() { context_.TryCancel(); }

void UpstreamCall::Release() { RemoveHold(); }

void UpstreamCall::OnReadInitialMetadataDone(bool ok) {
  if (auto listener = listener_.lock()) listener->OnUpstreamAccepted(call_id_, ok);
}

void UpstreamCall::OnReadDone(bool ok) {
  if (auto listener = listener_.lock()) {
    listener->OnUpstreamRead(call_id_, ok, ok ? std::move(read_buffer_) : grpc::ByteBuffer());
  }
}

void UpstreamCall::OnDone(const grpc::Status& status) {
  if (auto listener = listener_.lock()) listener->OnUpstreamDone(call_id_, status);
  std::shared_ptr<std::atomic<int64_t>> live_calls = live_calls_;
  delete this;  // drops this call's channel reference while the bridge still holds one
  --*live_calls;
}

}  // namespace gravity::bridge::internal
