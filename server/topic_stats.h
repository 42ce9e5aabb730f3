// TopicStats: the counters of one gravity::server::Topic in this process, as
// Topic<T>::Stats() returns them (for metrics and stats lines).
// A plain value type: a snapshot, each counter read on its own (they are not
// one atomic picture of the topic).
#ifndef GRAVITY_SERVER_TOPIC_STATS_H_
#define GRAVITY_SERVER_TOPIC_STATS_H_

#include <cstdint>

namespace gravity::server {

struct TopicStats {
  uint64_t events_published = 0;  // Publish calls that returned an id
  uint64_t events_delivered = 0;  // live events received from the log (any publisher)
  uint64_t subscribers = 0;       // open subscriptions now (each counted once it
                                  // gets every event published from then on)
  uint64_t replays = 0;           // subscriptions that resumed after an id
  // Subscribers cut for being too slow (their queue reached its bound, or a
  // replay fell too far behind): ended with UNAVAILABLE, to resume from the
  // last event id they got.
  uint64_t slow_subscribers_dropped = 0;
};

}  // namespace gravity::server

#endif  // GRAVITY_SERVER_TOPIC_STATS_H_
