#include "server/internal/redis_topic_hub.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <unordered_map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "server/log.h"

namespace gravity::server::internal {

namespace {

using Reply = RedisReply;

absl::string_view Text(const redisReply* reply) { return ReplyText(reply); }

// Entries of an XRANGE / XREAD reply: [[id, [field, value, ...]], ...].
absl::StatusOr<std::vector<TopicEvent>> ParseEntries(const redisReply* entries) {
  std::vector<TopicEvent> events;
  if (entries == nullptr || entries->type == REDIS_REPLY_NIL) return events;
  if (entries->type != REDIS_REPLY_ARRAY) return absl::InternalError("redis: unexpected entries");
  for (size_t i = 0; i < entries->elements; ++i) {
    const redisReply* entry = entries->element[i];
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING) {
      return absl::InternalError("redis: unexpected stream entry");
    }
    TopicEvent event;
    event.id = std::string(Text(entry->element[0]));
    absl::StatusOr<EventPosition> position = ParseRedisId(event.id);
    if (!position.ok()) return absl::InternalError("redis: unexpected stream id");
    event.position = *position;
    // Fields: payload, and traceparent when the publisher had one (entries
    // written without it, e.g. by older versions, leave it empty).
    const redisReply* fields = entry->element[1];
    if (fields->type == REDIS_REPLY_ARRAY) {
      for (size_t f = 0; f + 1 < fields->elements; f += 2) {
        const absl::string_view name = Text(fields->element[f]);
        if (name == "payload") {
          event.payload = std::string(Text(fields->element[f + 1]));
        } else if (name == "traceparent") {
          event.traceparent = std::string(Text(fields->element[f + 1]));
        }
      }
    }
    events.push_back(std::move(event));
  }
  return events;
}

absl::Status StoppedError() { return absl::UnavailableError("the topic is stopped"); }

}  // namespace

absl::StatusOr<EventPosition> ParseRedisId(absl::string_view id) {
  std::vector<absl::string_view> parts = absl::StrSplit(id, absl::MaxSplits('-', 1));
  EventPosition position;
  auto digits = [](absl::string_view s) {
    return !s.empty() && s.size() <= 20 && std::all_of(s.begin(), s.end(), absl::ascii_isdigit);
  };
  if (parts.size() != 2 || !digits(parts[0]) || !digits(parts[1]) ||
      !absl::SimpleAtoi(parts[0], &position.major) ||
      !absl::SimpleAtoi(parts[1], &position.minor)) {
    return absl::InvalidArgumentError(
        "Redis stream ids have the form <milliseconds>-<sequence>, e.g. 1733140000000-0");
  }
  return position;
}

std::string FormatRedisId(EventPosition position) {
  return absl::StrCat(position.major, "-", position.minor);
}

std::shared_ptr<RedisTopicHub> RedisTopicHub::For(const RedisTopicOptions& options) {
  // Process-wide, so that every topic made with the same address and hub
  // options shares one set of threads and connections whatever code made
  // it. Weak: a hub goes (threads joined, connections closed) with its last
  // backend. Leaked on purpose: hubs may outlive static destruction.
  static absl::Mutex* const mu = new absl::Mutex;
  static auto* const hubs = new std::map<std::string, std::weak_ptr<RedisTopicHub>>;
  const std::string key = absl::StrCat(
      options.host, ":", options.port, "/", absl::FormatDuration(options.publish_timeout), "/",
      absl::FormatDuration(options.block_time), "/",
      absl::FormatDuration(options.max_reconnect_backoff), "/", options.max_queued_publishes, "/",
      options.max_topics, "/", options.resume_windows_total_bytes);
  absl::MutexLock lock(mu);
  if (std::shared_ptr<RedisTopicHub> hub = (*hubs)[key].lock()) return hub;
  for (auto it = hubs->begin(); it != hubs->end();) {
    it = it->second.expired() ? hubs->erase(it) : std::next(it);
  }
  auto hub = std::make_shared<RedisTopicHub>(options);
  (*hubs)[key] = hub;
  return hub;
}

