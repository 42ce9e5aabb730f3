// RedisTopicHub: the threads and Redis connections that every Redis topic of
// a process shares (one hub per Redis address and set of hub options; see
// RedisTopicOptions in server/topic_backend.h), so that a topic costs no
// thread and no connection of its own:
// - one reader thread and connection: a single `XREAD BLOCK block_time
//   STREAMS k1 k2 ... id1 id2 ...` over every live topic's stream, re-issued
//   after each reply and when a topic starts (CLIENT UNBLOCK wakes it; if
//   that wake is lost to a race, the new topic is read from its start id
//   after at most block_time: late, never lost); each entry goes to its
//   topic's listener, in log order, exactly once;
// - one publisher thread and connection: Append (synchronous, under a mutex)
//   and the bounded queue of AppendAsync, sent in pipelined batches;
// - one replay thread and connection: the history reads of every topic's
//   resuming subscribers (XRANGE + XINFO in one MULTI/EXEC), those that the
//   topic's resume window cannot serve (TopicCore; shared by the resumes
//   from one id).
// At most RedisTopicOptions::max_topics topics are live on one hub; starting
// one more is RESOURCE_EXHAUSTED. The hub also holds the budget that its
// topics' resume windows share (RedisTopicOptions::resume_windows_total_bytes;
// the windows themselves are the topics' cores').
//
// A topic is a RedisTopicHub::TopicState, owned by its backend. Stop(topic)
// guarantees that none of that topic's callbacks (live listener, publish and
// replay callbacks) runs after it returns: it waits for one in progress
// (bounded by the connections' timeouts; a replay in flight is interrupted).
//
// Thread-safety: every public method may be called from any thread. Callbacks
// run on the hub's threads and must not block, nor stop their own topic
// (Stop would wait for the callback that calls it). The hub goes when the last
// backend holding it does; its destructor joins its threads (milliseconds:
// blocked reads are interrupted).
#ifndef GRAVITY_SERVER_INTERNAL_REDIS_TOPIC_HUB_H_
#define GRAVITY_SERVER_INTERNAL_REDIS_TOPIC_HUB_H_

#include <hiredis/hiredis.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/internal/redis_connection.h"
#include "server/internal/resume_window.h"
#include "server/topic_backend.h"

namespace gravity::server::internal {

// Redis stream ids "<ms>-<seq>".
absl::StatusOr<EventPosition> ParseRedisId(absl::string_view id);
std::string FormatRedisId(EventPosition position);

class RedisTopicHub {
 public:
  // One topic's stream and state. Made by NewTopic, owned by the topic's
  // backend (and briefly by the hub's threads while they serve it).
  class TopicState {
   public:
    TopicState(std::string key, size_t max_len) : key_(std::move(key)), max_len_(max_len) {}
    const std::string& key() const { return key_; }

   private:
    friend class RedisTopicHub;
    const std::string key_;
    const size_t max_len_;

    // Held while the listener runs: Stop takes it to know that no delivery
    // is under way and none will start.
    absl::Mutex deliver_mu_;
    TopicBackend::LiveListener listener_ ABSL_GUARDED_BY(deliver_mu_);
    bool live_ ABSL_GUARDED_BY(deliver_mu_) = false;
    // The last entry delivered (or the stream's end when the topic started).
    EventPosition last_ ABSL_GUARDED_BY(deliver_mu_);
    std::string last_id_ ABSL_GUARDED_BY(deliver_mu_) = "0-0";

    // Guarded by the hub's mu_ (annotations cannot name another object's
    // mutex).
    bool registered_ = false;  // counted against max_topics, read by the reader
    bool stopped_ = false;
    int publishes_in_flight_ = 0;
  };

  // The hub for `options`' address and hub options, shared with every other
  // backend made with the same ones; made (threads started) if none is alive.
  static std::shared_ptr<RedisTopicHub> For(const RedisTopicOptions& options);

  explicit RedisTopicHub(const RedisTopicOptions& options);
  ~RedisTopicHub();
  RedisTopicHub(const RedisTopicHub&) = delete;
  RedisTopicHub& operator=(const RedisTopicHub&) = delete;

