#include "server/internal/unary_core.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/impl/codegen/proto_utils.h"

namespace gravity::server::internal {

namespace {

// gRPC owns it and deletes it in OnDone. It only knows the core weakly: a
// cancel after the handles are gone has nobody left to tell.
class UnaryReactor final : public grpc::ServerUnaryReactor {
 public:
  void set_core(std::weak_ptr<UnaryCore> core) { core_ = std::move(core); }

  void OnCancel() override {
    if (std::shared_ptr<UnaryCore> core = core_.lock()) core->HandleCancel();
  }
  void OnDone() override { delete this; }

 private:
  std::weak_ptr<UnaryCore> core_;
};

}  // namespace

std::shared_ptr<UnaryCore> UnaryCore::Start(CallInfo call, grpc::ByteBuffer* response) {
  std::shared_ptr<UnaryCore> core(new UnaryCore(std::move(call), response));
  auto* reactor = new UnaryReactor();
  reactor->set_core(core);
  core->reactor_for_grpc_ = reactor;
  absl::MutexLock lock(&core->mu_);
  core->reactor_ = reactor;
  return core;
}

UnaryCore::UnaryCore(CallInfo call, grpc::ByteBuffer* response)
    : call_(std::move(call)), response_(response) {}

// The last handle is gone: a handler that forgot to reply (or dropped its
// handle on an error path) must not leave the client waiting.
UnaryCore::~UnaryCore() {
  if (grpc::ServerUnaryReactor* reactor = ClaimFinish()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INTERNAL,
                                 absl::StrCat(call_.method(), " ended without a reply")));
  }
}

grpc::ServerUnaryReactor* UnaryCore::ClaimFinish() {
  absl::MutexLock lock(&mu_);
  return std::exchange(reactor_, nullptr);
}

bool UnaryCore::Finish(const google::protobuf::MessageLite& message) {
  grpc::ByteBuffer bytes;
  bool own_buffer = false;
  grpc::Status serialized = grpc::SerializationTraits<google::protobuf::MessageLite>::Serialize(
      message, &bytes, &own_buffer);
  grpc::ServerUnaryReactor* reactor;
  {
    absl::MutexLock lock(&mu_);
    reactor = std::exchange(reactor_, nullptr);
    if (reactor == nullptr) return false;
    if (serialized.ok()) response_->Swap(&bytes);
  }
  reactor->Finish(serialized.ok() ? grpc::Status::OK
                                  : grpc::Status(grpc::StatusCode::INTERNAL,
                                                 absl::StrCat("the reply of ", call_.method(),
                                                              " does not serialize")));
  return serialized.ok();
}

bool UnaryCore::Fail(grpc::Status status) {
  if (status.ok()) {
    status = grpc::Status(grpc::StatusCode::INTERNAL,
                          absl::StrCat(call_.method(), " finished with OK but no reply"));
  }
  grpc::ServerUnaryReactor* reactor = ClaimFinish();
  if (reactor == nullptr) return false;
  reactor->Finish(std::move(status));
  return true;
}

void UnaryCore::OnCancel(std::function<void()> hook) {
  {
    absl::MutexLock lock(&mu_);
    if (!cancelled_) {
      cancel_hooks_.push_back(std::move(hook));
      return;
    }
  }
  hook();
}

bool UnaryCore::IsOpen() const {
  absl::MutexLock lock(&mu_);
  return reactor_ != nullptr && !cancelled_;
}

// gRPC still wants its Finish after a cancel; the handler's later reply then
// finds the call over and does nothing.
void UnaryCore::HandleCancel() {
  std::vector<std::function<void()>> hooks;
  grpc::ServerUnaryReactor* reactor;
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    hooks.swap(cancel_hooks_);
    reactor = std::exchange(reactor_, nullptr);
  }
  if (reactor != nullptr) reactor->Finish(grpc::Status::CANCELLED);
  for (auto& hook : hooks) hook();
}

}  // namespace gravity::server::internal