RedisTopicHub::RedisTopicHub(const RedisTopicOptions& options)
    : options_(options),
      address_(absl::StrCat(options.host, ":", options.port)),
      window_budget_(std::make_shared<ResumeWindowBudget>(options.resume_windows_total_bytes)),
      publish_(options.host, options.port, options.publish_timeout, options.publish_timeout),
      // The reader's socket timeout is past the block time: a hung Redis is
      // noticed.
      reader_connection_(options.host, options.port, options.publish_timeout,
                         options.block_time + absl::Seconds(2)),
      replay_connection_(options.host, options.port, options.publish_timeout,
                         options.publish_timeout * 4) {
  reader_ = std::thread([this] { ReadLoop(); });
  publisher_ = std::thread([this] { PublishLoop(); });
  replayer_ = std::thread([this] { ReplayLoop(); });
}

RedisTopicHub::~RedisTopicHub() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  // Wakes the reader out of XREAD BLOCK (and a replay out of its round trip)
  // now instead of waiting them out.
  reader_connection_.Interrupt();
  replay_connection_.Interrupt();
  reader_.join();
  publisher_.join();
  replayer_.join();
}

bool RedisTopicHub::Stopping() {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

bool RedisTopicHub::SleepUnlessStopping(absl::Duration duration) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, absl::ToChronoMilliseconds(duration), [this] { return stopping_; });
  return !stopping_;
}

absl::Status RedisTopicHub::Start(const std::shared_ptr<TopicState>& topic,
                                  TopicBackend::LiveListener listener) {
  {
    // Counted before the round trip, so that concurrent starts cannot pass
    // the bound together.
    std::lock_guard<std::mutex> lock(mu_);
    if (topic->stopped_ || topic->registered_) {
      return absl::FailedPreconditionError("the topic was started or stopped already");
    }
    if (live_topics_ >= std::max<size_t>(options_.max_topics, 1)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "redis ", address_, ": ", live_topics_,
          " topics are live in this process, its limit (RedisTopicOptions::max_topics); stop "
          "idle topics or raise the limit"));
    }
    ++live_topics_;
    topic->registered_ = true;
  }
  auto release = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    // A concurrent Stop gave the slot back already.
    if (topic->registered_) --live_topics_;
    topic->registered_ = false;
  };
  // "Now" is the stream's last entry when the topic starts: live
  // subscribers get what comes after it.
  EventPosition last;
  std::string last_id = "0-0";
  {
    absl::MutexLock lock(&publish_mu_);
    // Like publishes, fail fast for a moment after a failure: with Redis
    // hung, topic creations must not queue up behind one timeout after
    // another.
    if (absl::Now() < publish_retry_after_) {
      release();
      return publish_down_;
    }
    absl::StatusOr<Reply> reply = publish_.Run({"XREVRANGE", topic->key_, "+", "-", "COUNT", "1"});
    absl::Status failed;
    if (!reply.ok()) {
      failed = reply.status();
    } else if ((*reply)->type == REDIS_REPLY_ERROR) {
      failed = ErrorReplyStatus(reply->get(), "XREVRANGE");
    } else {
      absl::StatusOr<std::vector<TopicEvent>> entries = ParseEntries(reply->get());
      if (!entries.ok()) {
        failed = entries.status();
      } else if (!entries->empty()) {
        last = entries->back().position;
        last_id = entries->back().id;
      }
    }
    if (!failed.ok()) {
      if (failed.code() == absl::StatusCode::kUnavailable) {
        publish_down_ = failed;
        publish_retry_after_ = absl::Now() + absl::Milliseconds(100);
      }
      release();
      return failed;
    }
  }
  {
    absl::MutexLock lock(&topic->deliver_mu_);
    topic->listener_ = std::move(listener);
    topic->last_ = last;
    topic->last_id_ = last_id;
    topic->live_ = true;
  }
  bool added = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!topic->stopped_) {  // a concurrent Stop wins
      topics_.push_back(topic);
      added = true;
    }
  }
  if (!added) {
    // Stopped meanwhile: keep nothing of the listener.
    absl::MutexLock lock(&topic->deliver_mu_);
    topic->live_ = false;
    topic->listener_ = nullptr;
  }
  if (added) {
    cv_.notify_all();  // a reader with no topic waits for one
    WakeReader();
  }
  return absl::OkStatus();
}

void RedisTopicHub::WakeReader() {
  const long long id = reader_client_id_.load(std::memory_order_acquire);
  if (id == 0) return;
  absl::MutexLock lock(&publish_mu_);
  if (absl::Now() < publish_retry_after_) return;
  // Best effort: if the reader was not blocked yet (its XREAD still on the
  // way), it blocks without the new topic for at most block_time.
  (void)publish_.Run({"CLIENT", "UNBLOCK", absl::StrCat(id)});
}

