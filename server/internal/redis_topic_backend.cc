// The Redis Streams TopicBackend (see RedisTopicOptions in topic_backend.h).
//
// Three connections per topic, each with one owner: the publish connection
// (Append and the publisher thread's batches for AppendAsync, under
// publish_mu_), the reader thread's (XREAD BLOCK) and the replay thread's
// (XRANGE). hiredis' synchronous API is used on all three (RedisConnection);
// every call is bounded by socket timeouts. Stop interrupts the reader's and
// the replay thread's sockets (shutdown(2)) instead of waiting out an
// XREAD BLOCK, so it returns within milliseconds, or within publish_timeout
// when an XADD is in flight to a hung Redis: a process with many topics
// exits at once (they used to take about block_time each).
#include <hiredis/hiredis.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/internal/ignore_sigpipe.h"
#include "server/internal/redis_connection.h"
#include "server/log.h"
#include "server/topic_backend.h"

namespace gravity::server {

namespace {

using internal::ErrorReplyStatus;
using internal::RedisConnection;
using Reply = internal::RedisReply;

absl::string_view Text(const redisReply* reply) { return internal::ReplyText(reply); }

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
    const redisReply* fields = entry->element[1];
    if (fields->type == REDIS_REPLY_ARRAY) {
      for (size_t f = 0; f + 1 < fields->elements; f += 2) {
        if (Text(fields->element[f]) == "payload") {
          event.payload = std::string(Text(fields->element[f + 1]));
          break;
        }
      }
    }
    events.push_back(std::move(event));
  }
  return events;
}

class RedisTopicBackend final : public TopicBackend {
 public:
  RedisTopicBackend(RedisTopicOptions options, std::string topic_name)
      : options_(std::move(options)),
        key_(options_.key_prefix + topic_name),
        publish_(options_.host, options_.port, options_.publish_timeout, options_.publish_timeout),
        // The reader's socket timeout is past the block time: a hung Redis
        // is noticed.
        reader_connection_(options_.host, options_.port, options_.publish_timeout,
                           options_.block_time + absl::Seconds(2)),
        replay_connection_(options_.host, options_.port, options_.publish_timeout,
                           options_.publish_timeout * 4) {}

  ~RedisTopicBackend() override { Stop(); }

  absl::Status Start(LiveListener listener) override {
    // "Now" is the stream's last entry when the topic starts: live
    // subscribers get what comes after it.
    std::string last_id = "0-0";
    {
      absl::MutexLock lock(&publish_mu_);
      absl::StatusOr<Reply> reply = publish_.Run({"XREVRANGE", key_, "+", "-", "COUNT", "1"});
      if (!reply.ok()) return reply.status();
      if ((*reply)->type == REDIS_REPLY_ERROR) return ErrorReplyStatus(reply->get(), "XREVRANGE");
      absl::StatusOr<std::vector<TopicEvent>> last = ParseEntries(reply->get());
      if (!last.ok()) return last.status();
      if (!last->empty()) last_id = last->back().id;
    }
    listener_ = std::move(listener);
    reader_ = std::thread([this, last_id] { ReadLoop(last_id); });
    replayer_ = std::thread([this] { ReplayLoop(); });
    return absl::OkStatus();
  }

