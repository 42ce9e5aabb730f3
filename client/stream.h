// Stream<T>: a server stream read with a plain loop, the C++ form of the
// seed's `for await (const user of userStream.data)`. Obtained from
// gravity::client::Open (see client/client.h), which has already told an
// accepted call from a rejected one.
//
//   for (const User& user : *users) std::cout << user.id() << "\n";
//   // or: User user; while (users->Next(&user)) { ... }
//   if (absl::Status status = users->status(); !status.ok()) { ... }
//
// The loop ends when the call ends, for whatever reason: the server closed
// the stream (OK or an error), the deadline passed, Cancel() was called, the
// connection broke (UNAVAILABLE). status() then tells which; it is never an
// exception.
//
// Messages are read ahead into a buffer bounded by
// CallOptions::max_buffered_messages; when it is full, reading pauses and gRPC
// flow control slows the server down.
//
// Destroying a Stream that has not ended cancels its call and waits for the
// cancellation to take effect (immediate: no round trip to the server).
//
// Lifetime: keep the channel (or the stub holding it) until the Stream is
// destroyed or Next returned false. gRPC 1.51 aborts when the last reference
// to a channel goes on one of its own threads, which could happen if the call
// still held it.
//
// Thread-safety: one consumer thread calls Next / begin / status; Cancel may
// be called from any thread at any time (but not concurrently with a move or
// the destructor). Movable, not copyable.
#ifndef GRAVITY_CLIENT_STREAM_H_
#define GRAVITY_CLIENT_STREAM_H_

#include <cstddef>
#include <iterator>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/internal/buffered_sink.h"
#include "grpcpp/client_context.h"

namespace gravity::client {

template <typename T>
class Stream {
 public:
  // An input iterator over the remaining messages (for range-for); it yields
  // T& so a message can be moved out.
  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = T*;
    using reference = T&;

    T& operator*() const { return stream_->current_; }
    T* operator->() const { return &stream_->current_; }
    Iterator& operator++() {
      if (!stream_->Next(&stream_->current_)) stream_ = nullptr;
      return *this;
    }
    bool operator==(const Iterator& other) const { return stream_ == other.stream_; }
    bool operator!=(const Iterator& other) const { return stream_ != other.stream_; }

   private:
    friend class Stream;
    explicit Iterator(Stream* stream) : stream_(stream) {}
    Stream* stream_;  // null: the end
  };

  Stream(Stream&&) = default;
  Stream& operator=(Stream&& other) {
    if (this != &other) {
      Abandon();
      context_ = std::move(other.context_);
      sink_ = std::move(other.sink_);
      current_ = std::move(other.current_);
    }
    return *this;
  }
  ~Stream() { Abandon(); }

  // Blocks until the next message (true, moved into *message) or the end of
  // the call (false; see status()).
  bool Next(T* message) { return sink_ != nullptr && sink_->Next(message); }

  // Reads the first message; the loop continues with the following ones.
  Iterator begin() {
    Iterator it(this);
    return ++it;
  }
  Iterator end() { return Iterator(nullptr); }

  // The final status, once Next returned false (before that: UNKNOWN with a
  // message saying so). OK only when the server closed the stream with OK.
  [[nodiscard]] absl::Status status() const {
    if (sink_ == nullptr) return absl::UnknownError("moved-from stream");
    if (!sink_->done()) return absl::UnknownError("the stream has not ended yet");
    return sink_->status();
  }

  // Ends the call: buffered messages are dropped, Next returns false and
  // status() is CANCELLED (unless the call had already ended). Thread-safe.
  void Cancel() {
    if (sink_ == nullptr) return;
    sink_->Drop();
    context_->TryCancel();
  }

  // Received messages not yet taken by Next (at most max_buffered_messages).
  size_t buffered() const { return sink_ == nullptr ? 0 : sink_->buffered(); }

  // For gravity::client::Open and OpenGeneric.
  Stream(std::shared_ptr<grpc::ClientContext> context,
         std::shared_ptr<internal::BufferedSink<T>> sink)
      : context_(std::move(context)), sink_(std::move(sink)) {}

 private:
  // Cancels an unfinished call and waits for its end, which a cancellation
  // brings at once: after that the reactor keeps no reference to the context
  // or the channel, so the caller may drop its channel right away (see
  // ReadReactor::OnDone). The bound only guards against a gRPC bug.
  void Abandon() {
    if (sink_ == nullptr || sink_->done()) return;
    Cancel();
    [[maybe_unused]] bool ended = sink_->AwaitDone(absl::Seconds(10));
  }

  std::shared_ptr<grpc::ClientContext> context_;
  std::shared_ptr<internal::BufferedSink<T>> sink_;
  T current_;  // the message the range-for iterator points at
};

}  // namespace gravity::client

#endif  // GRAVITY_CLIENT_STREAM_H_
