#include "bridge/internal/upstream_unary_call.h"

#include "grpcpp/support/slice.h"

namespace gravity::bridge::internal {

UpstreamUnaryCall::UpstreamUnaryCall(std::shared_ptr<std::atomic<int64_t>> live_calls)
    : live_count_(std::move(live_calls)) {}

std::shared_ptr<UpstreamUnaryCall> UpstreamUnaryCall::Start(
    grpc::GenericStub& stub, const std::string& method, std::string request,
    const std::vector<std::pair<std::string, std::string>>& metadata, absl::Duration timeout,
    size_t max_reply_bytes, std::shared_ptr<std::atomic<int64_t>> live_calls, Done done) {
  auto call = std::make_shared<UpstreamUnaryCall>(std::move(live_calls));
  for (const auto& [key, value] : metadata) call->context_.AddMetadata(key, value);
  call->context_.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  grpc::Slice slice(std::move(request));
  call->request_ = grpc::ByteBuffer(&slice, 1);
  UpstreamUnaryCall* raw = call.get();
  stub.UnaryCall(&raw->context_, method, grpc::StubOptions(), &raw->request_, &raw->reply_,
                 [call, max_reply_bytes, done = std::move(done)](grpc::Status status) {
                   std::string reply;
                   const size_t reply_bytes = status.ok() ? call->reply_.Length() : 0;
                   if (status.ok() && (max_reply_bytes == 0 || reply_bytes <= max_reply_bytes)) {
                     grpc::Slice joined;
                     if (call->reply_.TrySingleSlice(&joined).ok() ||
                         call->reply_.DumpToSingleSlice(&joined).ok()) {
                       reply.assign(reinterpret_cast<const char*>(joined.begin()), joined.size());
                     } else {
                       status = grpc::Status(grpc::StatusCode::INTERNAL,
                                             "the backend's reply could not be read");
                     }
                   }
                   done(status, reply_bytes, std::move(reply));
                 });
  return call;
}

}  // namespace gravity::bridge::internal
