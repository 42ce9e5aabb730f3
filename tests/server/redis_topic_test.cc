// Topic<T> on the Redis Streams backend against a real redis-server started
// by the test (AOF on, a temporary directory): fan-out between two Topic
// objects sharing one stream (as two processes would), replay with Redis ids,
// retention (MAXLEN ~), malformed ids, Redis restarted under live
// subscribers (nothing lost, nothing twice) and Publish while Redis is down
// (UNAVAILABLE); a Redis that closes and refuses connections (maxclients)
// while publishes and subscriptions run (never SIGPIPE, always UNAVAILABLE);
// the largest possible id (OUT_OF_RANGE); topics destroyed while their
// readers block in XREAD (at once); what many topics cost (one hub: a bounded
// number of threads and Redis connections whatever the number of topics),
// the bound on live topics, and many topics' events interleaved; the resume
// window and single-flight replay reads (Redis reads counted by the topic's
// stats and by Redis' INFO commandstats), the cap on all the windows of a
// hub together; each event's traceparent reported by OnEvent, live and
// replayed (XRANGE and the window).
#include <dirent.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "server/log.h"
#include "server/topic.h"
#include "tests/server/redis_server.h"
#include "tests/server/topic_harness.h"
#include "tests/testing/wait_for.h"

namespace gravity::server {
namespace {

using testing::ChatMessage;
using testing::ChatTopic;
using testing::RecordingObserver;
using testing::RecordingSubscriber;
using testing::RedisAdmin;
using testing::RedisServer;
using testing::TopicHarness;
using testing::WaitFor;

std::string MakeTempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string path = absl::StrCat(base != nullptr ? base : "/tmp", "/redis-XXXXXX");
  return mkdtemp(path.data()) != nullptr ? path : "";
}

class RedisTopicTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    redis_ = RedisServer::Start(dir_);
    ASSERT_NE(redis_, nullptr) << "redis-server did not start (Debian package redis-server)";
  }

  RedisTopicOptions Options() const {
    RedisTopicOptions options;
    options.port = redis_->port();
    options.block_time = absl::Milliseconds(500);
    options.max_reconnect_backoff = absl::Milliseconds(200);
    return options;
  }

  std::unique_ptr<ChatTopic> MakeTopic(const std::string& name, RedisTopicOptions options) {
    auto topic = ChatTopic::Create(name, NewRedisTopicBackend(options, name));
    EXPECT_TRUE(topic.ok()) << topic.status();
    return topic.ok() ? std::move(*topic) : nullptr;
  }
  std::unique_ptr<ChatTopic> MakeTopic(const std::string& name) {
    return MakeTopic(name, Options());
  }

  std::string dir_;
  std::unique_ptr<RedisServer> redis_;
};

// The library's log (server/log.h) is silent in these tests: the outages
// they provoke are expected; a test that checks the lines records them.
class QuietLog : public ::testing::Environment {
 public:
  void SetUp() override { SetLogSink(nullptr); }
};
::testing::Environment* const kQuietLog = ::testing::AddGlobalTestEnvironment(new QuietLog);

// Records the library's log lines (server/log.h) for the life of a test.
class RecordingLog {
 public:
  RecordingLog() {
    SetLogSink([this](LogSeverity, absl::string_view line) {
      absl::MutexLock lock(&mu_);
      lines_.emplace_back(line);
    });
  }
  ~RecordingLog() { SetLogSink(nullptr); }
  bool Contains(absl::string_view text) const {
    absl::MutexLock lock(&mu_);
    for (const std::string& line : lines_) {
      if (absl::StrContains(line, text)) return true;
    }
    return false;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

bool StrictlyIncreasingRedisIds(const std::vector<std::string>& ids) {
  EventPosition previous;
  for (const std::string& id : ids) {
    std::pair<std::string, std::string> parts = absl::StrSplit(id, '-');
    EventPosition position;
    if (!absl::SimpleAtoi(parts.first, &position.major) ||
        !absl::SimpleAtoi(parts.second, &position.minor) || !(position > previous)) {
      return false;
    }
    previous = position;
  }
  return true;
}

TEST_F(RedisTopicTest, TwoTopicObjectsOnOneStreamFanOutToEachOthersSubscribers) {
  // Two Topic objects on one key stand for two server processes.
  auto a = MakeTopic("room");
  auto b = MakeTopic("room");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  TopicHarness harness_a(a.get());
  TopicHarness harness_b(b.get());
  std::vector<std::shared_ptr<RecordingSubscriber>> subscribers;
  for (int i = 0; i < 10; ++i) {
    subscribers.push_back(harness_a.Subscribe());
    subscribers.push_back(harness_b.Subscribe());
  }
  ASSERT_TRUE(WaitFor([&] { return a->Stats().subscribers == 10 && b->Stats().subscribers == 10; },
                      absl::Seconds(10)));
  std::vector<std::string> published;
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<std::string> id = (i % 2 == 0 ? a : b)->Publish(ChatMessage(absl::StrCat(i)));
    ASSERT_TRUE(id.ok()) << id.status();
    published.push_back(*id);
  }
  for (const auto& subscriber : subscribers) {
    ASSERT_TRUE(WaitFor([&] { return subscriber->count() >= 200; }, absl::Seconds(20)))
        << subscriber->count();
    EXPECT_EQ(subscriber->ids(), published);  // Redis ids, in log order, once each
  }
  EXPECT_TRUE(StrictlyIncreasingRedisIds(published));
  EXPECT_EQ(a->Stats().events_published, 100u);
  EXPECT_EQ(a->Stats().events_delivered, 200u);  // b's too, through Redis
}

TEST_F(RedisTopicTest, ReplaysAfterARedisIdThenGoesLive) {
  auto topic = MakeTopic("replay");
  ASSERT_NE(topic, nullptr);
  TopicHarness harness(topic.get());
  std::vector<std::string> ids;
  for (int i = 0; i < 600; ++i) {  // more than one replay page
    absl::StatusOr<std::string> id = topic->Publish(ChatMessage(absl::StrCat(i)));
    ASSERT_TRUE(id.ok()) << id.status();
    ids.push_back(*id);
  }
  auto resumed = harness.Subscribe(ids[4]);
  auto everything = harness.Subscribe("0-0");
  ASSERT_TRUE(WaitFor([&] { return resumed->count() == 595 && everything->count() == 600; },
                      absl::Seconds(20)));
  absl::StatusOr<std::string> live = topic->Publish(ChatMessage("live"));
  ASSERT_TRUE(live.ok());
  ids.push_back(*live);
  ASSERT_TRUE(WaitFor([&] { return resumed->count() == 596; }, absl::Seconds(20)));
  EXPECT_EQ(resumed->ids(), std::vector<std::string>(ids.begin() + 5, ids.end()));
  ASSERT_TRUE(WaitFor([&] { return everything->count() == 601; }, absl::Seconds(20)));
  EXPECT_EQ(everything->ids(), ids);
  EXPECT_EQ(topic->Stats().replays, 2u);
}

TEST_F(RedisTopicTest, ReplaysRacingALivePublisherLoseAndRepeatNothing) {
  auto topic = MakeTopic("race");
  ASSERT_NE(topic, nullptr);
  TopicHarness harness(topic.get());
  std::vector<std::string> ids;
  for (int i = 0; i < 300; ++i) {
    absl::StatusOr<std::string> id = topic->Publish(ChatMessage("before"));
    ASSERT_TRUE(id.ok()) << id.status();
    ids.push_back(*id);
  }
  std::vector<std::string> during;
  std::thread publisher([&] {
    for (int i = 0; i < 300; ++i) {
      absl::StatusOr<std::string> id = topic->Publish(ChatMessage("during"));
      EXPECT_TRUE(id.ok()) << id.status();
      if (id.ok()) during.push_back(*id);
    }
  });
  // Resumes from different points while the publisher runs: each goes from
  // replay (the replay thread) to live (the reader thread) mid-stream.
  std::vector<std::shared_ptr<RecordingSubscriber>> subscribers;
  for (int i = 0; i < 10; ++i) subscribers.push_back(harness.Subscribe(ids[i * 30]));
  publisher.join();
  ids.insert(ids.end(), during.begin(), during.end());
  for (int i = 0; i < 10; ++i) {
    const std::vector<std::string> want(ids.begin() + i * 30 + 1, ids.end());
    ASSERT_TRUE(WaitFor([&] { return subscribers[i]->count() >= want.size(); }, absl::Seconds(30)));
    EXPECT_EQ(subscribers[i]->ids(), want) << "resumed after " << ids[i * 30];
  }
}

TEST_F(RedisTopicTest, ResumingPastMaxLenEndsWithOutOfRange) {
  RedisTopicOptions options = Options();
  options.max_len = 10;  // "~": Redis trims whole nodes (100 entries) at a time
  auto topic = MakeTopic("short", options);
  ASSERT_NE(topic, nullptr);
  TopicHarness harness(topic.get());
  std::vector<std::string> ids;
  for (int i = 0; i < 500; ++i) {
    absl::StatusOr<std::string> id = topic->Publish(ChatMessage(absl::StrCat(i)));
    ASSERT_TRUE(id.ok()) << id.status();
    ids.push_back(*id);
  }
  auto too_old = harness.Subscribe(ids[0]);
  std::optional<absl::Status> status = too_old->WaitForEnd(absl::Seconds(20));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->code(), absl::StatusCode::kOutOfRange) << *status;
  EXPECT_TRUE(absl::StrContains(status->message(), "history")) << *status;
  EXPECT_EQ(too_old->count(), 0u);

