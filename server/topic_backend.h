// TopicBackend: the event log under a gravity::server::Topic<T>, and the two
// that gravity ships: in memory (one process) and Redis Streams (any number
// of processes sharing one log).
//
// A backend stores opaque payloads (the serialized message without its event
// id) under ids it assigns in increasing order, tells its topic about every
// entry appended to the log (by this process or any other) exactly once and
// in log order, and reads the log after an id for replays. Topic<T> does the
// rest (subscribers, replay-then-live hand-over, back-pressure).
//
// The traceparent given to Append comes back with the entry, live and in
// replays (TopicEvent::traceparent), so that Topic<T>::OnEvent can report it.
//
// Thread-safety of an implementation: Append, ReadAfter and ParseId may be
// called from any thread concurrently; Start once, Stop once (the topic does
// both). The live listener is called from one thread at a time, in log order.
#ifndef GRAVITY_SERVER_TOPIC_BACKEND_H_
#define GRAVITY_SERVER_TOPIC_BACKEND_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace gravity::server {

namespace internal {
class ResumeWindowBudget;  // server/internal/resume_window.h
}  // namespace internal

// Where an event id sits in its log, for ordering: in-memory id "N" is
// {N, 0}; Redis id "ms-seq" is {ms, seq}. {0, 0} is before every event.
// A plain value type.
struct EventPosition {
  uint64_t major = 0;
  uint64_t minor = 0;

  friend bool operator<(const EventPosition& a, const EventPosition& b) {
    return std::tie(a.major, a.minor) < std::tie(b.major, b.minor);
  }
  friend bool operator>(const EventPosition& a, const EventPosition& b) { return b < a; }
  friend bool operator==(const EventPosition& a, const EventPosition& b) {
    return a.major == b.major && a.minor == b.minor;
  }
};

// One entry of a log. A plain value type.
struct TopicEvent {
  std::string id;
  EventPosition position;
  std::string payload;
  // The publisher's W3C trace context as Append got it ("" when none, or
  // when the entry was written without one).
  std::string traceparent;
};

// A slice of the log read for a replay; `at_end` when it reached the end of
// the log as it was when read. A plain value type.
struct TopicPage {
  std::vector<TopicEvent> events;
  bool at_end = false;
};

// How much of its latest history a topic keeps in this process to serve
// resumes (Subscribe with an id) without reading the log: at most
// `max_events` events taking at most `max_bytes` of memory (parsed messages,
// as Message::SpaceUsedLong counts them, plus the id). {0, 0}: no window.
// A plain value type.
struct ResumeWindowBounds {
  size_t max_events = 0;
  size_t max_bytes = 0;
};

// The interface; see the file comment for the contract and thread-safety.
class TopicBackend {
 public:
  using LiveListener = std::function<void(std::vector<TopicEvent>)>;
  using PageCallback = std::function<void(absl::StatusOr<TopicPage>)>;

  virtual ~TopicBackend() = default;

  // Starts telling `listener` about every entry appended from now on. An
  // error (UNAVAILABLE: the log cannot be reached to learn where "now" is)
  // means the topic cannot be created yet.
  virtual absl::Status Start(LiveListener listener) = 0;
  // Stops the listener and any thread of the backend; bounded in time. Replays
  // still waiting get UNAVAILABLE.
  virtual void Stop() = 0;

  // Appends and returns the new entry's id. UNAVAILABLE when the log cannot
  // be reached: never queued for later. `traceparent` (W3C trace context of
  // the publisher's call, may be empty) is kept with the entry (Redis: a
  // field of the stream entry) and comes back with it.
  virtual absl::StatusOr<std::string> Append(const std::string& payload,
                                             const std::string& traceparent) = 0;

  // Append without blocking the caller: `done` gets the id or the error
  // exactly once, maybe at once on the caller's thread (the default, and the
  // in-memory log), maybe later on the backend's own thread (Redis: its
  // bounded publish queue; a full queue is UNAVAILABLE at once). `done` must
  // not block; every `done` has run when Stop returns.
  using AppendCallback = std::function<void(absl::StatusOr<std::string>)>;
  virtual void AppendAsync(const std::string& payload, const std::string& traceparent,
                           AppendCallback done) {
    done(Append(payload, traceparent));
  }

  // Up to `limit` entries after `after` (exclusive), oldest first, given to
  // `done` exactly once: maybe at once on the caller's thread (in memory),
  // maybe later on the backend's own thread (Redis). OUT_OF_RANGE when the
  // log no longer holds every entry after `after` (retention) or never had
  // `after` (ahead of the log: it was reset); UNAVAILABLE when unreachable.
  virtual void ReadAfter(const std::string& after_id, EventPosition after, size_t limit,
                         PageCallback done) = 0;

  // INVALID_ARGUMENT unless `id` has the form of this log's ids.
  virtual absl::StatusOr<EventPosition> ParseId(absl::string_view id) const = 0;
  // Whether ids are decimal integers (they fit an int64 event-id field).
  virtual bool integer_ids() const = 0;
  // For messages: "in memory", "redis 127.0.0.1:6379 key gravity:topic:x".
  virtual std::string Describe() const = 0;
  // The topic's resume window (see ResumeWindowBounds): worth having when
  // ReadAfter is a round trip (Redis), not when the log is in this process.
  // Whatever it holds must still be in the log (at most its retention).
  virtual ResumeWindowBounds resume_window() const { return {}; }
  // The bytes the window shares with other topics' windows (Redis: the
  // hub's resume_windows_total_bytes), or null: bounded by its own bounds
  // only. Internal: the core charges it for what the window holds.
  virtual std::shared_ptr<internal::ResumeWindowBudget> resume_window_budget() const {
    return nullptr;
  }
};