void RedisTopicHub::Stop(const std::shared_ptr<TopicState>& topic) {
  {
    // Waits for a delivery under way; none starts after this.
    absl::MutexLock lock(&topic->deliver_mu_);
    topic->live_ = false;
    topic->listener_ = nullptr;
  }
  std::deque<QueuedPublish> publishes;
  std::deque<Replay> replays;
  std::vector<std::pair<TopicBackend::AppendCallback, absl::StatusOr<std::string>>> finished;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (topic->stopped_) return;
    topic->stopped_ = true;
    if (topic->registered_) {
      topic->registered_ = false;
      --live_topics_;
      topics_.erase(std::remove(topics_.begin(), topics_.end(), topic), topics_.end());
    }
    for (auto it = publishes_.begin(); it != publishes_.end();) {
      if (it->topic == topic) {
        publishes.push_back(std::move(*it));
        it = publishes_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = replays_.begin(); it != replays_.end();) {
      if (it->topic == topic) {
        replays.push_back(std::move(*it));
        it = replays_.erase(it);
      } else {
        ++it;
      }
    }
    // A replay of this topic in flight is cut short (its socket shut down;
    // the replay thread reconnects for the next one); a publish batch in
    // flight is waited for, bounded by publish_timeout.
    const std::thread::id self = std::this_thread::get_id();
    const bool on_publisher = self == publisher_.get_id();
    const bool on_replayer = self == replayer_.get_id();
    if (replaying_ == topic.get() && !on_replayer) {
      replay_aborted_ = true;
      replay_connection_.Abort();
    }
    // Called from a callback on the publisher thread (another topic's
    // publish done, say): this topic's callbacks left in the batch run here,
    // before Stop returns, since waiting for them would wait for ourselves.
    if (on_publisher && current_batch_ != nullptr) {
      for (size_t i = 0; i < current_batch_->size(); ++i) {
        QueuedPublish& publish = (*current_batch_)[i];
        if (publish.topic != topic || publish.done == nullptr) continue;
        finished.emplace_back(std::move(publish.done), std::move((*current_results_)[i]));
        publish.done = nullptr;
        --topic->publishes_in_flight_;
      }
    }
    // The callback calling Stop from a hub thread is not waited for.
    while ((topic->publishes_in_flight_ > 0 && !on_publisher) ||
           (replaying_ == topic.get() && !on_replayer)) {
      idle_cv_.wait_for(lock, std::chrono::milliseconds(100));
    }
  }
  for (auto& [done, result] : finished) done(std::move(result));
  for (QueuedPublish& publish : publishes) {
    publish.done(absl::UnavailableError("the topic is stopped; not sent"));
  }
  for (Replay& replay : replays) replay.done(StoppedError());
}

std::vector<absl::StatusOr<std::string>> RedisTopicHub::AppendBatch(
    const std::vector<BatchEntry>& entries) {
  absl::MutexLock lock(&publish_mu_);
  // After a failure, fail fast for a moment: with Redis hung, publishers
  // must not queue up behind one timeout after another.
  if (absl::Now() < publish_retry_after_) {
    return std::vector<absl::StatusOr<std::string>>(entries.size(), publish_down_);
  }
  std::vector<std::vector<std::string>> commands;
  commands.reserve(entries.size());
  for (const BatchEntry& entry : entries) {
    commands.push_back({"XADD", entry.topic->key_, "MAXLEN", "~",
                        absl::StrCat(entry.topic->max_len_), "*", "payload", *entry.payload});
    // The publisher's trace context, visible with XRANGE: a post can be
    // followed to its deliveries.
    if (!entry.traceparent->empty()) {
      commands.back().push_back("traceparent");
      commands.back().push_back(*entry.traceparent);
    }
  }
  absl::StatusOr<std::vector<Reply>> replies = publish_.Run(commands);
  std::vector<absl::StatusOr<std::string>> ids;
  ids.reserve(entries.size());
  absl::Status unavailable;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!replies.ok()) {
      ids.push_back(replies.status());
    } else if (const redisReply* reply = (*replies)[i].get(); reply->type == REDIS_REPLY_STRING) {
      ids.push_back(std::string(Text(reply)));
    } else {
      ids.push_back(reply->type == REDIS_REPLY_ERROR
                        ? ErrorReplyStatus(reply, "XADD")
                        : absl::InternalError("redis XADD: unexpected reply"));
    }
    if (!ids.back().ok() && ids.back().status().code() == absl::StatusCode::kUnavailable) {
      unavailable = ids.back().status();
    }
  }
  if (!unavailable.ok()) {
    publish_down_ = unavailable;
    publish_retry_after_ = absl::Now() + absl::Milliseconds(100);
  }
  return ids;
}

