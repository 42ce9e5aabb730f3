// TopicCore: the untyped part of gravity::server::Topic<T>: subscribers, the
// replay-then-live hand-over, the event-id field, counters.
//
// Owners: Topic<T> owns the core (shared_ptr, so stream hooks can hold weak
// references) and calls Stop before letting go of it; the core owns the
// backend and every subscriber's sink.
//
// Thread-safety: every public method may be called from any thread. Locks:
// mu_ (the subscriber list and live position) is never held while calling a
// sink or the backend; a subscriber's own mutex is held while sending to it,
// so its events go out one batch at a time in log order.
#ifndef GRAVITY_SERVER_INTERNAL_TOPIC_CORE_H_
#define GRAVITY_SERVER_INTERNAL_TOPIC_CORE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "server/topic_backend.h"
#include "server/topic_stats.h"

namespace gravity::server {

namespace internal {

// What the core needs of a stream, untyped (Topic<T> adapts Stream<T>).
class SubscriberSink {
 public:
  virtual ~SubscriberSink() = default;
  virtual bool Send(const google::protobuf::Message& message) = 0;
  virtual void Close(const absl::Status& status) = 0;
  virtual bool IsOpen() const = 0;
  virtual bool Backlogged() const = 0;
  virtual void OnCancel(std::function<void()> hook) = 0;
  virtual void OnDrained(std::function<void()> hook) = 0;
};

class TopicCore : public std::enable_shared_from_this<TopicCore> {
 public:
  // `prototype` is T's default instance; its type must have one field marked
  // (gravity.v1.event_id), a string or (with integer ids) an integer.
  static absl::StatusOr<std::shared_ptr<TopicCore>> Create(
      std::string name, std::unique_ptr<TopicBackend> backend,
      const google::protobuf::Message& prototype);

  TopicCore(std::string name, std::unique_ptr<TopicBackend> backend,
            const google::protobuf::Message& prototype,
            const google::protobuf::FieldDescriptor* id_field);
  ~TopicCore();

  // Stops the backend (its threads are joined). Called by ~Topic<T>.
  void Stop();

  absl::StatusOr<std::string> Publish(const google::protobuf::Message& message);
  void PublishAsync(const google::protobuf::Message& message,
                    std::function<void(absl::StatusOr<std::string>)> done);
  void Subscribe(std::unique_ptr<SubscriberSink> sink, const std::string& after_id);
  absl::Status CheckEventId(const std::string& id) const;
  TopicStats Stats() const;
  const std::string& name() const { return name_; }

 private:
  // An event parsed once and shared by every subscriber that gets it.
  struct Event {
    std::string id;
    EventPosition position;
    std::unique_ptr<google::protobuf::Message> message;
  };
  using EventPtr = std::shared_ptr<const Event>;

  struct Subscriber {
    enum class State { kReplaying, kLive, kEnded };

    explicit Subscriber(std::unique_ptr<SubscriberSink> s) : sink(std::move(s)) {}

    const std::unique_ptr<SubscriberSink> sink;
    absl::Mutex mu;
    State state ABSL_GUARDED_BY(mu) = State::kLive;
    // The last event sent (or the resume point): later events only.
    EventPosition cursor ABSL_GUARDED_BY(mu);
    std::string cursor_id ABSL_GUARDED_BY(mu);
    // Live events that came while replaying; sent when the replay is done.
    std::deque<EventPtr> pending ABSL_GUARDED_BY(mu);
    // The replay waits for the stream's queue to drain.
    bool replay_paused ABSL_GUARDED_BY(mu) = false;
    // Set once when the stream ends (also from its cancel hook, which cannot
    // take `mu`); the list drops ended subscribers lazily.
    std::atomic<bool> ended{false};
  };
  using SubscriberPtr = std::shared_ptr<Subscriber>;

  void OnLive(std::vector<TopicEvent> events);
  void RequestPage(const SubscriberPtr& subscriber);
  // Sends a replayed page; true when the next page is wanted now.
  static bool OnPage(const std::weak_ptr<TopicCore>& weak_core, const SubscriberPtr& subscriber,
                     absl::StatusOr<TopicPage> page);
  void ResumeReplay(const SubscriberPtr& subscriber);
  // Sends what is after the cursor; false when the stream ended (then the
  // subscriber is ended and counted). Needs subscriber->mu.
  bool SendLocked(Subscriber& subscriber, const Event& event)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(subscriber.mu);
  void EndLocked(Subscriber& subscriber, const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(subscriber.mu);
  // Counts the subscriber out, once.
  void MarkEnded(Subscriber& subscriber);
  absl::StatusOr<EventPtr> Parse(TopicEvent event) const;
  // The payload Publish appends: `message` without its event id.
  std::string Payload(const google::protobuf::Message& message) const;

  const std::string name_;
  const std::unique_ptr<TopicBackend> backend_;
  const google::protobuf::Message& prototype_;
  const google::protobuf::FieldDescriptor* const id_field_;

  mutable absl::Mutex mu_;
  std::vector<SubscriberPtr> subscribers_ ABSL_GUARDED_BY(mu_);
  // The last event handed to live subscribers; a new live subscription
  // starts after it.
  EventPosition live_position_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;

  std::atomic<uint64_t> events_published_{0};
  std::atomic<uint64_t> events_delivered_{0};
  std::atomic<uint64_t> subscriber_count_{0};
  std::atomic<uint64_t> replays_{0};
  std::atomic<uint64_t> slow_dropped_{0};
};

}  // namespace internal
}  // namespace gravity::server

#endif  // GRAVITY_SERVER_INTERNAL_TOPIC_CORE_H_
