// Topic<T>: a named event log with subscribers. Publish once, and every
// subscribed stream gets the event, in this process and (with the Redis
// backend) in every process that shares the log.
//
//   auto room = Topic<chat::v1::Message>::Create("lobby", NewRedisTopicBackend(redis, "lobby"));
//   absl::StatusOr<std::string> id = (*room)->Publish(message);   // id: "1733140000000-0"
//   (*room)->Subscribe(stream);   // replays after stream.last_event_id(), then live
//   (*room)->OnEvent(observer);   // each delivery's id, traceparent, subscribers
//
// Guarantees, per subscription:
// - Order and exactly-once: events arrive in log order, each once, also
//   across the hand-over from replay to live and across Redis restarts.
// - Resume: Subscribe(stream, after_id) first replays what the log holds
//   after `after_id`. If the log no longer holds everything after it
//   (retention: max events, max age, MAXLEN) or never had it (the log was
//   reset), the stream ends with OUT_OF_RANGE saying the history is gone:
//   never a silent gap. A malformed id ends it with INVALID_ARGUMENT.
//   An empty `after_id` subscribes from now on. With Redis, a resume after
//   an id among the topic's latest events is served from memory (the resume
//   window; RedisTopicOptions::resume_window_*), and concurrent resumes from
//   one id share one Redis read: the same events, in the same order.
// - Event ids: the id is written into T's field marked (gravity.v1.event_id),
//   so the bridge's SSE `id:` and Last-Event-ID work unchanged.
// - Slow subscribers: each event goes into the stream's bounded queue
//   (StreamOptions). A replay waits whenever the stream is Backlogged() and
//   continues when it drains. A live subscriber whose queue reaches the bound
//   is cut with UNAVAILABLE (StreamOptions' policy) and dropped: it
//   reconnects and resumes from the log after its last event id. Nobody waits for it: not the
//   publisher, not the other subscribers.
// - Publish never queues silently: when the log is unreachable it returns
//   UNAVAILABLE (Redis: after at most RedisTopicOptions::publish_timeout).
//   PublishAsync waits in a bounded queue (max_queued_publishes) and fails
//   fast with UNAVAILABLE when it is full. After a timeout (Redis hung rather
//   than down) the event may still be stored when Redis wakes up, so a
//   retrying publisher may post it twice.
//
// Blocking: Subscribe and PublishAsync never block (a Redis replay runs on the
// process' shared replay thread, an asynchronous publish on its shared
// publisher thread; see RedisTopicOptions):
// use them from gRPC handlers. Publish with the in-memory backend does not
// block; with Redis it is one round trip to Redis (bounded by
// publish_timeout): for callers on their own threads. In memory the
// publisher's thread also hands the event to the local subscribers (a few
// microseconds each).
//
// Thread-safety: Publish, PublishAsync, Subscribe, Stats and OnEvent may be called from
// any thread concurrently (OnEvent: see there for its observer's thread). Destroying the Topic
// stops its backend (waits for its callbacks: milliseconds, or up to publish_timeout with an XADD
// in flight to a hung Redis) and ends its open subscriptions with UNAVAILABLE (clients resume
// elsewhere); do not destroy it from a stream hook.
#ifndef GRAVITY_SERVER_TOPIC_H_
#define GRAVITY_SERVER_TOPIC_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "server/internal/topic_core.h"
#include "server/stream.h"
#include "server/topic_backend.h"
#include "server/topic_stats.h"

namespace gravity::server {

template <typename T>
class Topic {
 public:
  // INVALID_ARGUMENT when T has no (gravity.v1.event_id) field, or an integer
  // one and the backend's ids are not integers; UNAVAILABLE when the backend
  // cannot start (Redis unreachable).
  static absl::StatusOr<std::unique_ptr<Topic>> Create(
      std::string name, std::unique_ptr<TopicBackend> backend = NewInMemoryTopicBackend()) {
    auto core =
        internal::TopicCore::Create(std::move(name), std::move(backend), T::default_instance());
    if (!core.ok()) return core.status();
    return std::unique_ptr<Topic>(new Topic(std::move(*core)));
  }

  Topic(const Topic&) = delete;
  Topic& operator=(const Topic&) = delete;
  ~Topic() { core_->Stop(); }

  // Appends `message` (its event-id field is ignored) and returns the id.
  // Blocks for the Redis round trip: for callers on their own threads.
  // `traceparent` (W3C trace context, e.g. the publishing call's
  // CallInfo::traceparent()) is kept with the event: on Redis a field of the
  // stream entry, visible with XRANGE; every process delivering the event
  // reports it to OnEvent, so a post can be followed to its deliveries.
  absl::StatusOr<std::string> Publish(const T& message, const std::string& traceparent = "") {
    return core_->Publish(message, traceparent);
  }