absl::StatusOr<std::string> RedisTopicHub::Append(TopicState& topic, const std::string& payload,
                                                  const std::string& traceparent) {
  std::vector<absl::StatusOr<std::string>> ids = AppendBatch({{&topic, &payload, &traceparent}});
  return std::move(ids.front());
}

void RedisTopicHub::AppendAsync(const std::shared_ptr<TopicState>& topic,
                                const std::string& payload, const std::string& traceparent,
                                TopicBackend::AppendCallback done) {
  absl::Status refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (topic->stopped_ || stopping_) {
      refused = StoppedError();
    } else if (publishes_.size() >= std::max<size_t>(options_.max_queued_publishes, 1)) {
      // Fail fast rather than queue without bound behind a slow Redis. The
      // bound is the hub's (the process'), not a topic's: it bounds memory.
      refused = absl::UnavailableError(absl::StrCat(
          "redis ", address_, ": ", publishes_.size(),
          " publishes are already waiting (Redis is slow or hung); ", topic->key_, " not sent"));
    } else {
      publishes_.push_back(
          QueuedPublish{topic, payload, traceparent, std::move(done), absl::Now()});
    }
  }
  if (!refused.ok()) {
    done(refused);
    return;
  }
  cv_.notify_all();
}

void RedisTopicHub::ReadAfter(const std::shared_ptr<TopicState>& topic, EventPosition after,
                              size_t limit, TopicBackend::PageCallback done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!topic->stopped_ && !stopping_) {
      replays_.push_back(Replay{topic, after, limit, std::move(done), absl::Now()});
      cv_.notify_all();
      return;
    }
  }
  done(StoppedError());
}

// The publisher thread: sends what AppendAsync queued (any topic's), up to
// kMaxPublishBatch per round trip; an entry that waited in the queue past
// publish_timeout fails without being sent.
void RedisTopicHub::PublishLoop() {
  constexpr size_t kMaxPublishBatch = 64;
  for (;;) {
    std::vector<QueuedPublish> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !publishes_.empty(); });
      if (stopping_ && publishes_.empty()) break;
      while (!publishes_.empty() && batch.size() < kMaxPublishBatch) {
        batch.push_back(std::move(publishes_.front()));
        publishes_.pop_front();
        // Its Stop waits for the callback.
        ++batch.back().topic->publishes_in_flight_;
      }
    }
    const absl::Time now = absl::Now();
    std::vector<absl::StatusOr<std::string>> results(batch.size());
    std::vector<BatchEntry> entries;
    std::vector<size_t> sent;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (now - batch[i].queued > options_.publish_timeout) {
        results[i] = absl::UnavailableError(
            absl::StrCat("redis ", address_, ": a publish of ", batch[i].topic->key_,
                         " waited more than ", absl::FormatDuration(options_.publish_timeout),
                         " in the queue (Redis is slow or hung); not sent"));
      } else {
        entries.push_back({batch[i].topic.get(), &batch[i].payload, &batch[i].traceparent});
        sent.push_back(i);
      }
    }
    if (!entries.empty()) {
      std::vector<absl::StatusOr<std::string>> ids = AppendBatch(entries);
      for (size_t i = 0; i < sent.size(); ++i) results[sent[i]] = std::move(ids[i]);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      current_batch_ = &batch;
      current_results_ = &results;
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      TopicBackend::AppendCallback done;
      {
        // A callback that stopped another topic of this batch ran that
        // topic's callbacks already (see Stop).
        std::lock_guard<std::mutex> lock(mu_);
        if (batch[i].done == nullptr) continue;
        done = std::move(batch[i].done);
        batch[i].done = nullptr;
      }
      done(std::move(results[i]));
      {
        std::lock_guard<std::mutex> lock(mu_);
        --batch[i].topic->publishes_in_flight_;
      }
      idle_cv_.notify_all();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      current_batch_ = nullptr;
      current_results_ = nullptr;
    }
  }
}

