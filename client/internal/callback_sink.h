// CallbackSink: hands each message of a ReadReactor to the user's callbacks
// (gravity::client::OpenAsync).
//
// Runs on gRPC's callback threads, one call at a time: on_message never runs
// concurrently with itself or on_done. The next read starts when on_message
// returns, so a slow callback slows the server down through flow control.
#ifndef GRAVITY_CLIENT_INTERNAL_CALLBACK_SINK_H_
#define GRAVITY_CLIENT_INTERNAL_CALLBACK_SINK_H_

#include <functional>
#include <utility>

#include "absl/status/status.h"
#include "client/internal/sink.h"

namespace gravity::client::internal {

template <typename T>
class CallbackSink final : public Sink<T> {
 public:
  CallbackSink(std::function<void(const T&)> on_message, std::function<void(absl::Status)> on_done)
      : on_message_(std::move(on_message)), on_done_(std::move(on_done)) {}

  void OnOpen(bool) override {}

  bool OnMessage(T&& message, Resumable*) override {
    if (on_message_) on_message_(message);
    return true;
  }

  void OnDone(absl::Status status) override {
    if (on_done_) on_done_(std::move(status));
    // Whatever the callbacks captured goes now, not whenever the handle does.
    on_message_ = nullptr;
    on_done_ = nullptr;
  }

 private:
  std::function<void(const T&)> on_message_;
  std::function<void(absl::Status)> on_done_;
};

}  // namespace gravity::client::internal

#endif  // GRAVITY_CLIENT_INTERNAL_CALLBACK_SINK_H_
