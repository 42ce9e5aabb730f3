// TopicCore: the untyped part of gravity::server::Topic<T>: subscribers, the
// replay-then-live hand-over, the resume window, shared replay reads, the
// event-id field, counters.
//
// Replays read a page at a time: from the resume window when it holds the
// subscriber's position (resume_window.h: no backend call), otherwise from
// the backend, where subscribers of the topic asking for the same position at
// once share one read (single-flight: a SharedRead).
//
// Owners: Topic<T> owns the core (shared_ptr, so stream hooks can hold weak
// references) and calls Stop before letting go of it; the core owns the
// backend and every subscriber's sink.
//
// The event observer (OnEvent) is called with no lock of the core held,
// after a live batch has gone to every live subscriber (from the backend's
// live thread, one batch at a time) and after each replayed page (from the
// thread driving that replay): live and replay calls may overlap.
//
// Thread-safety: every public method may be called from any thread. Locks:
// mu_ (the subscriber list, live position, window, shared reads, observer) is
// never held while calling a sink, the backend or the observer; a
// subscriber's own mutex is held while sending to it, so its events go out
// one batch at a time in log order.
#ifndef GRAVITY_SERVER_INTERNAL_TOPIC_CORE_H_
#define GRAVITY_SERVER_INTERNAL_TOPIC_CORE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "server/internal/resume_window.h"
#include "server/topic_backend.h"
#include "server/topic_stats.h"

namespace gravity::server {

namespace internal {

// What the core needs of a stream, untyped (Topic<T> adapts Stream<T>).
class SubscriberSink {
 public:
  virtual ~SubscriberSink() = default;
  // Sends one event's message, serialized once for every subscriber.
  virtual bool SendSerialized(const grpc::ByteBuffer& bytes) = 0;
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

  absl::StatusOr<std::string> Publish(const google::protobuf::Message& message,
                                      const std::string& traceparent);
  void PublishAsync(const google::protobuf::Message& message, const std::string& traceparent,
                    std::function<void(absl::StatusOr<std::string>)> done);
  void Subscribe(std::unique_ptr<SubscriberSink> sink, const std::string& after_id);
  absl::Status CheckEventId(const std::string& id) const;
  TopicStats Stats() const;
  const std::string& name() const { return name_; }

  // See Topic<T>::OnEvent. An empty function removes the observer.
  using EventObserver = std::function<void(const TopicDelivery&)>;
  void OnEvent(EventObserver observer);

 private:
  using EventPtr = ParsedEventPtr;

  struct Subscriber {
    enum class State { kReplaying, kLive, kEnded };

    explicit Subscriber(std::unique_ptr<SubscriberSink> s) : sink(std::move(s)) {}

    const std::unique_ptr<SubscriberSink> sink;
    absl::Mutex mu;
    State state ABSL_GUARDED_BY(mu) = State::kLive;
    // The last event sent (or the resume point): later events only.
    EventPosition cursor ABSL_GUARDED_BY(mu);
    std::string cursor_id ABSL_GUARDED_BY(mu);
    // The live position when it joined the list: every later event reaches
    // it live (or into `pending`), every earlier one only through the replay.
    EventPosition joined_at ABSL_GUARDED_BY(mu);
    // Live events that came while replaying; sent when the replay is done.
    std::deque<EventPtr> pending ABSL_GUARDED_BY(mu);
    // The replay waits for the stream's queue to drain.
    bool replay_paused ABSL_GUARDED_BY(mu) = false;
    // The replay read the backend at least once (else: all from the window).
    bool read_log ABSL_GUARDED_BY(mu) = false;
    // Set once when the stream ends (also from its cancel hook, which cannot
    // take `mu`); the list drops ended subscribers lazily.
    std::atomic<bool> ended{false};
  };
  using SubscriberPtr = std::shared_ptr<Subscriber>;

  // One backend read of a replay page, and the subscribers waiting for it
  // (single-flight). Made and joined under mu_; the read's callback takes it
  // out of reads_ (under mu_) before anyone gets the page, so a subscriber
  // that comes later makes a read of its own. Its fields are guarded by the
  // core's mu_ (annotations cannot name it).
  struct SharedRead {
    EventPosition after;
    // live_position_ when the read was asked for: the read sees the log at
    // least up to there, so its at_end holds for a subscriber that joined the
    // list before (joined_at <= issued_at); a later one reads on instead.
    EventPosition issued_at;
    std::vector<SubscriberPtr> waiters;
  };

  void OnLive(std::vector<TopicEvent> events);
  // Drives the replays of `work` a page at a time until each is live, ended,
  // paused for back-pressure or waiting for a backend read (whose callback
  // drives its waiters on). No recursion per page.
  void Replay(std::vector<SubscriberPtr> work);
  // A backend read is done: its waiters get the page; returns those that
  // want the next page now.
  std::vector<SubscriberPtr> FinishRead(SharedRead& read, absl::StatusOr<TopicPage> page);
  // Sends a replayed page; true when the next page is wanted now. A page
  // from the window always ends where it says; a backend page only for a
  // subscriber that had joined when the read was asked for.
  // `sent` (when not null) gets each event sent, for the observer.
  bool OnPage(const SubscriberPtr& subscriber, const ReplayPage& page, bool from_window,
              EventPosition issued_at, std::vector<EventPtr>* sent);
  // Tells `observer` (if any) about events one resuming subscriber got.
  static void ReportReplayed(const EventObserver* observer, const std::vector<EventPtr>& sent);
  void ResumeReplay(const SubscriberPtr& subscriber);
  // Sends what is after the cursor; false when the stream ended (then the
  // subscriber is ended and counted). Needs subscriber->mu.
  bool SendLocked(Subscriber& subscriber, const ParsedEvent& event)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(subscriber.mu);
  void EndLocked(Subscriber& subscriber, const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(subscriber.mu);
  // Counts the subscriber out, once.
  void MarkEnded(Subscriber& subscriber);
  absl::StatusOr<EventPtr> Parse(TopicEvent event) const;
  // A backend page parsed (unparsable entries logged and left out).
  ReplayPage ParsePage(TopicPage page) const;
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
  ResumeWindow window_ ABSL_GUARDED_BY(mu_);
  const bool window_enabled_;
  // Backend reads under way, by the position they read after.
  std::map<EventPosition, std::shared_ptr<SharedRead>> reads_ ABSL_GUARDED_BY(mu_);
  // Copied (a reference count) under mu_ by whoever reports, called unlocked.
  std::shared_ptr<const EventObserver> observer_ ABSL_GUARDED_BY(mu_);

  std::atomic<uint64_t> events_published_{0};
  std::atomic<uint64_t> events_delivered_{0};
  mutable std::atomic<uint64_t> events_encoded_{0};  // Parse is const
  std::atomic<uint64_t> subscriber_count_{0};
  std::atomic<uint64_t> replays_{0};
  std::atomic<uint64_t> slow_dropped_{0};
  std::atomic<uint64_t> replay_reads_{0};
  std::atomic<uint64_t> replay_reads_shared_{0};
  std::atomic<uint64_t> replay_pages_from_window_{0};
  std::atomic<uint64_t> replays_from_window_{0};
};

}  // namespace internal
}  // namespace gravity::server

#endif  // GRAVITY_SERVER_INTERNAL_TOPIC_CORE_H_