  // Counts `topic` against max_topics (RESOURCE_EXHAUSTED past it), learns
  // where its stream ends (UNAVAILABLE when Redis cannot be reached) and
  // hands every later entry to `listener` on the reader thread.
  absl::Status Start(const std::shared_ptr<TopicState>& topic, TopicBackend::LiveListener listener);
  // No callback of `topic` runs once this returns; queued publishes and
  // replays get UNAVAILABLE. Bounded (see the file comment). Idempotent.
  void Stop(const std::shared_ptr<TopicState>& topic);

  absl::StatusOr<std::string> Append(TopicState& topic, const std::string& payload,
                                     const std::string& traceparent);
  void AppendAsync(const std::shared_ptr<TopicState>& topic, const std::string& payload,
                   const std::string& traceparent, TopicBackend::AppendCallback done);
  void ReadAfter(const std::shared_ptr<TopicState>& topic, EventPosition after, size_t limit,
                 TopicBackend::PageCallback done);

  std::string address() const { return address_; }
  // What every resume window of the hub's topics charges (thread-safe).
  const std::shared_ptr<ResumeWindowBudget>& window_budget() const { return window_budget_; }

 private:
  struct QueuedPublish {
    std::shared_ptr<TopicState> topic;
    std::string payload;
    std::string traceparent;
    TopicBackend::AppendCallback done;
    absl::Time queued;
  };
  struct Replay {
    std::shared_ptr<TopicState> topic;
    EventPosition after;
    size_t limit = 0;
    TopicBackend::PageCallback done;
    absl::Time queued;
  };

  // XADDs in one pipelined round trip on the publish connection, in order.
  // One XADD of a batch: the topic, the payload, the traceparent ("" for none).
  struct BatchEntry {
    TopicState* topic;
    const std::string* payload;
    const std::string* traceparent;
  };
  std::vector<absl::StatusOr<std::string>> AppendBatch(const std::vector<BatchEntry>& entries);
  void ReadLoop();
  void PublishLoop();
  void ReplayLoop();
  // Wakes the reader out of XREAD BLOCK so that it reads a new topic too.
  void WakeReader();
  // Sleeps up to `duration`; false when the hub is stopping.
  bool SleepUnlessStopping(absl::Duration duration);
  bool Stopping();
  absl::StatusOr<TopicPage> ReadPage(const TopicState& topic, EventPosition after, size_t limit);

  const RedisTopicOptions options_;
  const std::string address_;
  const std::shared_ptr<ResumeWindowBudget> window_budget_;

  // The publish connection: Start's XREVRANGE, Append, the publisher's
  // batches and the reader's wake-ups.
  absl::Mutex publish_mu_;
  RedisConnection publish_ ABSL_GUARDED_BY(publish_mu_);
  absl::Time publish_retry_after_ ABSL_GUARDED_BY(publish_mu_) = absl::InfinitePast();
  absl::Status publish_down_ ABSL_GUARDED_BY(publish_mu_);

  // Registrations, queues, in-flight work and the stop flag; std::mutex for
  // condition_variable's timed waits.
  std::mutex mu_;
  std::condition_variable cv_;       // work for the threads, or stopping
  std::condition_variable idle_cv_;  // a publish batch or a replay finished
  bool stopping_ = false;
  size_t live_topics_ = 0;                           // registered, or being started
  std::vector<std::shared_ptr<TopicState>> topics_;  // registered
  std::deque<QueuedPublish> publishes_;
  std::deque<Replay> replays_;
  // The publisher's batch whose callbacks are running, and their results.
  std::vector<QueuedPublish>* current_batch_ = nullptr;
  std::vector<absl::StatusOr<std::string>>* current_results_ = nullptr;
  const TopicState* replaying_ = nullptr;  // the replay in flight is this topic's
  bool replay_aborted_ = false;            // ...and Stop shut its socket down

  // Owned by the reader and the replay thread; Stop may interrupt them.
  RedisConnection reader_connection_;
  RedisConnection replay_connection_;
  // The reader connection's CLIENT ID (0: unknown), for CLIENT UNBLOCK.
  std::atomic<long long> reader_client_id_{0};

  std::thread reader_;
  std::thread publisher_;
  std::thread replayer_;
};

}  // namespace gravity::server::internal

#endif  // GRAVITY_SERVER_INTERNAL_REDIS_TOPIC_HUB_H_
