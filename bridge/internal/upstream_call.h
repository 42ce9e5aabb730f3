// UpstreamCall: one server-streaming call to the backend, made with gRPC's
// generic callback API (raw bytes), so the bridge serves any service.
//
// Promise, in the manner of Envoy's Stream::resetStream: once Release()
// returns, no callback reaches the listener, and none is running. So a
// listener never needs to check which call a result belongs to.
//
// Keeping that promise must not stall the releasing thread (an Asio thread
// serving many connections) behind user-sized work. So each message is
// encoded first, by the call's MessageEncoder, with no lock held: the encoder
// is co-owned by the call, so a Release() meanwhile only detaches the
// listener. Only the hand-over of the encoded bytes to the listener runs
// under the lock that Release() takes, and it is short (an append or a swap,
// and at most one non-blocking send).
//
// Reading ahead: each message goes to UpstreamListener::OnUpstreamEvent on
// the gRPC thread that read it; when the listener answers true the next read
// starts right there (no thread hop), when it answers false reading pauses
// until the listener calls ResumeReading(). HTTP/2 flow control then holds the
// backend back.
//
// Owner: the listener's owner, through Release(); the object deletes itself
// once it is both released and done in gRPC (OnDone), whichever comes last.
// Thread-safety: Start, ResumeReading and Release are called from one strand
// (the session's); reactions run on gRPC threads and hold the lock shared
// with Release only for the hand-over.
#ifndef GRAVITY_BRIDGE_INTERNAL_UPSTREAM_CALL_H_
#define GRAVITY_BRIDGE_INTERNAL_UPSTREAM_CALL_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/client_context.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/client_callback.h"
#include "grpcpp/support/status.h"

namespace gravity::bridge::internal {

// Turns one upstream message into the bytes its listener gets. Called on gRPC
// threads, one message at a time (reactions never overlap), with no lock
// held: user-sized work (parsing, JSON printing) belongs here.
class MessageEncoder {
 public:
  virtual ~MessageEncoder() = default;
  // Appends `message`'s encoding to `out`, or fails (the status ends the
  // stream).
  virtual absl::Status Append(const grpc::ByteBuffer& message, std::string* out) = 0;
};

// Receives an UpstreamCall's results on gRPC threads; must not block. Calls
// for one UpstreamCall never overlap.
class UpstreamListener {
 public:
  virtual ~UpstreamListener() = default;
  // The backend sent its initial metadata (accepted the call).
  virtual void OnUpstreamAccepted() = 0;
  // One message, as the encoder left it: `encoded` is its status and `event`
  // its bytes, which the listener may take (swap). Returns whether to read
  // the next one now; false pauses reading until UpstreamCall::ResumeReading().
  virtual bool OnUpstreamEvent(const absl::Status& encoded, std::string* event) = 0;
  // The call is over, after every message; the last callback.
  virtual void OnUpstreamDone(const grpc::Status& status) = 0;
};

class UpstreamCall final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // Starts the call and its first read. `metadata` keys must be lower case.
  // `encoder` encodes each message before `listener` gets it. `live_calls`
  // counts calls not yet deleted (the bridge waits for them before it lets
  // the channel go).
  static UpstreamCall* Start(grpc::GenericStub& stub, const std::string& method,
                             const grpc::ByteBuffer& request,
                             const std::vector<std::pair<std::string, std::string>>& metadata,
                             UpstreamListener* listener, std::shared_ptr<MessageEncoder> encoder,
                             std::shared_ptr<std::atomic<int64_t>> live_calls);

  // Starts the next read after OnUpstreamMessage returned false.
  void ResumeReading();
  // Detaches the listener (no callback after this returns) and cancels the
  // call unless it is over (the backend sees a client cancel). `this` may be
  // deleted by the time it returns.
  void Release();

  void OnReadInitialMetadataDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  UpstreamCall(UpstreamListener* listener, std::shared_ptr<MessageEncoder> encoder,
               std::shared_ptr<std::atomic<int64_t>> live_calls);
  ~UpstreamCall() override;
  // Drops one of the two references (the owner's, gRPC's).
  void Unref();

  grpc::ClientContext context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer read_buffer_;
  const std::shared_ptr<MessageEncoder> encoder_;  // reactions only
  std::string event_;                              // reactions only: the encoded message
  absl::Mutex mu_;
  UpstreamListener* listener_ ABSL_GUARDED_BY(mu_);
  // The hold keeps OnDone (and the status) behind the last message: it goes
  // when a read finds the end, or at Release.
  bool holding_ ABSL_GUARDED_BY(mu_) = true;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<int> refs_{2};
  const std::shared_ptr<std::atomic<int64_t>> live_calls_;
};

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_UPSTREAM_CALL_H_
