// BufferedSink: the bounded read-ahead buffer between a ReadReactor and the
// blocking reader gravity::client::Stream<T>.
//
// At most `max_buffered` messages wait here; when the buffer is full the
// reactor is paused (no read in flight, so gRPC flow control pushes back on
// the server) and the consumer resumes it as it takes a message out.
//
// Thread-safe: the reactor side (Sink) runs on gRPC threads, the consumer side
// (AwaitOpen, Next, ...) on the user's thread, Cancel on any thread. No lock
// is held while calling into gRPC.
#ifndef GRAVITY_CLIENT_INTERNAL_BUFFERED_SINK_H_
#define GRAVITY_CLIENT_INTERNAL_BUFFERED_SINK_H_

#include <algorithm>
#include <cstddef>
#include <deque>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/internal/sink.h"

namespace gravity::client::internal {

template <typename T>
class BufferedSink final : public Sink<T> {
 public:
  explicit BufferedSink(size_t max_buffered) : max_buffered_(std::max<size_t>(max_buffered, 1)) {}

  // --- Reactor side.
  void OnOpen(bool accepted) override {
    absl::MutexLock lock(&mu_);
    opened_ = true;
    accepted_ = accepted;
  }

  bool OnMessage(T&& message, Resumable* call) override {
    absl::MutexLock lock(&mu_);
    if (dropping_) return true;  // cancelled: read on until gRPC reports the end
    buffer_.push_back(std::move(message));
    if (buffer_.size() < max_buffered_) return true;
    paused_ = call;
    return false;
  }

  void OnDone(absl::Status status) override {
    absl::MutexLock lock(&mu_);
    done_ = true;
    status_ = std::move(status);
  }

  // --- Consumer side.

  // Blocks until the server accepted the call or the call ended. OK: the
  // stream is readable (possibly already ended with OK and no message).
  // Otherwise the status of a call that failed before any message.
  absl::Status AwaitOpen() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &BufferedSink::OpenedOrDone));
    if (!accepted_) mu_.Await(absl::Condition(&done_));
    if (!accepted_ && buffer_.empty() && !status_.ok()) return status_;
    return absl::OkStatus();
  }

  // Blocks until a message is buffered (moves it to *message, true) or the
  // call ended with nothing left (false).
  bool Next(T* message) {
    Resumable* resume = nullptr;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &BufferedSink::ReadableOrDone));
      if (buffer_.empty()) return false;
      *message = std::move(buffer_.front());
      buffer_.pop_front();
      std::swap(resume, paused_);
    }
    if (resume != nullptr) resume->Resume(/*read_more=*/true);
    return true;
  }

  // Drops what is buffered and what still arrives, and lets a paused call go
  // to its end (the caller cancels the call). Idempotent.
  void Drop() {
    Resumable* resume = nullptr;
    {
      absl::MutexLock lock(&mu_);
      dropping_ = true;
      buffer_.clear();
      std::swap(resume, paused_);
    }
    if (resume != nullptr) resume->Resume(/*read_more=*/false);
  }

  // Blocks until OnDone ran or `timeout` passed; whether it ran.
  bool AwaitDone(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&done_), timeout);
  }

  bool done() const {
    absl::MutexLock lock(&mu_);
    return done_;
  }
  absl::Status status() const {
    absl::MutexLock lock(&mu_);
    return status_;
  }
  size_t buffered() const {
    absl::MutexLock lock(&mu_);
    return buffer_.size();
  }

 private:
  bool OpenedOrDone() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return opened_ || done_; }
  bool ReadableOrDone() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !buffer_.empty() || done_;
  }

  const size_t max_buffered_;
  mutable absl::Mutex mu_;
  std::deque<T> buffer_ ABSL_GUARDED_BY(mu_);
  // Non-null while the reactor is paused because the buffer is full.
  Resumable* paused_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool opened_ ABSL_GUARDED_BY(mu_) = false;
  bool accepted_ ABSL_GUARDED_BY(mu_) = false;
  bool dropping_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gravity::client::internal

#endif  // GRAVITY_CLIENT_INTERNAL_BUFFERED_SINK_H_
