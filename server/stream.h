// Stream<T>: the handle of one server stream, the C++ form of the seed's
// `new GravityStream<T>((stream) => { stream.send(v); stream.close() })`.
//
// A handler receives it, may copy it into timers, other threads or
// subscriptions, and ends the stream with Close. Copies share one stream.
// Example (the seed's ping):
//
//   stream.Every(absl::Seconds(1), [to](Stream<PingReply>& s) {
//     PingReply reply;
//     reply.set_message("Sending ping to " + to);
//     s.Send(reply);
//   });
//   stream.After(absl::Seconds(5), [](Stream<PingReply>& s) { s.Close(); });
//
// Thread-safe: every method may be called from any thread at any time, also
// after the stream ended (then they do nothing and Send returns false).
// Nothing blocks: Send queues (see StreamOptions for the slow-consumer policy).
#ifndef GRAVITY_SERVER_STREAM_H_
#define GRAVITY_SERVER_STREAM_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/support/status.h"
#include "server/call_info.h"
#include "server/internal/stream_core.h"

namespace gravity::server {

template <typename T>
class Topic;

template <typename T>
class Stream {
 public:
  explicit Stream(std::shared_ptr<internal::StreamCore> core) : core_(std::move(core)) {}

  // Queues `message`. Returns whether the stream is still open: false after
  // Close, after the client went away, or when this message hit the queue's
  // bound (then the stream is cut with UNAVAILABLE: the client resumes).
  bool Send(const T& message) const { return core_->Send(message); }

  // Ends with OK once every message sent so far has gone out.
  void Close() const { core_->Close(grpc::Status::OK); }
  // Ends with `status` (an error code and message for the client).
  void Close(grpc::Status status) const { core_->Close(std::move(status)); }
  void Close(const absl::Status& status) const {
    core_->Close(
        grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message())));
  }

  // Runs `hook` once if the stream ends without the handler closing it: the
  // client cancelled or went away, the deadline passed, the server is shutting
  // down, or the client was too slow. Producers use it to stop. It runs on a
  // gRPC thread, or, when a Send hits the queue's bound, inside that Send on
  // the producer's thread: never hold a lock around Send that the hook takes.
  void OnCancel(std::function<void()> hook) const { core_->OnCancel(std::move(hook)); }

  // Runs `hook` each time the queue empties after having been backlogged.
  void OnDrained(std::function<void()> hook) const { core_->OnDrained(std::move(hook)); }

  // Calls `fn` every `period` (first after one period) until the stream ends.
  void Every(absl::Duration period, std::function<void(Stream&)> fn) const {
    core_->AddTimer(period, period, Bind(std::move(fn)));
  }
  // Calls `fn` once after `delay`, unless the stream ended before.
  void After(absl::Duration delay, std::function<void(Stream&)> fn) const {
    core_->AddTimer(delay, absl::ZeroDuration(), Bind(std::move(fn)));
  }

  bool IsOpen() const { return core_->IsOpen(); }
  // Messages accepted by Send and not yet handed to gRPC.
  size_t Queued() const { return core_->Queued(); }
  // True from half of a queue bound on: the consumer is falling behind.
  bool Backlogged() const { return core_->Backlogged(); }

  const CallInfo& call() const { return core_->call(); }
  // The client's `last-event-id` metadata ("" when absent): resume after it.
  const std::string& last_event_id() const { return core_->call().last_event_id(); }

 private:
  // A topic sends each event's bytes, serialized once for all its subscribers.
  friend class Topic<T>;
  bool SendSerialized(const grpc::ByteBuffer& bytes) const { return core_->SendSerialized(bytes); }

  std::function<void()> Bind(std::function<void(Stream&)> fn) const {
    return [stream = *this, fn = std::move(fn)]() mutable { fn(stream); };
  }

  std::shared_ptr<internal::StreamCore> core_;
};

}  // namespace gravity::server

#endif  // GRAVITY_SERVER_STREAM_H_
