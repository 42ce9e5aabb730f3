// UpstreamUnaryCall: one unary call to the backend for one POSTed request,
// made with gRPC's generic callback API (raw bytes), so the bridge serves any
// service's unary methods.
//
// Owner: shared by the session, which may Cancel it, and gRPC's completion
// callback; it goes when both let go. Either may be last, on the session's
// strand or on a gRPC thread: the channel stays alive meanwhile because the
// bridge waits for `live_calls` to reach 0 before it lets its channel go.
// Thread-safety: Cancel may be called from any thread, also after the call
// ended; `done` runs once, on a gRPC thread, and must not block.
#ifndef GRAVITY_BRIDGE_INTERNAL_UPSTREAM_UNARY_CALL_H_
#define GRAVITY_BRIDGE_INTERNAL_UPSTREAM_UNARY_CALL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/client_context.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/status.h"

namespace gravity::bridge::internal {

class UpstreamUnaryCall {
 public:
  // The call's status and, when OK, the reply's size as protobuf and its
  // bytes (empty when that size is over the bound Start was given: the
  // caller decides what such a reply gets).
  using Done =
      std::function<void(const grpc::Status& status, size_t reply_bytes, std::string reply)>;

  // Starts `method` with the serialized `request`; `metadata` keys must be
  // lower case. The backend sees `timeout` as the call's deadline. A reply
  // over `max_reply_bytes` (0: no bound) is not copied out of gRPC's buffer.
  static std::shared_ptr<UpstreamUnaryCall> Start(
      grpc::GenericStub& stub, const std::string& method, std::string request,
      const std::vector<std::pair<std::string, std::string>>& metadata, absl::Duration timeout,
      size_t max_reply_bytes, std::shared_ptr<std::atomic<int64_t>> live_calls, Done done);

  // The client left: the backend sees a cancel; `done` still runs (CANCELLED).
  void Cancel() { context_.TryCancel(); }

  explicit UpstreamUnaryCall(std::shared_ptr<std::atomic<int64_t>> live_calls);

 private:
  // Declared first, so destroyed last: the count drops only after the
  // context (and its call's channel reference) is gone.
  struct LiveCount {
    explicit LiveCount(std::shared_ptr<std::atomic<int64_t>> count) : live(std::move(count)) {
      ++*live;
    }
    ~LiveCount() { --*live; }
    std::shared_ptr<std::atomic<int64_t>> live;
  };

  LiveCount live_count_;
  grpc::ClientContext context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer reply_;
};

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_UPSTREAM_UNARY_CALL_H_