  auto recent = harness.Subscribe(ids[495]);
  ASSERT_TRUE(WaitFor([&] { return recent->count() == 4; }, absl::Seconds(20)));
  EXPECT_EQ(recent->ids(), std::vector<std::string>(ids.begin() + 496, ids.end()));
}

TEST_F(RedisTopicTest, MalformedIdsAreInvalidArgument) {
  auto topic = MakeTopic("ids");
  ASSERT_NE(topic, nullptr);
  TopicHarness harness(topic.get());
  for (const std::string id : {"abc", "17", "1-x", "-1-0", "1-2-3"}) {
    auto subscriber = harness.Subscribe(id);
    std::optional<absl::Status> status = subscriber->WaitForEnd(absl::Seconds(10));
    ASSERT_TRUE(status.has_value()) << id;
    EXPECT_EQ(status->code(), absl::StatusCode::kInvalidArgument) << id << ": " << *status;
  }
}

TEST_F(RedisTopicTest, RedisRestartedUnderLiveSubscribersLosesAndRepeatsNothing) {
  auto topic = MakeTopic("restart");
  ASSERT_NE(topic, nullptr);
  TopicHarness harness(topic.get());
  std::vector<std::shared_ptr<RecordingSubscriber>> subscribers;
  for (int i = 0; i < 5; ++i) subscribers.push_back(harness.Subscribe());
  ASSERT_TRUE(WaitFor([&] { return topic->Stats().subscribers == 5; }, absl::Seconds(10)));

  std::vector<std::string> published;
  for (int i = 0; i < 50; ++i) {
    absl::StatusOr<std::string> id = topic->Publish(ChatMessage(absl::StrCat(i)));
    ASSERT_TRUE(id.ok()) << id.status();
    published.push_back(*id);
  }
  redis_->Stop();
  // Down: Publish fails at once with UNAVAILABLE; nothing is queued.
  const absl::Time before = absl::Now();
  absl::StatusOr<std::string> refused = topic->Publish(ChatMessage("while down"));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_LT(absl::Now() - before, absl::Seconds(2));
  ASSERT_TRUE(redis_->Restart());
  // Back: the publisher's connection is made again on a later Publish.
  absl::StatusOr<std::string> first_after;
  ASSERT_TRUE(WaitFor(
      [&] {
        first_after = topic->Publish(ChatMessage("50"));
        return first_after.ok();
      },
      absl::Seconds(10)))
      << first_after.status();
  published.push_back(*first_after);
  for (int i = 51; i < 100; ++i) {
    absl::StatusOr<std::string> id = topic->Publish(ChatMessage(absl::StrCat(i)));
    ASSERT_TRUE(id.ok()) << id.status();
    published.push_back(*id);
  }
  for (const auto& subscriber : subscribers) {
    ASSERT_TRUE(WaitFor([&] { return subscriber->count() >= 100; }, absl::Seconds(20)))
        << subscriber->count();
    EXPECT_EQ(subscriber->ids(), published);
  }
  // A subscriber that resumes after the restart replays from the AOF-backed log.
  auto resumed = harness.Subscribe(published[20]);
  ASSERT_TRUE(WaitFor([&] { return resumed->count() == 79; }, absl::Seconds(20)));
  EXPECT_EQ(resumed->ids(), std::vector<std::string>(published.begin() + 21, published.end()));
}

// PublishAsync with Redis hung (SIGSTOP): the caller never waits for Redis;
// past max_queued_publishes it is refused at once, on the caller's thread,
// with UNAVAILABLE; everything queued ends with UNAVAILABLE too (not sent, or
// timed out), within about 2 x publish_timeout; and once Redis answers again
// publishing works.
TEST_F(RedisTopicTest, PublishAsyncNeverWaitsForAHungRedisAndItsQueueIsBounded) {
  RedisTopicOptions options = Options();
  options.publish_timeout = absl::Seconds(3);
  options.max_queued_publishes = 4;
  auto topic = MakeTopic("hung", options);
  ASSERT_NE(topic, nullptr);
  TopicHarness harness(topic.get());
  auto subscriber = harness.Subscribe();
  ASSERT_TRUE(WaitFor([&] { return topic->Stats().subscribers == 1; }, absl::Seconds(10)));

  struct Results {
    absl::Mutex mu;
    std::vector<absl::Status> statuses ABSL_GUARDED_BY(mu);
    std::vector<std::string> ids ABSL_GUARDED_BY(mu);
  };
  auto results = std::make_shared<Results>();
  auto record = [results](absl::StatusOr<std::string> id) {
    absl::MutexLock lock(&results->mu);
    results->statuses.push_back(id.status());
    if (id.ok()) results->ids.push_back(*id);
  };
  auto done_count = [results] {
    absl::MutexLock lock(&results->mu);
    return results->statuses.size();
  };
  topic->PublishAsync(ChatMessage("up"), record);
  ASSERT_TRUE(WaitFor([&] { return done_count() == 1; }, absl::Seconds(10)));
  {
    absl::MutexLock lock(&results->mu);
    ASSERT_TRUE(results->statuses[0].ok()) << results->statuses[0];
  }
  ASSERT_TRUE(WaitFor([&] { return subscriber->count() == 1; }, absl::Seconds(10)));

  redis_->Pause();
  constexpr int kPublishes = 20;
  int refused_at_once = 0;
  const absl::Time before = absl::Now();
  for (int i = 0; i < kPublishes; ++i) {
    struct Slot {
      std::atomic<bool> done{false};
      std::thread::id thread;
      absl::Status status;
    };
    auto slot = std::make_shared<Slot>();
    topic->PublishAsync(ChatMessage(absl::StrCat("hung ", i)),
                        [slot, record](absl::StatusOr<std::string> id) {
                          slot->thread = std::this_thread::get_id();
                          slot->status = id.status();
                          slot->done.store(true, std::memory_order_release);
                          record(std::move(id));
                        });
    if (slot->done.load(std::memory_order_acquire) && slot->thread == std::this_thread::get_id()) {
      ++refused_at_once;
      EXPECT_EQ(slot->status.code(), absl::StatusCode::kUnavailable) << slot->status;
      EXPECT_TRUE(absl::StrContains(slot->status.message(), "already waiting")) << slot->status;
    }
  }
  // None of the calls waited for Redis (one XADD alone would take 3 s).
  EXPECT_LT(absl::Now() - before, absl::Seconds(2));
  // At most the queue (4) plus what the publisher thread took (a batch of
  // at most 4 + 1) were accepted.
  EXPECT_GE(refused_at_once, kPublishes - 9);
  ASSERT_TRUE(WaitFor([&] { return done_count() == 1 + kPublishes; }, absl::Seconds(30)));
  {
    absl::MutexLock lock(&results->mu);
    for (size_t i = 1; i < results->statuses.size(); ++i) {
      EXPECT_EQ(results->statuses[i].code(), absl::StatusCode::kUnavailable)
          << results->statuses[i];
    }
  }

  redis_->Resume();
  absl::StatusOr<std::string> after;
  ASSERT_TRUE(WaitFor(
      [&] {
        after = topic->Publish(ChatMessage("after"));
        return after.ok();
      },
      absl::Seconds(20)))
      << after.status();
  // The subscriber gets it (an XADD that timed out may have been stored
  // when Redis woke up, and is delivered before it: never lost, never twice).
  ASSERT_TRUE(WaitFor(
      [&] {
        std::vector<std::string> ids = subscriber->ids();
        return !ids.empty() && ids.back() == *after;
      },
      absl::Seconds(20)));
  EXPECT_TRUE(StrictlyIncreasingRedisIds(subscriber->ids()));
}

