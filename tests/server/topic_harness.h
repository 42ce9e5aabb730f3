// For Topic tests: a gravity server on 127.0.0.1:0 whose chat.v1.Chat/Subscribe
// subscribes the caller to a Topic the test owns, and subscribers that record
// what they get through the native client's callback API (no thread each).
#ifndef GRAVITY_TESTS_SERVER_TOPIC_HARNESS_H_
#define GRAVITY_TESTS_SERVER_TOPIC_HARNESS_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "chat/v1/chat.grpc.pb.h"
#include "client/client.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "server/service.h"
#include "server/topic.h"

namespace gravity::testing {

using ChatTopic = server::Topic<chat::v1::Message>;

// What one subscription received. Thread-safe.
class RecordingSubscriber {
 public:
  void Add(const chat::v1::Message& message) {
    absl::MutexLock lock(&mu_);
    messages_.push_back(message);
  }
  void End(absl::Status status) {
    {
      absl::MutexLock lock(&mu_);
      status_ = std::move(status);
    }
    done_.Notify();
  }
  size_t count() const {
    absl::MutexLock lock(&mu_);
    return messages_.size();
  }
  std::vector<chat::v1::Message> messages() const {
    absl::MutexLock lock(&mu_);
    return messages_;
  }
  std::vector<std::string> ids() const {
    std::vector<std::string> ids;
    for (const auto& message : messages()) ids.push_back(message.id());
    return ids;
  }
  std::vector<std::string> texts() const {
    std::vector<std::string> texts;
    for (const auto& message : messages()) texts.push_back(message.text());
    return texts;
  }
  // The final status, once the stream ended within `timeout`.
  std::optional<absl::Status> WaitForEnd(absl::Duration timeout) {
    if (!done_.WaitForNotificationWithTimeout(timeout)) return std::nullopt;
    absl::MutexLock lock(&mu_);
    return status_;
  }
  void Cancel() { stream.Cancel(); }

  client::AsyncStream stream;

 private:
  mutable absl::Mutex mu_;
  std::vector<chat::v1::Message> messages_ ABSL_GUARDED_BY(mu_);
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  absl::Notification done_;
};

// Used from the test's thread; the server and the subscriptions' callbacks
// run on gRPC's threads.
class TopicHarness {
 public:
  // Serves Subscribe from `*topic` (which must outlive the harness's calls).
  explicit TopicHarness(ChatTopic* topic, server::StreamOptions stream_options = {})
      : service_("chat.v1.Chat") {
    service_.set_stream_options(stream_options);
    absl::Status added = service_.AddStream<chat::v1::SubscribeRequest, chat::v1::Message>(
        "Subscribe",
        [topic](const chat::v1::SubscribeRequest&, server::Stream<chat::v1::Message> stream) {
          topic->Subscribe(std::move(stream));
        });
    EXPECT_TRUE(added.ok()) << added;
    server::ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.drain_timeout = absl::Seconds(2);
    auto started = server::Server::Start(options, {&service_});
    EXPECT_TRUE(started.ok()) << started.status();
    if (started.ok()) server_ = std::move(*started);
    channel_ = grpc::CreateChannel(server_ != nullptr ? server_->address() : "127.0.0.1:1",
                                   grpc::InsecureChannelCredentials());
    stub_ = chat::v1::Chat::NewStub(channel_);
  }

  // Ends every subscription and waits (bounded) until each call is over
  // before the channel goes: gRPC 1.51 fails when a channel's last
  // reference is dropped on one of its own callback threads.
  ~TopicHarness() {
    for (const auto& subscriber : subscribers_) subscriber->Cancel();
    for (const auto& subscriber : subscribers_) {
      EXPECT_TRUE(subscriber->WaitForEnd(absl::Seconds(10)).has_value());
    }
    if (server_ != nullptr) server_->Shutdown();
  }

  // Subscribes (resuming after `last_event_id` unless empty); the returned
  // subscriber records until the stream ends or the test cancels it.
  std::shared_ptr<RecordingSubscriber> Subscribe(const std::string& last_event_id = "",
                                                 size_t max_buffered = 64) {
    auto subscriber = std::make_shared<RecordingSubscriber>();
    client::CallOptions options;
    options.WithTimeout(absl::Seconds(120)).WithMaxBufferedMessages(max_buffered);
    if (!last_event_id.empty()) options.WithLastEventId(last_event_id);
    subscriber->stream = client::OpenAsync(
        stub_, &chat::v1::Chat::Stub::async::Subscribe, {}, options,
        [subscriber](const chat::v1::Message& message) { subscriber->Add(message); },
        [subscriber](absl::Status status) { subscriber->End(std::move(status)); });
    subscribers_.push_back(subscriber);
    return subscriber;
  }

  chat::v1::Chat::Stub& stub() { return *stub_; }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }

 private:
  server::Service service_;
  std::unique_ptr<server::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<chat::v1::Chat::Stub> stub_;
  std::vector<std::shared_ptr<RecordingSubscriber>> subscribers_;
};

// What a topic's observer (Topic::OnEvent) reported, one line per report:
// "<id> <traceparent or -> to <subscribers>[ replay]". Thread-safe; install
// it with `topic->OnEvent(observer->Callback())` (it keeps itself alive).
class RecordingObserver : public std::enable_shared_from_this<RecordingObserver> {
 public:
  std::function<void(const server::TopicDelivery&)> Callback() {
    return [self = shared_from_this()](const server::TopicDelivery& event) {
      std::string line =
          absl::StrCat(event.id, " ", event.traceparent.empty() ? "-" : event.traceparent, " to ",
                       event.subscribers, event.replay ? " replay" : "");
      absl::MutexLock lock(&self->mu_);
      self->lines_.push_back(std::move(line));
    };
  }
  size_t count() const {
    absl::MutexLock lock(&mu_);
    return lines_.size();
  }
  std::vector<std::string> lines() const {
    absl::MutexLock lock(&mu_);
    return lines_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

inline chat::v1::Message ChatMessage(std::string text) {
  chat::v1::Message message;
  message.set_room("test");
  message.set_text(std::move(text));
  return message;
}

}  // namespace gravity::testing

#endif  // GRAVITY_TESTS_SERVER_TOPIC_HARNESS_H_