void RedisTopicHub::ReplayLoop() {
  const absl::Duration max_wait = options_.publish_timeout * 4;
  for (;;) {
    Replay replay;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !replays_.empty(); });
      if (stopping_ && replays_.empty()) break;
      replay = std::move(replays_.front());
      replays_.pop_front();
      replaying_ = replay.topic.get();
      replay_aborted_ = false;
    }
    absl::StatusOr<TopicPage> page;
    if (absl::Now() - replay.queued > max_wait) {
      // Behind other topics' replays to a hung Redis: every wait is bounded.
      page = absl::UnavailableError(absl::StrCat(
          "redis ", address_, ": a replay of ", replay.topic->key_, " waited more than ",
          absl::FormatDuration(max_wait), " (Redis is slow or hung)"));
    } else {
      page = ReadPage(*replay.topic, replay.after, replay.limit);
    }
    bool aborted = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      aborted = replay_aborted_;
    }
    // Stop shut the socket down under this replay: unusable for the next.
    if (aborted) replay_connection_.Reset();
    if (aborted && page.ok()) page = StoppedError();
    replay.done(std::move(page));
    bool aborted_late = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // A Stop during `done` shut the socket down too: never reuse it.
      aborted_late = replay_aborted_ && !aborted;
      replaying_ = nullptr;
      replay_aborted_ = false;
    }
    if (aborted_late) replay_connection_.Reset();
    idle_cv_.notify_all();
  }
}