TEST_F(RedisTopicTest, CreatingATopicWhileRedisIsDownIsUnavailable) {
  RedisTopicOptions options = Options();
  redis_->Stop();
  auto topic = ChatTopic::Create("down", NewRedisTopicBackend(options, "down"));
  EXPECT_EQ(topic.status().code(), absl::StatusCode::kUnavailable) << topic.status();
}

// Issue 16 #0 and #3: Redis at maxclients accepts a connection, answers
// "ERR max number of clients reached" and closes it, and hiredis writes with
// plain write(): the next command on that socket raised SIGPIPE, which killed
// the process (the test binary here; chat-server in the report). Now SIGPIPE
// is ignored (the backend sets it up), a refused connection is dropped at
// once, and everything the refusal touches is UNAVAILABLE (it was INTERNAL,
// with Redis' text). Once Redis takes connections again, the topic recovers.
TEST_F(RedisTopicTest, ARedisThatClosesAndRefusesConnectionsNeverKillsTheProcess) {
  RecordingLog log;
  std::atomic<int> async_unavailable{0};
  std::atomic<int> async_other{0};
  auto topic = MakeTopic("refused");
  ASSERT_NE(topic, nullptr);
  TopicHarness harness(topic.get());
  auto live = harness.Subscribe();
  ASSERT_TRUE(WaitFor([&] { return topic->Stats().subscribers == 1; }, absl::Seconds(10)));
  ASSERT_TRUE(topic->Publish(ChatMessage("before")).ok());

  RedisAdmin admin(redis_->port());
  // Only the admin connection fits; the topic's connections are closed.
  ASSERT_EQ(admin.Run({"CONFIG", "SET", "maxclients", "1"}), "OK");
  ASSERT_NE(admin.Run({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"}), "0");

  int sync_failures = 0;
  std::vector<std::shared_ptr<RecordingSubscriber>> replays;
  const absl::Time until = absl::Now() + absl::Seconds(2);
  while (absl::Now() < until) {
    absl::StatusOr<std::string> id = topic->Publish(ChatMessage("refused"));
    EXPECT_FALSE(id.ok());
    if (!id.ok()) {
      ++sync_failures;
      EXPECT_EQ(id.status().code(), absl::StatusCode::kUnavailable) << id.status();
    }
    topic->PublishAsync(ChatMessage("refused async"), [&](absl::StatusOr<std::string> async_id) {
      (!async_id.ok() && async_id.status().code() == absl::StatusCode::kUnavailable
           ? async_unavailable
           : async_other)++;
    });
    if (replays.size() < 10) replays.push_back(harness.Subscribe("0-0"));
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_GT(sync_failures, 10);
  // A topic created now is refused the same way.
  auto refused = ChatTopic::Create("refused-new", NewRedisTopicBackend(Options(), "refused-new"));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  // Replays need the replay thread's connection: refused too.
  for (const auto& replay : replays) {
    std::optional<absl::Status> status = replay->WaitForEnd(absl::Seconds(10));
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->code(), absl::StatusCode::kUnavailable) << *status;
  }
  EXPECT_TRUE(log.Contains("reader lost Redis"));

  ASSERT_EQ(admin.Run({"CONFIG", "SET", "maxclients", "10000"}), "OK");
  absl::StatusOr<std::string> after;
  ASSERT_TRUE(WaitFor(
      [&] {
        after = topic->Publish(ChatMessage("after"));
        return after.ok();
      },
      absl::Seconds(10)))
      << after.status();
  // The live subscriber got "before", then "after": the reader reconnected.
  ASSERT_TRUE(WaitFor([&] { return live->count() == 2; }, absl::Seconds(10))) << live->count();
  EXPECT_EQ(live->texts(), (std::vector<std::string>{"before", "after"}));
  EXPECT_TRUE(WaitFor([&] { return log.Contains("reader back on Redis"); }, absl::Seconds(10)));
  topic.reset();  // runs every PublishAsync callback
  EXPECT_EQ(async_other.load(), 0);
  EXPECT_GT(async_unavailable.load(), 10);
}

// Issue 16 #11: an exclusive range after the largest id made Redis answer
// "ERR invalid start ID for the interval", passed on as INTERNAL. Every id
// past the end of the log is OUT_OF_RANGE with gravity's message.
TEST_F(RedisTopicTest, ResumingAfterTheLargestPossibleIdIsOutOfRangeLikeAnyIdPastTheEnd) {
  auto topic = MakeTopic("largest");
  ASSERT_NE(topic, nullptr);
  TopicHarness harness(topic.get());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(topic->Publish(ChatMessage(absl::StrCat(i))).ok());
  for (const std::string id :
       {"18446744073709551615-18446744073709551615", "18446744073709551615-0",
        "18446744073709551614-18446744073709551615", "99999999999999-0"}) {
    auto subscriber = harness.Subscribe(id);
    std::optional<absl::Status> status = subscriber->WaitForEnd(absl::Seconds(10));
    ASSERT_TRUE(status.has_value()) << id;
    EXPECT_EQ(status->code(), absl::StatusCode::kOutOfRange) << id << ": " << *status;
    EXPECT_TRUE(absl::StrContains(status->message(), "is gone")) << id << ": " << *status;
    EXPECT_FALSE(absl::StrContains(status->message(), "ERR")) << id << ": " << *status;
    EXPECT_EQ(subscriber->count(), 0u) << id;
  }
}

// Issue 16 #9: destroying a topic joined a reader blocked in XREAD BLOCK, so
// topics went about block_time each (chat-server: 0.9 s per room at exit).
// Stop now interrupts the reader's socket.
TEST_F(RedisTopicTest, DestroyingTopicsInterruptsTheirBlockedReadsInsteadOfWaitingThemOut) {
  RedisTopicOptions options = Options();
  options.block_time = absl::Seconds(1);
  constexpr int kTopics = 8;
  std::vector<std::unique_ptr<ChatTopic>> topics;
  for (int i = 0; i < kTopics; ++i) {
    topics.push_back(MakeTopic(absl::StrCat("exit-", i), options));
    ASSERT_NE(topics.back(), nullptr);
  }
  absl::SleepFor(absl::Milliseconds(200));  // every reader is in XREAD BLOCK
  const absl::Time start = absl::Now();
  topics.clear();
  const absl::Duration took = absl::Now() - start;
  // Waiting the reads out took about kTopics x 1 s.
  EXPECT_LT(took, absl::Seconds(2)) << took;
  std::cout << kTopics << " topics destroyed in " << took << std::endl;
}

// Threads of this process, from /proc/self/task.
int ThreadCount() {
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return -1;
  int count = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count;
}

// Redis' normal clients other than the admin connection asking.
int OtherClients(RedisAdmin& admin) {
  const std::string list = admin.Run({"CLIENT", "LIST", "TYPE", "normal"});
  int lines = 0;
  for (absl::string_view line : absl::StrSplit(list, '\n', absl::SkipWhitespace())) {
    if (absl::StrContains(line, "id=")) ++lines;
  }
  return lines - 1;
}

// Serves chat.v1.Chat/Subscribe from the topic named by the request's room:
// many topics behind one gRPC server (TopicHarness has one each).
class RoomsHarness {
 public:
  RoomsHarness() : service_("chat.v1.Chat") {
    absl::Status added = service_.AddStream<chat::v1::SubscribeRequest, chat::v1::Message>(
        "Subscribe",
        [this](const chat::v1::SubscribeRequest& request, Stream<chat::v1::Message> stream) {
          ChatTopic* topic = nullptr;
          {
            absl::MutexLock lock(&mu_);
            auto found = topics_.find(request.room());
            if (found != topics_.end()) topic = found->second;
          }
          if (topic == nullptr) {
            stream.Close(absl::NotFoundError(request.room()));
          } else {
            topic->Subscribe(std::move(stream));
          }
        });
    EXPECT_TRUE(added.ok()) << added;
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.drain_timeout = absl::Seconds(2);
    auto started = Server::Start(options, {&service_});
    EXPECT_TRUE(started.ok()) << started.status();
    if (started.ok()) server_ = std::move(*started);
    channel_ = grpc::CreateChannel(server_ != nullptr ? server_->address() : "127.0.0.1:1",
                                   grpc::InsecureChannelCredentials());
    stub_ = chat::v1::Chat::NewStub(channel_);
  }
  ~RoomsHarness() {
    for (const auto& subscriber : subscribers_) subscriber->Cancel();
    for (const auto& subscriber : subscribers_) {
      EXPECT_TRUE(subscriber->WaitForEnd(absl::Seconds(10)).has_value());
    }
    if (server_ != nullptr) server_->Shutdown();
  }
  void Add(const std::string& room, ChatTopic* topic) {
    absl::MutexLock lock(&mu_);
    topics_[room] = topic;
  }
  std::shared_ptr<RecordingSubscriber> Subscribe(const std::string& room,
                                                 const std::string& last_event_id = "") {
    auto subscriber = std::make_shared<RecordingSubscriber>();
    client::CallOptions options;
    options.WithTimeout(absl::Seconds(120)).WithMaxBufferedMessages(1024);
    if (!last_event_id.empty()) options.WithLastEventId(last_event_id);
    chat::v1::SubscribeRequest request;
    request.set_room(room);
    subscriber->stream = client::OpenAsync(
        stub_, &chat::v1::Chat::Stub::async::Subscribe, request, options,
        [subscriber](const chat::v1::Message& message) { subscriber->Add(message); },
        [subscriber](absl::Status status) { subscriber->End(std::move(status)); });
    subscribers_.push_back(subscriber);
    return subscriber;
  }

 private:
  Service service_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<chat::v1::Chat::Stub> stub_;
  absl::Mutex mu_;
  std::map<std::string, ChatTopic*> topics_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<RecordingSubscriber>> subscribers_;
};

// Issue 16 #3: each Redis topic had a reader and a replay thread, a publisher
// thread from its first PublishAsync, and two or three Redis connections
// (200 topics: 600 threads, 600 connections). Now the topics of one address
// share one hub: three threads and at most three connections in all.
TEST_F(RedisTopicTest, TwoHundredTopicsShareABoundedNumberOfThreadsAndRedisConnections) {
  constexpr int kTopics = 200;
  RedisAdmin admin(redis_->port());
  const int threads_before = ThreadCount();
  const int clients_before = OtherClients(admin);
  std::vector<std::unique_ptr<ChatTopic>> topics;
  for (int i = 0; i < kTopics; ++i) {
    topics.push_back(MakeTopic(absl::StrCat("many-", i)));
    ASSERT_NE(topics.back(), nullptr);
  }
  const int threads_created = ThreadCount() - threads_before;
  std::atomic<int> published{0};
  for (const auto& topic : topics) {
    topic->PublishAsync(ChatMessage("one"), [&](absl::StatusOr<std::string> id) {
      EXPECT_TRUE(id.ok()) << id.status();
      ++published;
    });
  }
  ASSERT_TRUE(WaitFor([&] { return published.load() == kTopics; }, absl::Seconds(20)));
  const int threads_published = ThreadCount() - threads_before;
  // Replays and live delivery on every topic, through one gRPC server.
  {
    RoomsHarness harness;
    std::vector<std::shared_ptr<RecordingSubscriber>> replayed;
    for (int i = 0; i < kTopics; ++i) {
      harness.Add(absl::StrCat("many-", i), topics[i].get());
      replayed.push_back(harness.Subscribe(absl::StrCat("many-", i), "0-0"));
    }
    for (const auto& subscriber : replayed) {
      ASSERT_TRUE(WaitFor([&] { return subscriber->count() == 1; }, absl::Seconds(20)));
    }
    for (int i = 0; i < kTopics; i += 20) ASSERT_TRUE(topics[i]->Publish(ChatMessage("two")).ok());
    for (int i = 0; i < kTopics; i += 20) {
      ASSERT_TRUE(WaitFor([&] { return replayed[i]->count() == 2; }, absl::Seconds(20)));
    }
  }
  const int clients = OtherClients(admin) - clients_before;
  std::cout << kTopics << " topics: +" << threads_created << " threads created, +"
            << threads_published << " after a PublishAsync each, " << clients
            << " Redis connections after replays and live events on each" << std::endl;
  EXPECT_LE(threads_created, 4);
  EXPECT_LE(threads_published, 4);
  EXPECT_LE(clients, 4);
  const absl::Time start = absl::Now();
  topics.clear();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  // The last topic took the hub's threads and connections with it.
  EXPECT_TRUE(WaitFor([&] { return ThreadCount() <= threads_before; }, absl::Seconds(10)))
      << ThreadCount() << " threads, " << threads_before << " before";
  EXPECT_TRUE(WaitFor([&] { return OtherClients(admin) <= clients_before; }, absl::Seconds(10)));
}

TEST_F(RedisTopicTest, TheNumberOfLiveTopicsIsBounded) {
  RedisTopicOptions options = Options();
  options.max_topics = 3;
  std::vector<std::unique_ptr<ChatTopic>> topics;
  for (int i = 0; i < 3; ++i) {
    topics.push_back(MakeTopic(absl::StrCat("bounded-", i), options));
    ASSERT_NE(topics.back(), nullptr);
  }
  auto refused = ChatTopic::Create("bounded-3", NewRedisTopicBackend(options, "bounded-3"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "max_topics")) << refused.status();
  // A failed creation holds no slot; a stopped topic gives its slot back.
  topics.pop_back();
  topics.push_back(MakeTopic("bounded-3", options));
  ASSERT_NE(topics.back(), nullptr);
  ASSERT_TRUE(topics.back()->Publish(ChatMessage("fits")).ok());
}

// Events published to many topics at once, from several threads, each
// topic also read by a subscriber that resumes mid-stream (replay, then
// live): every subscriber gets exactly its topic's events, once, in log
// order, nothing from other topics.
TEST_F(RedisTopicTest, EventsOnManyTopicsInterleavedArriveExactlyOnceInOrderOnEach) {
  constexpr int kTopics = 40;
  constexpr int kPerTopic = 60;
  std::vector<std::unique_ptr<ChatTopic>> topics;
  RoomsHarness harness;
  std::vector<std::shared_ptr<RecordingSubscriber>> live;
  for (int t = 0; t < kTopics; ++t) {
    topics.push_back(MakeTopic(absl::StrCat("mix-", t)));
    ASSERT_NE(topics.back(), nullptr);
    harness.Add(absl::StrCat("mix-", t), topics.back().get());
  }
  // Live subscribers first: a live subscription starts at the topic's own
  // position, which trails Redis by the read's delay, so one made after a
  // publish may still get it. Then a first event on each, to resume after.
  for (int t = 0; t < kTopics; ++t) live.push_back(harness.Subscribe(absl::StrCat("mix-", t)));
  ASSERT_TRUE(WaitFor(
      [&] {
        return std::all_of(topics.begin(), topics.end(),
                           [](const auto& topic) { return topic->Stats().subscribers == 1; });
      },
      absl::Seconds(20)));
  std::vector<std::string> first(kTopics);
  for (int t = 0; t < kTopics; ++t) {
    absl::StatusOr<std::string> id = topics[t]->Publish(ChatMessage(absl::StrCat("mix-", t)));
    ASSERT_TRUE(id.ok()) << id.status();
    first[t] = *id;
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        return std::all_of(topics.begin(), topics.end(),
                           [](const auto& topic) { return topic->Stats().subscribers == 1; });
      },
      absl::Seconds(20)));
  absl::Mutex mu;
  std::vector<std::vector<std::string>> ids(kTopics);
  std::atomic<int> async_done{0};
  std::vector<std::thread> publishers;
  std::vector<std::shared_ptr<RecordingSubscriber>> resumed(kTopics);
  for (int p = 0; p < 4; ++p) {
    publishers.emplace_back([&, p] {
      for (int n = 0; n < kPerTopic / 4; ++n) {
        for (int t = 0; t < kTopics; ++t) {
          const std::string text = absl::StrCat("mix-", t);
          if ((n + p) % 2 == 0) {
            absl::StatusOr<std::string> id = topics[t]->Publish(ChatMessage(text));
            EXPECT_TRUE(id.ok()) << id.status();
            absl::MutexLock lock(&mu);
            if (id.ok()) ids[t].push_back(*id);
          } else {
            topics[t]->PublishAsync(ChatMessage(text), [&, t](absl::StatusOr<std::string> id) {
              EXPECT_TRUE(id.ok()) << id.status();
              {
                absl::MutexLock lock(&mu);
                if (id.ok()) ids[t].push_back(*id);
              }
              ++async_done;
            });
            absl::SleepFor(absl::Microseconds(200));  // the publish queue is bounded
          }
        }
      }
    });
  }
  // Resumed during the publishing: the hand-over from replay to live races it.
  for (int t = 0; t < kTopics; ++t) {
    resumed[t] = harness.Subscribe(absl::StrCat("mix-", t), first[t]);
  }
  for (std::thread& publisher : publishers) publisher.join();
  ASSERT_TRUE(
      WaitFor([&] { return async_done.load() == kTopics * kPerTopic / 2; }, absl::Seconds(30)));
  for (int t = 0; t < kTopics; ++t) {
    std::vector<std::string> want;
    {
      absl::MutexLock lock(&mu);
      want = ids[t];
    }
    ASSERT_EQ(want.size(), static_cast<size_t>(kPerTopic));
    std::sort(want.begin(), want.end(), [](const std::string& a, const std::string& b) {
      std::pair<std::string, std::string> x = absl::StrSplit(a, '-');
      std::pair<std::string, std::string> y = absl::StrSplit(b, '-');
      return std::make_pair(std::stoull(x.first), std::stoull(x.second)) <
             std::make_pair(std::stoull(y.first), std::stoull(y.second));
    });
    // The live subscriber also has the first event; the resumed one starts after it.
    std::vector<std::string> want_live = {first[t]};
    want_live.insert(want_live.end(), want.begin(), want.end());
    for (int which = 0; which < 2; ++which) {
      const std::shared_ptr<RecordingSubscriber>& subscriber = which == 0 ? live[t] : resumed[t];
      const std::vector<std::string>& expected = which == 0 ? want_live : want;
      ASSERT_TRUE(
          WaitFor([&] { return subscriber->count() >= expected.size(); }, absl::Seconds(30)))
          << "topic " << t << ": " << subscriber->count();
      EXPECT_EQ(subscriber->ids(), expected) << "topic " << t;
      for (const std::string& text : subscriber->texts()) {
        EXPECT_EQ(text, absl::StrCat("mix-", t));
      }
    }
  }
}

// A topic created while the shared reader blocks in XREAD is read at once
// (the reader is woken), not after the block time.
TEST_F(RedisTopicTest, ATopicCreatedWhileTheReaderBlocksGetsItsFirstEventPromptly) {
  RedisTopicOptions options = Options();
  options.block_time = absl::Seconds(5);
  auto first = MakeTopic("blocking", options);
  ASSERT_NE(first, nullptr);
  absl::SleepFor(absl::Milliseconds(300));  // the reader is in XREAD BLOCK 5000
  auto late = MakeTopic("late", options);
  ASSERT_NE(late, nullptr);
  TopicHarness harness(late.get());
  auto subscriber = harness.Subscribe();
  ASSERT_TRUE(WaitFor([&] { return late->Stats().subscribers == 1; }, absl::Seconds(10)));
  const absl::Time start = absl::Now();
  ASSERT_TRUE(late->Publish(ChatMessage("prompt")).ok());
  ASSERT_TRUE(WaitFor([&] { return subscriber->count() == 1; }, absl::Seconds(10)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

// Issue 19: resumes must not multiply Redis reads. Each topic keeps its
// latest events in process (the resume window); a resume inside it reads
// nothing from Redis, one outside it reads Redis, and resumes of a topic
// from the same id share a read (single-flight) or, once a read has joined
// up with the window, are served from it.

// Calls of `command` (lower case) that Redis counted (INFO commandstats;
// the commands inside a MULTI/EXEC are counted one by one).
long long CommandCalls(RedisAdmin& admin, absl::string_view command) {
  const std::string info = admin.Run({"INFO", "commandstats"});
  const std::string key = absl::StrCat("cmdstat_", command, ":calls=");
  const size_t at = info.find(key);
  if (at == std::string::npos) return 0;
  long long calls = 0;
  const size_t digits = at + key.size();
  const size_t end = info.find(',', digits);
  return absl::SimpleAtoi(info.substr(digits, end - digits), &calls) ? calls : -1;
}

// Publishes `n` events and waits until the topic's reader has delivered
// them (so they are in its window). Their ids.
std::vector<std::string> PublishAndWait(ChatTopic& topic, int n) {
  const uint64_t delivered = topic.Stats().events_delivered;
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    absl::StatusOr<std::string> id = topic.Publish(ChatMessage(absl::StrCat(i)));
    EXPECT_TRUE(id.ok()) << id.status();
    if (id.ok()) ids.push_back(*id);
  }
  EXPECT_TRUE(
      WaitFor([&] { return topic.Stats().events_delivered == delivered + n; }, absl::Seconds(20)));
  return ids;
}

TEST_F(RedisTopicTest, AResumeInsideTheWindowReadsNothingFromRedis) {
  auto topic = MakeTopic("window");
  ASSERT_NE(topic, nullptr);
  TopicHarness harness(topic.get());
  std::vector<std::string> ids = PublishAndWait(*topic, 50);
  ASSERT_EQ(ids.size(), 50u);
  EXPECT_EQ(topic->Stats().window_events, 50u);
  EXPECT_GT(topic->Stats().window_bytes, 50u * 50);
  RedisAdmin admin(redis_->port());
  const long long xrange_before = CommandCalls(admin, "xrange");

  auto middle = harness.Subscribe(ids[9]);
  auto last = harness.Subscribe(ids[49]);  // the usual case: nothing missed yet
  ASSERT_TRUE(WaitFor([&] { return middle->count() == 40; }, absl::Seconds(20)));
  ASSERT_TRUE(WaitFor([&] { return topic->Stats().replays_from_window == 2; }, absl::Seconds(20)));
  absl::StatusOr<std::string> live = topic->Publish(ChatMessage("live"));
  ASSERT_TRUE(live.ok()) << live.status();
  ASSERT_TRUE(
      WaitFor([&] { return middle->count() == 41 && last->count() == 1; }, absl::Seconds(20)));
  std::vector<std::string> want(ids.begin() + 10, ids.end());
  want.push_back(*live);
  EXPECT_EQ(middle->ids(), want);
  EXPECT_EQ(last->ids(), std::vector<std::string>{*live});

  const TopicStats stats = topic->Stats();
  EXPECT_EQ(stats.replays, 2u);
  EXPECT_EQ(stats.replay_reads, 0u);
  EXPECT_GE(stats.replay_pages_from_window, 2u);
  EXPECT_EQ(stats.window_events, 51u);
  EXPECT_EQ(CommandCalls(admin, "xrange") - xrange_before, 0);
}

TEST_F(RedisTopicTest, AResumeOutsideTheWindowFallsBackToRedis) {
  RedisTopicOptions options = Options();
  options.resume_window_events = 20;
  auto topic = MakeTopic("outside", options);
  ASSERT_NE(topic, nullptr);
  TopicHarness harness(topic.get());
  std::vector<std::string> ids = PublishAndWait(*topic, 100);
  ASSERT_EQ(ids.size(), 100u);
  EXPECT_EQ(topic->Stats().window_events, 20u);
  RedisAdmin admin(redis_->port());
  const long long xrange_before = CommandCalls(admin, "xrange");

  // 90 events to replay: read from Redis (they do not fit the window, so
  // they do not join it; a second resume from there reads Redis again).
  auto first = harness.Subscribe(ids[9]);
  ASSERT_TRUE(WaitFor([&] { return first->count() == 90; }, absl::Seconds(20)));
  auto second = harness.Subscribe(ids[9]);
  ASSERT_TRUE(WaitFor([&] { return second->count() == 90; }, absl::Seconds(20)));
  // Inside the window: no read.
  auto inside = harness.Subscribe(ids[85]);
  ASSERT_TRUE(WaitFor([&] { return inside->count() == 14; }, absl::Seconds(20)));
  ASSERT_TRUE(WaitFor([&] { return topic->Stats().replays_from_window == 1; }, absl::Seconds(20)));
  // Retention still answers from Redis: gone is gone.
  absl::StatusOr<std::string> live = topic->Publish(ChatMessage("live"));
  ASSERT_TRUE(live.ok()) << live.status();
  ids.push_back(*live);
  ASSERT_TRUE(WaitFor(
      [&] { return first->count() == 91 && second->count() == 91 && inside->count() == 15; },
      absl::Seconds(20)));
  EXPECT_EQ(first->ids(), std::vector<std::string>(ids.begin() + 10, ids.end()));
  EXPECT_EQ(second->ids(), std::vector<std::string>(ids.begin() + 10, ids.end()));
  EXPECT_EQ(inside->ids(), std::vector<std::string>(ids.begin() + 86, ids.end()));

  const TopicStats stats = topic->Stats();
  EXPECT_EQ(stats.replays, 3u);
  EXPECT_EQ(stats.replay_reads, 2u);  // one page each (90 < 256)
  EXPECT_EQ(stats.replays_from_window, 1u);
  EXPECT_EQ(stats.window_events, 20u);
  EXPECT_EQ(CommandCalls(admin, "xrange") - xrange_before, 2);
}

// The window is bounded by bytes as well as by count.
TEST_F(RedisTopicTest, TheResumeWindowIsBoundedByBytes) {
  RedisTopicOptions options = Options();
  options.resume_window_bytes = 16 * 1024;
  auto topic = MakeTopic("bytes", options);
  ASSERT_NE(topic, nullptr);
  TopicHarness harness(topic.get());
  const uint64_t delivered = topic->Stats().events_delivered;
  std::vector<std::string> ids;
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<std::string> id = topic->Publish(ChatMessage(std::string(500, 'x')));
    ASSERT_TRUE(id.ok()) << id.status();
    ids.push_back(*id);
  }
  ASSERT_TRUE(WaitFor([&] { return topic->Stats().events_delivered == delivered + 200; },
                      absl::Seconds(20)));
  TopicStats stats = topic->Stats();
  EXPECT_LE(stats.window_bytes, 16u * 1024);
  EXPECT_GT(stats.window_bytes, 8u * 1024);
  EXPECT_GT(stats.window_events, 10u);
  EXPECT_LT(stats.window_events, 32u);  // each event is more than 500 bytes
  auto inside = harness.Subscribe(ids[195]);
  auto outside = harness.Subscribe(ids[100]);
  ASSERT_TRUE(
      WaitFor([&] { return inside->count() == 4 && outside->count() == 99; }, absl::Seconds(20)));
  EXPECT_EQ(inside->ids(), std::vector<std::string>(ids.begin() + 196, ids.end()));
  EXPECT_EQ(outside->ids(), std::vector<std::string>(ids.begin() + 101, ids.end()));
  stats = topic->Stats();
  EXPECT_EQ(stats.replays_from_window, 1u);
  EXPECT_EQ(stats.replay_reads, 1u);
}

// Single-flight: 100 resumes from one id outside the window, all asked for
// while the first one's read is still under way (Redis paused), make one
// Redis read between them.
TEST_F(RedisTopicTest, HundredConcurrentResumesFromOneIdShareOneRedisRead) {
  RedisTopicOptions options = Options();
  options.resume_window_events = 10;           // 50 events to replay do not fit
  options.publish_timeout = absl::Seconds(3);  // a replay waits up to 4 x this
  options.block_time = absl::Seconds(2);
  auto topic = MakeTopic("herd", options);
  ASSERT_NE(topic, nullptr);
  TopicHarness harness(topic.get());
  std::vector<std::string> ids = PublishAndWait(*topic, 100);
  ASSERT_EQ(ids.size(), 100u);
  RedisAdmin admin(redis_->port());
  const long long xrange_before = CommandCalls(admin, "xrange");

  constexpr int kResumes = 100;
  redis_->Pause();
  std::vector<std::shared_ptr<RecordingSubscriber>> resumed;
  for (int i = 0; i < kResumes; ++i) resumed.push_back(harness.Subscribe(ids[49]));
  const bool all_waiting = WaitFor(
      [&] {
        const TopicStats stats = topic->Stats();
        return stats.replays == kResumes && stats.replay_reads_shared == kResumes - 1;
      },
      absl::Seconds(8));
  redis_->Resume();
  ASSERT_TRUE(all_waiting) << topic->Stats().replays << " replays, "
                           << topic->Stats().replay_reads_shared << " shared";
  const std::vector<std::string> want(ids.begin() + 50, ids.end());
  for (const auto& subscriber : resumed) {
    ASSERT_TRUE(WaitFor([&] { return subscriber->count() == want.size(); }, absl::Seconds(20)))
        << subscriber->count();
    EXPECT_EQ(subscriber->ids(), want);
  }
  const TopicStats stats = topic->Stats();
  const long long xrange_calls = CommandCalls(admin, "xrange") - xrange_before;
  std::cout << kResumes << " concurrent resumes from one id: " << stats.replay_reads
            << " replay read(s) (stats), " << xrange_calls << " XRANGE (Redis commandstats), "
            << stats.replay_reads_shared << " shared" << std::endl;
  EXPECT_EQ(stats.replay_reads, 1u);
  EXPECT_EQ(xrange_calls, 1);
  EXPECT_EQ(stats.replays_from_window, 0u);
}

// A herd that comes to an instance whose topic was not live (a second
// server; or the room made by the first resume): the first resume reads
// Redis, and its read starts the window at the resume id, so the others
// from that id, concurrent or not, are served in process.
TEST_F(RedisTopicTest, AHerdResumingFromOneIdOnAFreshTopicReadsRedisOnce) {
  auto writer = MakeTopic("fresh");
  ASSERT_NE(writer, nullptr);
  std::vector<std::string> ids = PublishAndWait(*writer, 100);
  ASSERT_EQ(ids.size(), 100u);
  auto topic = MakeTopic("fresh");  // the other instance's, created after
  ASSERT_NE(topic, nullptr);
  TopicHarness harness(topic.get());
  RedisAdmin admin(redis_->port());
  const long long xrange_before = CommandCalls(admin, "xrange");

  constexpr int kResumes = 100;
  std::vector<std::shared_ptr<RecordingSubscriber>> resumed;
  for (int i = 0; i < kResumes; ++i) {
    resumed.push_back(harness.Subscribe(ids[49]));
    if (i % 10 == 0) absl::SleepFor(absl::Milliseconds(5));  // some after the read
  }
  std::vector<std::string> want(ids.begin() + 50, ids.end());
  for (const auto& subscriber : resumed) {
    ASSERT_TRUE(WaitFor([&] { return subscriber->count() == want.size(); }, absl::Seconds(20)))
        << subscriber->count();
  }
  ASSERT_TRUE(WaitFor([&] { return topic->Stats().subscribers == kResumes; }, absl::Seconds(20)));
  absl::StatusOr<std::string> live = writer->Publish(ChatMessage("live"));
  ASSERT_TRUE(live.ok()) << live.status();
  want.push_back(*live);
  for (const auto& subscriber : resumed) {
    ASSERT_TRUE(WaitFor([&] { return subscriber->count() == want.size(); }, absl::Seconds(20)))
        << subscriber->count();
    EXPECT_EQ(subscriber->ids(), want);
  }
  const TopicStats stats = topic->Stats();
  const long long xrange_calls = CommandCalls(admin, "xrange") - xrange_before;
  std::cout << kResumes << " resumes from one id on a fresh topic: " << stats.replay_reads
            << " replay read(s), " << xrange_calls << " XRANGE, " << stats.replay_reads_shared
            << " shared, " << stats.replays_from_window << " from the window" << std::endl;
  EXPECT_EQ(stats.replay_reads, 1u);
  EXPECT_EQ(xrange_calls, 1);
  EXPECT_EQ(stats.replay_reads_shared + stats.replays_from_window, kResumes - 1u);
  EXPECT_EQ(stats.window_events, 51u);
}

// The hand-over from Redis pages to window pages to live, with publishes
// running all along and the window moving under the replays: resumes from
// ids outside the window (Redis, then the window), inside it, and several
// from one id at once (a shared read, which those that joined after it was
// asked for may not take as the end). Every subscriber gets every event
// after its id once, in log order.
TEST_F(RedisTopicTest, ResumesAcrossTheWindowEdgeWhilePublishingGetEveryEventOnceInOrder) {
  RedisTopicOptions options = Options();
  options.resume_window_events = 50;
  auto topic = MakeTopic("edge", options);
  ASSERT_NE(topic, nullptr);
  TopicHarness harness(topic.get());
  std::vector<std::string> ids = PublishAndWait(*topic, 300);
  ASSERT_EQ(ids.size(), 300u);
  std::vector<std::string> during;
  std::atomic<bool> publishing{true};
  std::thread publisher([&] {
    for (int i = 0; i < 400; ++i) {
      absl::StatusOr<std::string> id = topic->Publish(ChatMessage("during"));
      EXPECT_TRUE(id.ok()) << id.status();
      if (id.ok()) during.push_back(*id);
      if (i % 4 == 0) absl::SleepFor(absl::Microseconds(500));
    }
    publishing = false;
  });
  // From 0 (Redis: two pages, then the window) to 280 (inside the window at
  // first), three resumes per id, twice while the publisher runs.
  std::vector<std::pair<size_t, std::shared_ptr<RecordingSubscriber>>> resumed;
  for (int round = 0; round < 2 && publishing; ++round) {
    for (size_t from = 0; from < 300; from += 20) {
      for (int copy = 0; copy < 3; ++copy) resumed.emplace_back(from, harness.Subscribe(ids[from]));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  publisher.join();
  ids.insert(ids.end(), during.begin(), during.end());
  for (const auto& [from, subscriber] : resumed) {
    const std::vector<std::string> want(ids.begin() + from + 1, ids.end());
    ASSERT_TRUE(WaitFor([&] { return subscriber->count() >= want.size(); }, absl::Seconds(30)))
        << "resumed after " << ids[from] << ": " << subscriber->count() << " of " << want.size();
    EXPECT_EQ(subscriber->ids(), want) << "resumed after " << ids[from];
  }
  const TopicStats stats = topic->Stats();
  std::cout << resumed.size() << " resumes while publishing: " << stats.replay_reads
            << " replay reads, " << stats.replay_reads_shared << " shared, "
            << stats.replay_pages_from_window << " pages from the window, "
            << stats.replays_from_window << " resumes all from the window" << std::endl;
  EXPECT_GT(stats.replay_reads, 0u);
  EXPECT_GT(stats.replay_pages_from_window, 0u);
  EXPECT_EQ(stats.slow_subscribers_dropped, 0u);
}

// The windows of every topic of a hub share one memory bound
// (resume_windows_total_bytes): with a 64 KiB cap and four busy topics
// whose own windows could hold 1 MiB each, the hub's windows never hold
// more than the cap, the topics that grow drop their own oldest events,
// and every resume (from Redis, the window, or both, while publishing)
// still gets every event after its id exactly once, in order.
TEST_F(RedisTopicTest, AllTheHubsWindowsTogetherStayWithinTheirTotalCap) {
  constexpr size_t kCap = 64 * 1024;
  constexpr int kTopics = 4;
  constexpr int kBefore = 150;  // per topic, before the resumes
  constexpr int kDuring = 100;  // per topic, while they run
  RedisTopicOptions options = Options();
  options.resume_windows_total_bytes = kCap;
  std::vector<std::unique_ptr<ChatTopic>> topics;
  std::vector<std::unique_ptr<TopicHarness>> harnesses;
  for (int t = 0; t < kTopics; ++t) {
    topics.push_back(MakeTopic(absl::StrCat("capped-", t), options));
    ASSERT_NE(topics.back(), nullptr);
    harnesses.push_back(std::make_unique<TopicHarness>(topics.back().get()));
  }
  // What every topic's Stats() says of the hub's windows, and what they
  // hold, one topic at a time (each under its own lock).
  auto total_within_cap = [&] {
    for (const auto& topic : topics) {
      if (topic->Stats().windows_total_bytes > kCap) return false;
    }
    return true;
  };
  // Round-robin over the topics, ~1 KiB events: each alone would fill the cap.
  std::vector<std::vector<std::string>> ids(kTopics);
  auto publish = [&](int rounds, absl::string_view text) {
    bool within = true;
    for (int i = 0; i < rounds; ++i) {
      for (int t = 0; t < kTopics; ++t) {
        absl::StatusOr<std::string> id =
            topics[t]->Publish(ChatMessage(absl::StrCat(text, std::string(500, 'x'))));
        EXPECT_TRUE(id.ok()) << id.status();
        if (id.ok()) ids[t].push_back(*id);
      }
      if (i % 10 == 0) within = within && total_within_cap();
    }
    return within;
  };
  EXPECT_TRUE(publish(kBefore, "before"));
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const auto& topic : topics) {
          if (topic->Stats().events_delivered != static_cast<uint64_t>(kBefore)) return false;
        }
        return true;
      },
      absl::Seconds(20)));
  size_t held = 0;
  uint64_t evicted = 0;
  uint64_t total = 0;
  for (const auto& topic : topics) {
    const TopicStats stats = topic->Stats();
    held += stats.window_bytes;
    evicted += stats.window_evicted_by_total;
    total = stats.windows_total_bytes;
    EXPECT_LT(stats.window_events, static_cast<uint64_t>(kBefore));
  }
  std::cout << kTopics << " topics under a " << kCap << " B cap: their windows hold " << held
            << " B (hub total " << total << " B), " << evicted << " events evicted by the cap"
            << std::endl;
  EXPECT_EQ(held, total);  // one hub, one budget, every window charged
  EXPECT_LE(held, kCap);
  EXPECT_GT(held, kCap / 2);
  EXPECT_GT(evicted, 0u);

  // Resumes from every part of each log (before the windows: Redis; their
  // middle; their end), three per id, while the topics go on publishing.
  struct Resume {
    int topic;
    size_t from;
    std::shared_ptr<RecordingSubscriber> subscriber;
  };
  const std::vector<std::vector<std::string>> before = ids;  // the publisher appends to ids
  std::vector<Resume> resumes;
  std::atomic<bool> within_during{true};
  std::thread publisher([&] { within_during = publish(kDuring, "during"); });
  for (int t = 0; t < kTopics; ++t) {
    for (size_t from : {size_t{0}, size_t{70}, size_t{130}, size_t{140}, size_t{kBefore - 1}}) {
      for (int copy = 0; copy < 3; ++copy) {
        resumes.push_back({t, from, harnesses[t]->Subscribe(before[t][from])});
      }
    }
  }
  publisher.join();
  EXPECT_TRUE(within_during.load());
  for (const Resume& resume : resumes) {
    const std::vector<std::string>& log = ids[resume.topic];
    const std::vector<std::string> want(log.begin() + resume.from + 1, log.end());
    ASSERT_TRUE(
        WaitFor([&] { return resume.subscriber->count() >= want.size(); }, absl::Seconds(30)))
        << "topic " << resume.topic << " after " << log[resume.from] << ": "
        << resume.subscriber->count() << " of " << want.size();
    EXPECT_EQ(resume.subscriber->ids(), want)
        << "topic " << resume.topic << " after " << log[resume.from];
  }
  uint64_t reads = 0;
  uint64_t from_window = 0;
  held = 0;
  for (const auto& topic : topics) {
    const TopicStats stats = topic->Stats();
    reads += stats.replay_reads;
    from_window += stats.replay_pages_from_window;
    held += stats.window_bytes;
    total = stats.windows_total_bytes;
    EXPECT_EQ(stats.slow_subscribers_dropped, 0u);
  }
  std::cout << resumes.size() << " resumes: " << reads << " replay reads, " << from_window
            << " pages from the windows; windows hold " << held << " B" << std::endl;
  EXPECT_GT(reads, 0u);
  EXPECT_GT(from_window, 0u);
  EXPECT_EQ(held, total);
  EXPECT_LE(held, kCap);
  // Their bytes go back with the topics.
  harnesses.clear();
  topics.resize(1);
  EXPECT_EQ(topics[0]->Stats().windows_total_bytes, topics[0]->Stats().window_bytes);
}