  void Stop() override {
    {
      std::lock_guard<std::mutex> lock(stop_mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    stop_cv_.notify_all();
    // Wakes the reader out of XREAD BLOCK (and a replay out of its round
    // trip) now; they see stopping_ and return.
    reader_connection_.Interrupt();
    replay_connection_.Interrupt();
    if (reader_.joinable()) reader_.join();
    if (replayer_.joinable()) replayer_.join();
    // Started only under stop_mu_ and never once stopping_ is set.
    if (publisher_.joinable()) publisher_.join();
  }

  absl::StatusOr<std::string> Append(const std::string& payload) override {
    std::vector<absl::StatusOr<std::string>> ids = AppendBatch({&payload});
    return std::move(ids.front());
  }

  void AppendAsync(const std::string& payload, AppendCallback done) override {
    absl::Status refused;
    {
      std::lock_guard<std::mutex> lock(stop_mu_);
      if (stopping_) {
        refused = absl::UnavailableError("the topic is stopped");
      } else if (publishes_.size() >= std::max<size_t>(options_.max_queued_publishes, 1)) {
        // Fail fast rather than queue without bound behind a slow Redis.
        refused = absl::UnavailableError(absl::StrCat(
            "redis ", options_.host, ":", options_.port, ": ", publishes_.size(), " publishes of ",
            key_, " are already waiting (Redis is slow or hung); not sent"));
      } else {
        publishes_.push_back(QueuedPublish{payload, std::move(done), absl::Now()});
        if (!publisher_.joinable()) publisher_ = std::thread([this] { PublishLoop(); });
        stop_cv_.notify_all();
        return;
      }
    }
    done(refused);
  }

  void ReadAfter(const std::string& /*after_id*/, EventPosition after, size_t limit,
                 PageCallback done) override {
    {
      std::lock_guard<std::mutex> lock(stop_mu_);
      if (!stopping_) {
        replays_.push_back(Replay{after, limit, std::move(done)});
        stop_cv_.notify_all();
        return;
      }
    }
    done(absl::UnavailableError("the topic is stopped"));
  }

  absl::StatusOr<EventPosition> ParseId(absl::string_view id) const override {
    return ParseRedisId(id);
  }
  bool integer_ids() const override { return false; }
  std::string Describe() const override {
    return absl::StrCat("redis ", options_.host, ":", options_.port, " key ", key_);
  }

 private:
  struct Replay {
    EventPosition after;
    size_t limit;
    PageCallback done;
  };
  struct QueuedPublish {
    std::string payload;
    AppendCallback done;
    absl::Time queued;
  };

  // Sleeps up to `duration`; false when stopping.
  bool SleepUnlessStopping(absl::Duration duration) {
    std::unique_lock<std::mutex> lock(stop_mu_);
    stop_cv_.wait_for(lock, absl::ToChronoMilliseconds(duration), [this] { return stopping_; });
    return !stopping_;
  }

  bool Stopping() {
    std::lock_guard<std::mutex> lock(stop_mu_);
    return stopping_;
  }

  // XADDs `payloads` in one pipelined round trip on the publish connection,
  // in order; one result each.
  std::vector<absl::StatusOr<std::string>> AppendBatch(
      const std::vector<const std::string*>& payloads) {
    absl::MutexLock lock(&publish_mu_);
    // After a failure, fail fast for a moment: with Redis hung, publishers
    // must not queue up behind one timeout after another.
    if (absl::Now() < publish_retry_after_) {
      return std::vector<absl::StatusOr<std::string>>(payloads.size(), publish_down_);
    }
    std::vector<std::vector<std::string>> commands;
    commands.reserve(payloads.size());
    for (const std::string* payload : payloads) {
      commands.push_back(
          {"XADD", key_, "MAXLEN", "~", absl::StrCat(options_.max_len), "*", "payload", *payload});
    }
    absl::StatusOr<std::vector<Reply>> replies = publish_.Run(commands);
    std::vector<absl::StatusOr<std::string>> ids;
    ids.reserve(payloads.size());
    absl::Status unavailable;
    for (size_t i = 0; i < payloads.size(); ++i) {
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

  // The publisher thread: sends what AppendAsync queued, up to
  // kMaxPublishBatch per round trip; an entry that waited in the queue past
  // publish_timeout fails without being sent.
  void PublishLoop() {
    constexpr size_t kMaxPublishBatch = 64;
    for (;;) {
      std::vector<QueuedPublish> batch;
      {
        std::unique_lock<std::mutex> lock(stop_mu_);
        stop_cv_.wait(lock, [this] { return stopping_ || !publishes_.empty(); });
        if (stopping_) break;
        while (!publishes_.empty() && batch.size() < kMaxPublishBatch) {
          batch.push_back(std::move(publishes_.front()));
          publishes_.pop_front();
        }
      }
      const absl::Time now = absl::Now();
      std::vector<const std::string*> payloads;
      std::vector<QueuedPublish*> sent;
      for (QueuedPublish& publish : batch) {
        if (now - publish.queued > options_.publish_timeout) {
          publish.done(absl::UnavailableError(
              absl::StrCat("redis ", options_.host, ":", options_.port, ": a publish of ", key_,
                           " waited more than ", absl::FormatDuration(options_.publish_timeout),
                           " in the queue (Redis is slow or hung); not sent")));
        } else {
          payloads.push_back(&publish.payload);
          sent.push_back(&publish);
        }
      }
      if (payloads.empty()) continue;
      std::vector<absl::StatusOr<std::string>> ids = AppendBatch(payloads);
      for (size_t i = 0; i < sent.size(); ++i) sent[i]->done(std::move(ids[i]));
    }
    std::deque<QueuedPublish> left;
    {
      std::lock_guard<std::mutex> lock(stop_mu_);
      left.swap(publishes_);
    }
    for (QueuedPublish& publish : left) {
      publish.done(absl::UnavailableError("the topic is stopped; not sent"));
    }
  }

  void ReadLoop(std::string last_id) {
    RedisConnection& connection = reader_connection_;
    const std::string block_ms = absl::StrCat(absl::ToInt64Milliseconds(options_.block_time));
    const absl::Duration first_backoff = absl::Milliseconds(50);
    absl::Duration backoff = first_backoff;
    bool down = false;
    while (!Stopping()) {
      absl::StatusOr<Reply> reply =
          connection.Run({"XREAD", "COUNT", "1000", "BLOCK", block_ms, "STREAMS", key_, last_id});
      absl::Status failure;
      if (!reply.ok()) {
        failure = reply.status();
      } else if ((*reply)->type == REDIS_REPLY_ERROR) {
        failure = ErrorReplyStatus(reply->get(), "XREAD");
      }
      if (!failure.ok()) {
        if (Stopping()) break;  // interrupted by Stop: not an outage
        if (!down) {
          Log(LogSeverity::kWarning,
              absl::StrCat("topic ", key_, ": reader lost Redis (", failure.message(),
                           "); reconnecting, will continue after ", last_id));
        }
        down = true;
        if (!SleepUnlessStopping(backoff)) break;
        backoff = std::min(backoff * 2, options_.max_reconnect_backoff);
        continue;
      }
      if (down) {
        Log(LogSeverity::kInfo,
            absl::StrCat("topic ", key_, ": reader back on Redis, continuing after ", last_id));
        down = false;
      }
      backoff = first_backoff;
      const redisReply* streams = reply->get();
      if (streams->type != REDIS_REPLY_ARRAY || streams->elements == 0) continue;  // timed out
      const redisReply* stream = streams->element[0];
      if (stream->type != REDIS_REPLY_ARRAY || stream->elements != 2) continue;
      absl::StatusOr<std::vector<TopicEvent>> events = ParseEntries(stream->element[1]);
      if (!events.ok()) {
        Log(LogSeverity::kError, absl::StrCat("topic ", key_, ": ", events.status().message()));
        SleepUnlessStopping(backoff);
        continue;
      }
      if (events->empty()) continue;
      last_id = events->back().id;
      listener_(std::move(*events));
    }
  }

  void ReplayLoop() {
    RedisConnection& connection = replay_connection_;
    for (;;) {
      Replay replay;
      {
        std::unique_lock<std::mutex> lock(stop_mu_);
        stop_cv_.wait(lock, [this] { return stopping_ || !replays_.empty(); });
        if (stopping_) break;
        replay = std::move(replays_.front());
        replays_.pop_front();
      }
      replay.done(ReadPage(connection, replay.after, replay.limit));
    }
    std::deque<Replay> left;
    {
      std::lock_guard<std::mutex> lock(stop_mu_);
      left.swap(replays_);
    }
    for (Replay& replay : left) replay.done(absl::UnavailableError("the topic is stopped"));
  }

  absl::StatusOr<TopicPage> ReadPage(RedisConnection& connection, EventPosition after,
                                     size_t limit) {
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
        {"XRANGE", key_, range_start, "+", "COUNT", absl::StrCat(limit)},
        {"XINFO", "STREAM", key_},
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
      return absl::OutOfRangeError(absl::StrCat(gone, "the Redis stream ", key_,
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
      } else if (value->type == REDIS_REPLY_ARRAY && name == "first-entry" &&
                 value->elements == 2 && value->element[0]->type == REDIS_REPLY_STRING) {
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
          absl::StrCat(gone, "the Redis stream ", key_, " keeps about ", options_.max_len,
                       " events (MAXLEN ~) and now starts at ", FormatRedisId(kept_from), again));
    }
    if (last_generated < after) {
      return absl::OutOfRangeError(absl::StrCat(gone, "the Redis stream ", key_, " ends at ",
                                                FormatRedisId(last_generated),
                                                " (Redis lost its data?)", again));
    }
    absl::StatusOr<std::vector<TopicEvent>> events = ParseEntries(range);
    if (!events.ok()) return events.status();
    events->erase(
        std::remove_if(events->begin(), events->end(),
                       [&](const TopicEvent& event) { return !(event.position > after); }),
        events->end());
    TopicPage page;
    page.at_end = events->size() < limit;
    page.events = std::move(*events);
    return page;
  }

  const RedisTopicOptions options_;
  const std::string key_;
  LiveListener listener_;  // set in Start, before the reader starts

  absl::Mutex publish_mu_;
  RedisConnection publish_ ABSL_GUARDED_BY(publish_mu_);
  absl::Time publish_retry_after_ ABSL_GUARDED_BY(publish_mu_) = absl::InfinitePast();
  absl::Status publish_down_ ABSL_GUARDED_BY(publish_mu_);

  // Stop flag, the replay queue and the publish queue; std::mutex for
  // condition_variable's timed wait.
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::deque<Replay> replays_;
  std::deque<QueuedPublish> publishes_;

  // Owned by the reader and the replay thread; Stop may Interrupt them.
  RedisConnection reader_connection_;
  RedisConnection replay_connection_;

  std::thread reader_;
  std::thread replayer_;
  std::thread publisher_;  // started by the first AppendAsync
};

}  // namespace

std::unique_ptr<TopicBackend> NewRedisTopicBackend(RedisTopicOptions options,
                                                   std::string topic_name) {
  // hiredis writes with write(): a Redis that closes a connection must not
  // kill the process with SIGPIPE (see ignore_sigpipe.h).
  internal::IgnoreSigpipe();
  return std::make_unique<RedisTopicBackend>(std::move(options), std::move(topic_name));
}

}  // namespace gravity::server