void RedisTopicHub::ReadLoop() {
  RedisConnection& connection = reader_connection_;
  const std::string block_ms = absl::StrCat(absl::ToInt64Milliseconds(options_.block_time));
  const absl::Duration first_backoff = absl::Milliseconds(50);
  absl::Duration backoff = first_backoff;
  bool down = false;
  auto lost = [&](const absl::Status& failure) {
    reader_client_id_.store(0, std::memory_order_release);
    // Also after an error reply (LOADING, BUSY, ...): the next connection
    // asks for its CLIENT ID again, so wake-ups work once Redis does.
    connection.Reset();
    if (!down) {
      Log(LogSeverity::kWarning,
          absl::StrCat("redis ", address_, ": topic reader lost Redis (", failure.message(),
                       "); reconnecting, every topic will continue after its last event"));
    }
    down = true;
    const bool go_on = SleepUnlessStopping(backoff);
    backoff = std::min(backoff * 2, options_.max_reconnect_backoff);
    return go_on;
  };
  // Keys that hold something other than a stream, left out of the XREAD for
  // a while: one would fail the read of every topic (WRONGTYPE).
  std::map<std::string, absl::Time> quarantined;
  for (;;) {
    std::vector<std::shared_ptr<TopicState>> topics;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // With no topic there is nothing to read: wait for one (Start
      // notifies), in bounded steps.
      cv_.wait_for(lock, absl::ToChronoMilliseconds(options_.block_time),
                   [this] { return stopping_ || !topics_.empty(); });
      if (stopping_) return;
      topics = topics_;
    }
    if (topics.empty()) {
      // Nothing to read: Redis gets its client back until a topic starts.
      reader_client_id_.store(0, std::memory_order_release);
      connection.Reset();
      continue;
    }
    // Each stream once, from the earliest position any of its topics (two
    // Topic objects may share a key) has delivered; each topic then skips
    // what it had.
    std::map<std::string, std::pair<EventPosition, std::string>> from;
    std::unordered_map<std::string, std::vector<TopicState*>> by_key;
    const absl::Time now = absl::Now();
    for (const std::shared_ptr<TopicState>& topic : topics) {
      if (auto bad = quarantined.find(topic->key_); bad != quarantined.end()) {
        if (now < bad->second) continue;
        quarantined.erase(bad);
      }
      absl::MutexLock lock(&topic->deliver_mu_);
      if (!topic->live_) continue;
      by_key[topic->key_].push_back(topic.get());
      auto [it, inserted] =
          from.emplace(topic->key_, std::make_pair(topic->last_, topic->last_id_));
      if (!inserted && topic->last_ < it->second.first) {
        it->second = std::make_pair(topic->last_, topic->last_id_);
      }
    }
    if (from.empty()) {
      // Every key left out for now: wait instead of spinning on the lock.
      if (!SleepUnlessStopping(options_.block_time)) return;
      continue;
    }
    if (!connection.connected()) {
      // A new connection has a new id, which CLIENT UNBLOCK needs. An error
      // reply (an ACL without CLIENT) only means no wake-ups: a new topic is
      // then read after at most block_time.
      absl::StatusOr<Reply> id = connection.Run(std::vector<std::string>{"CLIENT", "ID"});
      if (!id.ok()) {
        if (Stopping() || !lost(id.status())) return;  // Stopping: interrupted, not an outage
        continue;
      }
      if ((*id)->type == REDIS_REPLY_INTEGER) {
        reader_client_id_.store((*id)->integer, std::memory_order_release);
      }
    }
    std::vector<std::string> command = {"XREAD", "COUNT", "1000", "BLOCK", block_ms, "STREAMS"};
    command.reserve(command.size() + 2 * from.size());
    for (const auto& [key, position] : from) command.push_back(key);
    for (const auto& [key, position] : from) command.push_back(position.second);
    absl::StatusOr<Reply> reply = connection.Run(command);
    absl::Status failure;
    if (!reply.ok()) {
      failure = reply.status();
    } else if ((*reply)->type == REDIS_REPLY_ERROR) {
      failure = ErrorReplyStatus(reply->get(), "XREAD");
    }
    if (!failure.ok() && failure.code() != absl::StatusCode::kUnavailable) {
      // Redis answered, but not with streams: find the keys to blame.
      std::vector<std::vector<std::string>> types;
      for (const auto& [key, position] : from) types.push_back({"TYPE", key});
      absl::StatusOr<std::vector<Reply>> replies = connection.Run(types);
      size_t blamed = 0;
      for (size_t i = 0; replies.ok() && i < replies->size(); ++i) {
        const absl::string_view type = Text((*replies)[i].get());
        if (type == "stream" || type == "none") continue;
        const std::string& key = types[i][1];
        quarantined[key] = absl::Now() + absl::Seconds(10);
        ++blamed;
        Log(LogSeverity::kError, absl::StrCat("redis ", address_, ": key ", key, " is a ", type,
                                              ", not a stream; its topic gets no live events "
                                              "(checked again in 10 s)"));
      }
      if (blamed > 0) continue;
    }
    if (!failure.ok()) {
      if (Stopping() || !lost(failure)) return;  // Stopping: interrupted, not an outage
      continue;
    }
    if (down) {
      Log(LogSeverity::kInfo,
          absl::StrCat("redis ", address_,
                       ": topic reader back on Redis, every topic continues after its last event"));
      down = false;
    }
    backoff = first_backoff;
    const redisReply* streams = reply->get();
    // Nil: timed out, or woken by a new topic.
    if (streams->type != REDIS_REPLY_ARRAY) continue;
    for (size_t s = 0; s < streams->elements; ++s) {
      const redisReply* stream = streams->element[s];
      if (stream->type != REDIS_REPLY_ARRAY || stream->elements != 2) continue;
      const std::string key(Text(stream->element[0]));
      absl::StatusOr<std::vector<TopicEvent>> events = ParseEntries(stream->element[1]);
      if (!events.ok()) {
        Log(LogSeverity::kError, absl::StrCat("topic ", key, ": ", events.status().message()));
        continue;
      }
      auto found = by_key.find(key);
      if (events->empty() || found == by_key.end()) continue;
      for (TopicState* topic : found->second) {
        absl::MutexLock lock(&topic->deliver_mu_);
        if (!topic->live_) continue;  // stopped meanwhile
        std::vector<TopicEvent> fresh;
        for (const TopicEvent& event : *events) {
          if (event.position > topic->last_) fresh.push_back(event);
        }
        if (fresh.empty()) continue;
        topic->last_ = fresh.back().position;
        topic->last_id_ = fresh.back().id;
        // Under deliver_mu_: Stop waits for it, and in log order per topic.
        topic->listener_(std::move(fresh));
      }
    }
  }
}