// Issue: subscribers' server-side code can read the publisher's traceparent
// (Topic::OnEvent), so a post can be followed to its deliveries, in every
// process that shares the log.

constexpr char kTraceA[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
constexpr char kTraceB[] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

TEST_F(RedisTopicTest, OnEventReportsTheTraceparentOfAnotherProcessesPostsLiveAndReplayed) {
  // Two Topic objects on one stream stand for two processes: `a` publishes,
  // `b` delivers. b keeps no resume window, so its replays read XRANGE.
  RedisTopicOptions no_window = Options();
  no_window.resume_window_events = 0;
  auto a = MakeTopic("traced");
  auto b = MakeTopic("traced", no_window);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto observer = std::make_shared<RecordingObserver>();
  b->OnEvent(observer->Callback());
  TopicHarness harness(b.get());
  auto one = harness.Subscribe();
  auto two = harness.Subscribe();
  ASSERT_TRUE(WaitFor([&] { return b->Stats().subscribers == 2; }, absl::Seconds(10)));

  absl::StatusOr<std::string> traced = a->Publish(ChatMessage("traced"), kTraceA);
  absl::StatusOr<std::string> untraced = a->Publish(ChatMessage("untraced"));
  absl::Notification async_done;
  absl::StatusOr<std::string> async = absl::UnknownError("not called");
  a->PublishAsync(ChatMessage("async"), kTraceB, [&](absl::StatusOr<std::string> id) {
    async = std::move(id);
    async_done.Notify();
  });
  ASSERT_TRUE(async_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(traced.ok() && untraced.ok() && async.ok());
  // An entry written without the field (another writer, an older version).
  RedisAdmin admin(redis_->port());
  const std::string raw = admin.Run(
      {"XADD", "gravity:topic:traced", "*", "payload", ChatMessage("raw").SerializeAsString()});
  ASSERT_TRUE(StrictlyIncreasingRedisIds({*async, raw})) << raw;

  ASSERT_TRUE(WaitFor([&] { return observer->count() == 4; }, absl::Seconds(20)))
      << observer->count();
  EXPECT_EQ(observer->lines(), (std::vector<std::string>{
                                   absl::StrCat(*traced, " ", kTraceA, " to 2"),
                                   absl::StrCat(*untraced, " - to 2"),
                                   absl::StrCat(*async, " ", kTraceB, " to 2"),
                                   absl::StrCat(raw, " - to 2"),
                               }));
  ASSERT_TRUE(WaitFor([&] { return one->count() == 4 && two->count() == 4; }, absl::Seconds(20)));
  EXPECT_EQ(two->ids(), (std::vector<std::string>{*traced, *untraced, *async, raw}));

  // A resume reads the history from Redis (XRANGE), traceparents with it.
  auto resumed = harness.Subscribe(*traced);
  ASSERT_TRUE(
      WaitFor([&] { return resumed->count() == 3 && observer->count() == 7; }, absl::Seconds(20)))
      << observer->count();
  std::vector<std::string> lines = observer->lines();
  EXPECT_EQ(std::vector<std::string>(lines.begin() + 4, lines.end()),
            (std::vector<std::string>{
                absl::StrCat(*untraced, " - to 1 replay"),
                absl::StrCat(*async, " ", kTraceB, " to 1 replay"),
                absl::StrCat(raw, " - to 1 replay"),
            }));
  EXPECT_GE(b->Stats().replay_reads, 1u);
  EXPECT_EQ(b->Stats().replay_pages_from_window, 0u);
}

TEST_F(RedisTopicTest, TheResumeWindowKeepsEachEventsTraceparent) {
  auto topic = MakeTopic("traced-window");
  ASSERT_NE(topic, nullptr);
  auto observer = std::make_shared<RecordingObserver>();
  topic->OnEvent(observer->Callback());
  TopicHarness harness(topic.get());
  std::vector<std::string> ids;
  for (const char* traceparent : {kTraceA, "", kTraceB}) {
    absl::StatusOr<std::string> id = topic->Publish(ChatMessage("m"), traceparent);
    ASSERT_TRUE(id.ok()) << id.status();
    ids.push_back(*id);
  }
  // Read back live (nobody subscribed here: to 0), and into the window.
  ASSERT_TRUE(WaitFor([&] { return observer->count() == 3; }, absl::Seconds(20)));
  EXPECT_EQ(observer->lines(), (std::vector<std::string>{
                                   absl::StrCat(ids[0], " ", kTraceA, " to 0"),
                                   absl::StrCat(ids[1], " - to 0"),
                                   absl::StrCat(ids[2], " ", kTraceB, " to 0"),
                               }));
  auto resumed = harness.Subscribe(ids[0]);
  ASSERT_TRUE(
      WaitFor([&] { return resumed->count() == 2 && observer->count() == 5; }, absl::Seconds(20)));
  std::vector<std::string> lines = observer->lines();
  EXPECT_EQ(std::vector<std::string>(lines.begin() + 3, lines.end()),
            (std::vector<std::string>{
                absl::StrCat(ids[1], " - to 1 replay"),
                absl::StrCat(ids[2], " ", kTraceB, " to 1 replay"),
            }));
  EXPECT_EQ(topic->Stats().replay_reads, 0u);  // all from the window
}

}  // namespace
}  // namespace gravity::server