  // The same without blocking, for gRPC handlers: `done` gets the id or the
  // error exactly once. In memory it runs at once, on this thread, before
  // PublishAsync returns. With Redis it runs on the process' one publisher
  // thread (shared by every Redis topic) after the XADD, within about
  // 2 x publish_timeout; UNAVAILABLE when Redis is down, hung, or when
  // RedisTopicOptions::max_queued_publishes are already waiting (then at
  // once, on this thread, never sent). `done` must not block and must not
  // destroy the topic; `message` is copied (serialized) before this returns.
  void PublishAsync(const T& message, std::function<void(absl::StatusOr<std::string>)> done) {
    core_->PublishAsync(message, "", std::move(done));
  }
  // With the publisher's trace context, as Publish keeps it.
  void PublishAsync(const T& message, const std::string& traceparent,
                    std::function<void(absl::StatusOr<std::string>)> done) {
    core_->PublishAsync(message, traceparent, std::move(done));
  }

  // Replays after `after_id` ("" = from now), then delivers live.
  void Subscribe(Stream<T> stream, const std::string& after_id) {
    core_->Subscribe(std::make_unique<StreamSink>(std::move(stream)), after_id);
  }
  // Resumes after the client's last-event-id (browsers: Last-Event-ID).
  void Subscribe(Stream<T> stream) {
    const std::string after_id = stream.last_event_id();
    Subscribe(std::move(stream), after_id);
  }

  // OK when `id` has the form of this topic's event ids ("" too): lets a
  // handler reject a bad last-event-id before accepting the call.
  absl::Status CheckEventId(const std::string& id) const { return core_->CheckEventId(id); }

  TopicStats Stats() const { return core_->Stats(); }
  const std::string& name() const { return core_->name(); }

  // Reports each event as this process hands it to its subscribers, with
  // the publisher's traceparent (from Publish/PublishAsync, in any process
  // sharing the log; "" when none): see TopicDelivery in topic_stats.h. Live
  // events are reported once each, after they went to every live
  // subscriber (`subscribers` of them, maybe 0); a resuming subscriber's
  // replayed events once per subscriber (replay true). Costs nothing
  // without an observer, a small copy per event (not per subscriber) with one.
  //
  //   topic->OnEvent([](const TopicDelivery& event) {   // e.g. a span or a log line
  //     std::clog << "event " << event.id << " trace " << event.traceparent << " to "
  //               << event.subscribers << (event.replay ? " (replay)\n" : "\n");
  //   });
  //
  // Threads: the observer runs on the thread that fans out, holding no lock
  // that the topic's methods take (it may call Stats, Subscribe or
  // PublishAsync): live events on the backend's delivery thread (Redis: the
  // process' one reader thread, shared by every topic; in memory: a
  // publisher's thread) one batch at a time in log order; replayed ones on
  // the thread driving that replay (Redis: the replay thread; else the
  // subscribing or draining thread), so calls may overlap: make it
  // thread-safe. It must be quick and must not block (it holds up every
  // subscriber, and with Redis every topic), nor destroy the topic.
  // Set it once, before subscribing anyone (earlier events are not
  // reported); setting it again replaces it, an empty function removes it
  // (thread-safe, but a call to the previous one may still be running).
  void OnEvent(std::function<void(const TopicDelivery&)> observer) {
    core_->OnEvent(std::move(observer));
  }

 private:
  class StreamSink final : public internal::SubscriberSink {
   public:
    explicit StreamSink(Stream<T> stream) : stream_(std::move(stream)) {}
    bool SendSerialized(const grpc::ByteBuffer& bytes) override {
      return stream_.SendSerialized(bytes);
    }
    void Close(const absl::Status& status) override { stream_.Close(status); }
    bool IsOpen() const override { return stream_.IsOpen(); }
    bool Backlogged() const override { return stream_.Backlogged(); }
    void OnCancel(std::function<void()> hook) override { stream_.OnCancel(std::move(hook)); }
    void OnDrained(std::function<void()> hook) override { stream_.OnDrained(std::move(hook)); }

   private:
    const Stream<T> stream_;
  };

  explicit Topic(std::shared_ptr<internal::TopicCore> core) : core_(std::move(core)) {}

  const std::shared_ptr<internal::TopicCore> core_;
};

}  // namespace gravity::server

#endif  // GRAVITY_SERVER_TOPIC_H_