absl::StatusOr<TopicPage> RedisTopicHub::ReadPage(const TopicState& topic, EventPosition after,
                                                  size_t limit) {
  RedisConnection& connection = replay_connection_;
  const std::string& key = topic.key_;
  const std::string after_id = FormatRedisId(after);
  // Redis refuses an exclusive start at the largest id ("(18446744073709551615-
  // 18446744073709551615": "invalid start ID"); nothing can follow it, so ask
  // for the range that starts there ("+": at most an entry with that very id,
  // dropped below) and let the retention checks answer OUT_OF_RANGE as for
  // any id past the end of the log.
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  const bool after_last_possible = after.major == kMax && after.minor == kMax;
  const std::string range_start = after_last_possible ? "+" : "(" + after_id;
  // One transaction: the range and the retention facts describe the same
  // moment, so a trim cannot slip between them.
  absl::StatusOr<std::vector<Reply>> replies = connection.Run({
      {"MULTI"},
      {"XRANGE", key, range_start, "+", "COUNT", absl::StrCat(limit)},
      {"XINFO", "STREAM", key},
      {"EXEC"},
  });
  if (!replies.ok()) return replies.status();
  const redisReply* exec = (*replies)[3].get();
  if (exec->type == REDIS_REPLY_ERROR) return ErrorReplyStatus(exec, "EXEC");
  if (exec->type != REDIS_REPLY_ARRAY || exec->elements != 2) {
    return absl::InternalError("redis EXEC: unexpected reply");
  }
  const redisReply* range = exec->element[0];
  const redisReply* info = exec->element[1];
  if (range->type == REDIS_REPLY_ERROR) return ErrorReplyStatus(range, "XRANGE");
  const std::string gone = absl::StrCat("the history after event ", after_id, " is gone: ");
  const std::string again = "; subscribe again without an id";
  if (info->type == REDIS_REPLY_ERROR) {
    if (!absl::StrContains(Text(info), "no such key")) return ErrorReplyStatus(info, "XINFO");
    if (after == EventPosition{}) return TopicPage{{}, true};
    return absl::OutOfRangeError(absl::StrCat(gone, "the Redis stream ", key,
                                              " does not exist (Redis lost its data?)", again));
  }
  // Redis 7.0 counts trimmed entries (entries-added - length) but records
  // only XDEL's in max-deleted-entry-id. Trimming removes the oldest, all
  // before first-entry: a resume point before first-entry may have missed
  // some (it is refused even when it is exactly the last trimmed entry,
  // which cannot be told apart).
  EventPosition last_generated, max_deleted, first_entry;
  bool has_first_entry = false;
  long long length = 0, entries_added = 0;
  for (size_t i = 0; info->type == REDIS_REPLY_ARRAY && i + 1 < info->elements; i += 2) {
    const absl::string_view name = Text(info->element[i]);
    const redisReply* value = info->element[i + 1];
    if (value->type == REDIS_REPLY_INTEGER) {
      if (name == "length") length = value->integer;
      if (name == "entries-added") entries_added = value->integer;
    } else if (value->type == REDIS_REPLY_STRING) {
      if (name == "last-generated-id") {
        last_generated = ParseRedisId(Text(value)).value_or(EventPosition{});
      } else if (name == "max-deleted-entry-id") {
        max_deleted = ParseRedisId(Text(value)).value_or(EventPosition{});
      }
    } else if (value->type == REDIS_REPLY_ARRAY && name == "first-entry" && value->elements == 2 &&
               value->element[0]->type == REDIS_REPLY_STRING) {
      absl::StatusOr<EventPosition> first = ParseRedisId(Text(value->element[0]));
      if (first.ok()) {
        first_entry = *first;
        has_first_entry = true;
      }
    }
  }
  const bool trimmed = entries_added > length;
  const EventPosition kept_from = has_first_entry ? first_entry : last_generated;
  if (after < max_deleted || (trimmed && after < kept_from)) {
    return absl::OutOfRangeError(
        absl::StrCat(gone, "the Redis stream ", key, " keeps about ", topic.max_len_,
                     " events (MAXLEN ~) and now starts at ", FormatRedisId(kept_from), again));
  }
  if (last_generated < after) {
    return absl::OutOfRangeError(absl::StrCat(gone, "the Redis stream ", key, " ends at ",
                                              FormatRedisId(last_generated),
                                              " (Redis lost its data?)", again));
  }
  absl::StatusOr<std::vector<TopicEvent>> events = ParseEntries(range);
  if (!events.ok()) return events.status();
  events->erase(std::remove_if(events->begin(), events->end(),
                               [&](const TopicEvent& event) { return !(event.position > after); }),
                events->end());
  TopicPage page;
  page.at_end = events->size() < limit;
  page.events = std::move(*events);
  return page;
}

}  // namespace gravity::server::internal