// The in-memory log: a ring of at most `max_events` entries, none older than
// `max_age` (older ones are dropped on the next append or read). Ids are
// "1", "2", ... in append order; a new process starts again at "1".
// A plain value type.
struct InMemoryTopicOptions {
  size_t max_events = 10000;
  absl::Duration max_age = absl::Hours(1);
};
std::unique_ptr<TopicBackend> NewInMemoryTopicBackend(InMemoryTopicOptions options = {});

// A Redis stream at key `key_prefix + topic name`. A topic owns no thread and
// no connection: every Redis topic of the process made with the same host,
// port and hub options (publish_timeout, max_queued_publishes, block_time,
// max_reconnect_backoff, max_topics, resume_windows_total_bytes) shares one
// hub of three threads and three connections, whatever the number of topics
// (the other options, key_prefix, max_len and resume_window_*, are each
// topic's own):
// - Append is `XADD key MAXLEN ~ max_len * payload <bytes> [traceparent
//   <tp>]` (no traceparent field when it is empty) on the hub's
//   publish connection, serialized by a mutex; it waits at most
//   `publish_timeout` (connect and reply; loopback round trips are ~0.1 ms),
//   then UNAVAILABLE.
// - AppendAsync queues the XADD for the hub's one publisher thread, which
//   sends what is queued (any topic's) in pipelined batches on that same
//   connection, in queue order. At most `max_queued_publishes` wait, for all
//   the hub's topics together: past that AppendAsync fails at once with
//   UNAVAILABLE (the event never reached Redis, so a retry cannot post it
//   twice). An entry that waited longer than `publish_timeout` in the queue
//   (Redis hung) fails with UNAVAILABLE without being sent. So `done` runs
//   within about 2 x publish_timeout, on the publisher thread.
// - One reader thread runs a single `XREAD BLOCK block_time STREAMS k1 k2 ...`
//   over every live topic's stream, each from the last id its topic
//   delivered, woken with CLIENT UNBLOCK when a topic starts; when Redis
//   goes away it reconnects with backoff (50 ms doubling to
//   max_reconnect_backoff) and continues from those ids, so nothing is lost
//   or delivered twice (Redis must persist the streams: AOF).
// - One replay thread serves every topic's replays with `XRANGE key (id +
//   COUNT` and checks retention against XINFO STREAM (entries-added, length,
//   first-entry, max-deleted-entry-id) in the same MULTI/EXEC; a replay that
//   waited more than 4 x publish_timeout behind others is UNAVAILABLE.
// - Resumes read Redis only when they must: each topic keeps its latest
//   events in process (the resume window: at most resume_window_events, and
//   never more than max_len, taking at most resume_window_bytes), and a
//   resume after an id inside it is served from there, without a round
//   trip. A replay read from Redis that joins up with the window extends it
//   back (when it fits), so the next resume from the same id is served in
//   process too. Concurrent resumes of a topic from the same id share one
//   read (single-flight). 0 events or 0 bytes: no window. Topic::Stats()
//   counts both (replay_reads, replay_pages_from_window, ...).
// - The windows of all the hub's topics hold at most
//   `resume_windows_total_bytes` together (counted as resume_window_bytes
//   is), whatever the number of topics: a window that would take the total
//   past it drops its own oldest events first (never another topic's), all
//   of them if it must; resumes it then cannot serve read Redis, with the
//   same exactly-once, in-order result. 0: no windows at all. Stats():
//   window_evicted_by_total, windows_total_bytes.
// - At most `max_topics` topics are live (started, not stopped) on one hub;
//   creating one more fails with RESOURCE_EXHAUSTED.
// - Stopping a topic takes milliseconds (nothing to join; a replay of it in
//   flight is interrupted), or up to publish_timeout with an XADD of it in
//   flight to a hung Redis. The last topic's backend takes the hub's threads
//   with it, interrupting their blocked reads.
// - A Redis that refuses connections (maxclients) is UNAVAILABLE, like one
//   that is down. Creating the backend sets SIGPIPE to SIG_IGN if it is still
//   SIG_DFL (hiredis writes with write(); a closed connection must not kill
//   the process: see server/internal/ignore_sigpipe.h).
// - Log lines (reader lost / back on Redis) go through server/log.h.
// Redis 7 or later (exclusive ranges, XINFO STREAM's entries-added).
// A plain value type.
struct RedisTopicOptions {
  // The hub's address.
  std::string host = "127.0.0.1";
  int port = 6379;
  // Each topic's own.
  std::string key_prefix = "gravity:topic:";
  size_t max_len = 10000;
  // Hub options (shared by every topic of the hub: see above).
  absl::Duration publish_timeout = absl::Milliseconds(500);
  size_t max_queued_publishes = 1024;
  absl::Duration block_time = absl::Seconds(1);
  absl::Duration max_reconnect_backoff = absl::Seconds(1);
  size_t max_topics = 10000;
  // The memory bound of every resume window of the hub together (0: no
  // windows at all).
  size_t resume_windows_total_bytes = size_t{64} << 20;
  // Each topic's own resume window, within that total.
  size_t resume_window_events = 1000;
  size_t resume_window_bytes = size_t{1} << 20;
};
std::unique_ptr<TopicBackend> NewRedisTopicBackend(RedisTopicOptions options,
                                                   std::string topic_name);

}  // namespace gravity::server

#endif  // GRAVITY_SERVER_TOPIC_BACKEND_H_
