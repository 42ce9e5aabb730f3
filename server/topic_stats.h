// What one gravity::server::Topic tells about itself in this process:
// - TopicStats: its counters, as Topic<T>::Stats() returns them (for metrics
//   and stats lines). A plain value type: a snapshot, each counter read on
//   its own (they are not one atomic picture of the topic).
// - TopicDelivery: one event as this process hands it to its subscribers,
//   with the publisher's trace context, as Topic<T>::OnEvent reports it (to
//   follow a post to its deliveries: log, span or metric per event). A plain
//   value type; the observer gets it by reference, valid during the call.
#ifndef GRAVITY_SERVER_TOPIC_STATS_H_
#define GRAVITY_SERVER_TOPIC_STATS_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace gravity::server {

struct TopicStats {
  uint64_t events_published = 0;  // Publish calls that returned an id
  uint64_t events_delivered = 0;  // live events received from the log (any publisher)
  uint64_t subscribers = 0;       // open subscriptions now (each counted once it
                                  // gets every event published from then on)
  uint64_t replays = 0;           // subscriptions that resumed after an id
  // Events serialized for sending: once per event read from the log, however
  // many subscribers it goes to (they share the bytes).
  uint64_t events_encoded = 0;
  // Subscribers cut for being too slow (their queue reached its bound, or a
  // replay fell too far behind): ended with UNAVAILABLE, to resume from the
  // last event id they got.
  uint64_t slow_subscribers_dropped = 0;

  // Where replays got their history (the resume window: see
  // ResumeWindowBounds in topic_backend.h). With Redis, each replay read is
  // one round trip (MULTI, XRANGE, XINFO STREAM, EXEC) on the replay thread;
  // replay_reads / replays is what a resume costs Redis.
  uint64_t replay_reads = 0;              // reads of the log for replays
  uint64_t replay_reads_shared = 0;       // replay pages that joined a read already under
                                          // way from the same id instead of making their own
  uint64_t replay_pages_from_window = 0;  // replay pages served from the window
  uint64_t replays_from_window = 0;       // replays that went live without any log read
  uint64_t window_events = 0;             // events in the window now
  uint64_t window_bytes = 0;              // and their memory (as bounded)
  // Events the window dropped, beyond its own bounds, to keep every window
  // of its hub within their shared cap (RedisTopicOptions::
  // resume_windows_total_bytes): a growing window drops its own oldest.
  uint64_t window_evicted_by_total = 0;
  // The memory that every window sharing that cap holds now, this topic's
  // and the other topics' of its hub together (0: no shared cap).
  uint64_t windows_total_bytes = 0;
};

struct TopicDelivery {
  std::string id;  // the event id (as subscribers get it)
  // The publisher's W3C trace context as Publish / PublishAsync got it, from
  // any process sharing the log; "" when it had none.
  std::string traceparent;
  // Live (replay false): every event read from the log, once, with the
  // number of this process' live subscribers it was sent to (0: none; those
  // still replaying get it later, reported then). Replay (replay true): one
  // resuming subscriber got it from the history (subscribers is 1), once per
  // such subscriber.
  size_t subscribers = 0;
  bool replay = false;
};

}  // namespace gravity::server

#endif  // GRAVITY_SERVER_TOPIC_STATS_H_
