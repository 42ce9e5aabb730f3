// UpstreamCall: one server-streaming call to the backend, made with gRPC's
// generic callback API (raw bytes), so the bridge serves any service.
//
// Owner: gRPC; the call deletes itself in OnDone. The session that starts it
// keeps a hold on it (ClientBidiReactor::AddHold), so OnDone cannot run and
// the pointer stays valid until the session calls Release(); after Release the
// session must not touch it again. Reactions never block: they hand results
// to UpstreamListener, whose implementation posts them to its own strand.
//
// Thread-safety: RequestRead, Cancel and Release are called from one strand
// (the session's); reactions run on gRPC threads.
#ifndef GRAVITY_BRIDGE_INTERNAL_UPSTREAM_CALL_H_
#define GRAVITY_BRIDGE_INTERNAL_UPSTREAM_CALL_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "grpcpp/client_context.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/client_callback.h"
#include "grpcpp/support/status.h"

namespace gravity::bridge::internal {

// Receives an UpstreamCall's results on gRPC threads; must not block.
// `call_id` is the id given to UpstreamCall::Start: results of an earlier
// call of the same listener may still arrive after a newer call started.
class UpstreamListener {
 public:
  virtual ~UpstreamListener() = default;
  // The backend sent its initial metadata (ok) or ended the call without it.
  virtual void OnUpstreamAccepted(uint64_t call_id, bool ok) = 0;
  // A read completed with a message (ok) or found the stream's end (!ok).
  virtual void OnUpstreamRead(uint64_t call_id, bool ok, grpc::ByteBuffer message) = 0;
  // The call is over; the last thing an UpstreamCall reports.
  virtual void OnUpstreamDone(uint64_t call_id, grpc::Status status) = 0;
};

class UpstreamCall final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // Starts the call and its first read. `metadata` keys must be lower case.
  static UpstreamCall* Start(grpc::GenericStub& stub, const std::string& method,
                             const grpc::ByteBuffer& request,
                             const std::vector<std::pair<std::string, std::string>>& metadata,
                             std::weak_ptr<UpstreamListener> listener, uint64_t call_id,
                             std::shared_ptr<std::atomic<int64_t>> live_calls);

  // Starts the next read; call once per OnUpstreamRead(true, ...).
  void RequestRead();
  // Cancels the call at once (the backend sees it as a client cancel).
  void Cancel();
  // Drops the session's hold: OnDone may now run and delete this.
  void Release();

  void OnReadInitialMetadataDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  UpstreamCall(std::weak_ptr<UpstreamListener> listener, uint64_t call_id,
               std::shared_ptr<std::atomic<int64_t>> live_calls);

  grpc::ClientContext context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer read_buffer_;
  const std::weak_ptr<UpstreamListener> listener_;
  const uint64_t call_id_;
  // Counts live calls so the bridge can wait for them (and so keep the
  // channel) before it stops; decremented only after this call is deleted.
  const std::shared_ptr<std::atomic<int64_t>> live_calls_;
};

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_UPSTREAM_CALL_H_
