// chat-server (argv[1]) as a process, read with the native client: Post and
// Subscribe in memory; then two chat-servers on one redis-server (started by
// the test): a subscriber on the first reads with Open, the first is
// SIGKILLed (the cut), messages are posted on the second meanwhile, and the
// subscriber resumes on the second with Open + last-event-id: every message
// once, in order. And Post with Redis hung (SIGSTOP): the server's threads
// are never held, every Post ends with UNAVAILABLE; a room being created
// while Redis hangs never stalls Posts to rooms that exist. Rooms are
// bounded (--max_rooms), idle ones freed, bad ids create none; a Redis that
// refuses connections is UNAVAILABLE and never kills the server (SIGPIPE);
// a server with many rooms on Redis exits at once.
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdlib.h>

#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "chat/v1/chat.grpc.pb.h"
#include "client/client.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "tests/client/subprocess.h"
#include "tests/server/redis_server.h"
#include "tests/testing/wait_for.h"

namespace gravity::examples {
namespace {

const char* chat_server_path = nullptr;

using chat::v1::Chat;
using chat::v1::Message;
using chat::v1::PostRequest;
using chat::v1::SubscribeRequest;
using testing::RedisAdmin;
using testing::RedisServer;
using testing::Subprocess;
using testing::WaitFor;

struct ChatServer {
  std::unique_ptr<Subprocess> process;
  std::string address;
  std::unique_ptr<Chat::Stub> stub;
};

// "chat-server listening on 127.0.0.1:PORT (rooms in ...)"
std::optional<ChatServer> StartChatServer(const std::vector<std::string>& extra_args) {
  if (chat_server_path == nullptr) {
    ADD_FAILURE() << "usage: chat_server_test <chat-server>";
    return std::nullopt;
  }
  std::vector<std::string> args = {chat_server_path, "--listen=127.0.0.1:0", "--drain=0s"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  ChatServer server;
  server.process = Subprocess::Start(args);
  if (server.process == nullptr) return std::nullopt;
  std::optional<std::string> line = server.process->ReadLine(absl::Seconds(20));
  if (!line.has_value() || !absl::StartsWith(*line, "chat-server listening on ")) {
    ADD_FAILURE() << "chat-server did not start: " << line.value_or("(nothing)");
    return std::nullopt;
  }
  std::string rest(absl::StripPrefix(*line, "chat-server listening on "));
  server.address = rest.substr(0, rest.find(' '));
  server.stub =
      Chat::NewStub(grpc::CreateChannel(server.address, grpc::InsecureChannelCredentials()));
  return server;
}

absl::StatusOr<Message> Post(Chat::Stub& stub, const std::string& room, const std::string& text,
                             absl::Duration deadline = absl::Seconds(10),
                             const std::string& traceparent = "") {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  if (!traceparent.empty()) context.AddMetadata("traceparent", traceparent);
  PostRequest request;
  request.set_room(room);
  request.set_text(text);
  Message reply;
  grpc::Status status = stub.Post(&context, request, &reply);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  return reply;
}

// A redis-server in the test's temporary directory.
std::unique_ptr<RedisServer> StartRedis() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/chat-redis-XXXXXX");
  if (mkdtemp(dir.data()) == nullptr) return nullptr;
  return RedisServer::Start(dir);
}

// The status a Subscribe ends with: refused before it is accepted, or ended
// later (bounded by a 10 s deadline). For streams expected to end.
absl::Status SubscribeEndStatus(Chat::Stub& stub, const std::string& room,
                                const std::string& last_event_id) {
  client::CallOptions options;
  options.WithTimeout(absl::Seconds(10));
  if (!last_event_id.empty()) options.WithLastEventId(last_event_id);
  SubscribeRequest request;
  request.set_room(room);
  auto stream = client::Open(stub, &Chat::Stub::async::Subscribe, request, options);
  if (!stream.ok()) return stream.status();
  Message message;
  while (stream->Next(&message)) {
  }
  return stream->status();
}

SubscribeRequest Room(const std::string& room) {
  SubscribeRequest request;
  request.set_room(room);
  return request;
}

TEST(ChatServerTest, InMemoryPostSubscribeAndResumeAfterACut) {
  std::optional<ChatServer> server = StartChatServer({});
  ASSERT_TRUE(server.has_value());
  auto first = client::Open(server->stub, &Chat::Stub::async::Subscribe, Room("lobby"),
                            client::CallOptions().WithTimeout(absl::Seconds(30)));
  ASSERT_TRUE(first.ok()) << first.status();
  std::vector<std::string> posted;
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<Message> stored = Post(*server->stub, "lobby", absl::StrCat("m", i));
    ASSERT_TRUE(stored.ok()) << stored.status();
    EXPECT_EQ(stored->id(), absl::StrCat(i + 1));  // in-memory ids
    EXPECT_EQ(stored->room(), "lobby");
    posted.push_back(stored->id());
  }
  Message message;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(first->Next(&message));
    EXPECT_EQ(message.id(), posted[i]);
    EXPECT_EQ(message.text(), absl::StrCat("m", i));
  }
  first->Cancel();  // the cut, after message 3
  auto resumed = client::Open(
      server->stub, &Chat::Stub::async::Subscribe, Room("lobby"),
      client::CallOptions().WithTimeout(absl::Seconds(30)).WithLastEventId(message.id()));
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  ASSERT_TRUE(Post(*server->stub, "lobby", "m5").ok());
  for (const std::string want : {"m3", "m4", "m5"}) {
    ASSERT_TRUE(resumed->Next(&message));
    EXPECT_EQ(message.text(), want);
  }
  // Bad input is refused before the stream is accepted.
  auto bad_id =
      client::Open(server->stub, &Chat::Stub::async::Subscribe, Room("lobby"),
                   client::CallOptions().WithLastEventId("x").WithTimeout(absl::Seconds(10)));
  EXPECT_EQ(bad_id.status().code(), absl::StatusCode::kInvalidArgument) << bad_id.status();
  auto bad_room = client::Open(server->stub, &Chat::Stub::async::Subscribe, Room("a b"),
                               client::CallOptions().WithTimeout(absl::Seconds(10)));
  EXPECT_EQ(bad_room.status().code(), absl::StatusCode::kInvalidArgument) << bad_room.status();
  EXPECT_EQ(Post(*server->stub, "lobby", "").status().code(), absl::StatusCode::kInvalidArgument);

  // On exit it prints each room's counters.
  resumed->Cancel();
  server->process->Kill(SIGTERM);
  Subprocess::Result result = server->process->Finish(absl::Seconds(20));
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(absl::StrContains(
      result.out, "chat-server stats room=lobby published=6 delivered=6 subscribers=0 replays=1"))
      << result.out;
}

TEST(ChatServerTest, ResumesOnAnotherInstanceThroughRedisAfterTheFirstIsKilled) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/chat-redis-XXXXXX");
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  std::unique_ptr<RedisServer> redis = RedisServer::Start(dir);
  ASSERT_NE(redis, nullptr) << "redis-server did not start (Debian package redis-server)";
  const std::string redis_flag = "--redis=" + redis->address();
  std::optional<ChatServer> a = StartChatServer({redis_flag});
  std::optional<ChatServer> b = StartChatServer({redis_flag});
  ASSERT_TRUE(a.has_value() && b.has_value());

  auto on_a = client::Open(a->stub, &Chat::Stub::async::Subscribe, Room("ops"),
                           client::CallOptions().WithTimeout(absl::Seconds(30)));
  ASSERT_TRUE(on_a.ok()) << on_a.status();
  std::vector<std::string> posted;
  for (int i = 0; i < 10; ++i) {
    // Alternately on both instances: one log.
    absl::StatusOr<Message> stored = Post(*(i % 2 == 0 ? a : b)->stub, "ops", absl::StrCat("m", i));
    ASSERT_TRUE(stored.ok()) << stored.status();
    posted.push_back(stored->id());
  }
  Message message;
  std::vector<std::string> received;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(on_a->Next(&message));
    received.push_back(message.id());
  }
  a->process->Kill(SIGKILL);
  while (on_a->Next(&message)) received.push_back(message.id());
  EXPECT_EQ(on_a->status().code(), absl::StatusCode::kUnavailable) << on_a->status();
  // Posted while the subscriber is away.
  for (int i = 10; i < 15; ++i) {
    absl::StatusOr<Message> stored = Post(*b->stub, "ops", absl::StrCat("m", i));
    ASSERT_TRUE(stored.ok()) << stored.status();
    posted.push_back(stored->id());
  }
  auto on_b = client::Open(
      b->stub, &Chat::Stub::async::Subscribe, Room("ops"),
      client::CallOptions().WithTimeout(absl::Seconds(30)).WithLastEventId(received.back()));
  ASSERT_TRUE(on_b.ok()) << on_b.status();
  for (int i = 15; i < 20; ++i) {
    absl::StatusOr<Message> stored = Post(*b->stub, "ops", absl::StrCat("m", i));
    ASSERT_TRUE(stored.ok()) << stored.status();
    posted.push_back(stored->id());
  }
  while (received.size() < posted.size() && on_b->Next(&message)) {
    received.push_back(message.id());
    EXPECT_EQ(message.text(), absl::StrCat("m", received.size() - 1));
  }
  EXPECT_EQ(received, posted);  // every message once, in order, across the cut
  on_b->Cancel();
}

// Post never waits for Redis on a gRPC thread: with Redis hung (SIGSTOP) and
// a publish timeout of 5 s, many concurrent Posts are all pending or failing,
// yet a Subscribe started meanwhile is accepted at once and a Post with bad
// input is answered at once; every Post ends with UNAVAILABLE (never a
// client deadline), and once Redis answers again posts reach subscribers.
TEST(ChatServerTest, PostsWhileRedisHangsNeverHoldTheServersThreads) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/chat-redis-XXXXXX");
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  std::unique_ptr<RedisServer> redis = RedisServer::Start(dir);
  ASSERT_NE(redis, nullptr) << "redis-server did not start (Debian package redis-server)";
  std::optional<ChatServer> server =
      StartChatServer({"--redis=" + redis->address(), "--redis_timeout=5s"});
  ASSERT_TRUE(server.has_value());
  // The room exists before Redis hangs (creating one is a Redis round trip).
  ASSERT_TRUE(Post(*server->stub, "hung", "before").ok());

  redis->Pause();
  constexpr int kPosts = 32;
  std::vector<absl::Status> results(kPosts);
  std::vector<absl::Duration> took(kPosts);
  std::vector<std::thread> posters;
  for (int i = 0; i < kPosts; ++i) {
    posters.emplace_back([&, i] {
      const absl::Time start = absl::Now();
      // The deadline is past the server's bound (2 x 5 s at most: in the
      // queue, then in XADD): an answer, not DEADLINE_EXCEEDED.
      results[i] =
          Post(*server->stub, "hung", absl::StrCat("while hung ", i), absl::Seconds(30)).status();
      took[i] = absl::Now() - start;
    });
  }
  absl::SleepFor(absl::Milliseconds(300));  // the Posts are in (not needed for correctness)
  const absl::Time before = absl::Now();
  auto subscriber = client::Open(server->stub, &Chat::Stub::async::Subscribe, Room("hung"),
                                 client::CallOptions().WithTimeout(absl::Seconds(60)));
  const absl::Duration accept_took = absl::Now() - before;
  ASSERT_TRUE(subscriber.ok()) << subscriber.status();
  // Far below the 5 s a single blocked XADD would hold a thread.
  EXPECT_LT(accept_took, absl::Seconds(3));
  EXPECT_EQ(Post(*server->stub, "hung", "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(absl::Now() - before, absl::Seconds(3));
  for (std::thread& poster : posters) poster.join();
  for (int i = 0; i < kPosts; ++i) {
    EXPECT_EQ(results[i].code(), absl::StatusCode::kUnavailable) << i << ": " << results[i];
    EXPECT_LT(took[i], absl::Seconds(15)) << i;
  }

  redis->Resume();
  absl::StatusOr<Message> after;
  const absl::Time resume_deadline = absl::Now() + absl::Seconds(20);
  do {
    after = Post(*server->stub, "hung", "after");
  } while (!after.ok() && absl::Now() < resume_deadline &&
           (absl::SleepFor(absl::Milliseconds(100)), true));
  ASSERT_TRUE(after.ok()) << after.status();
  // The subscriber gets it (an XADD that timed out may have been stored
  // when Redis woke up: it comes first, once).
  Message message;
  std::vector<std::string> ids;
  while ((ids.empty() || ids.back() != after->id()) && subscriber->Next(&message)) {
    ids.push_back(message.id());
  }
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.back(), after->id());
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size());
  subscriber->Cancel();
}

// Issue 16 #8: creating a room (a Redis round trip, 500 ms time-out) held
// the one rooms lock, so with Redis hung (SIGSTOP) and 20 Posts to new rooms,
// a Post to an existing room waited about 10 s. Rooms are now created outside
// that lock: the Post to the existing room answers within its own publish
// bound (UNAVAILABLE, Redis is hung) while the creations are still waiting.
TEST(ChatServerTest, PostsToExistingRoomsAnswerWhileNewRoomsWaitForAHungRedis) {
  std::unique_ptr<RedisServer> redis = StartRedis();
  ASSERT_NE(redis, nullptr) << "redis-server did not start (Debian package redis-server)";
  std::optional<ChatServer> server =
      StartChatServer({"--redis=" + redis->address(), "--redis_timeout=500ms"});
  ASSERT_TRUE(server.has_value());
  ASSERT_TRUE(Post(*server->stub, "existing", "before").ok());

  redis->Pause();
  constexpr int kNewRooms = 20;
  std::vector<absl::Status> created(kNewRooms);
  std::vector<std::thread> creators;
  for (int i = 0; i < kNewRooms; ++i) {
    creators.emplace_back([&, i] {
      created[i] =
          Post(*server->stub, absl::StrCat("new-", i), "hello", absl::Seconds(30)).status();
    });
  }
  absl::SleepFor(absl::Milliseconds(200));  // the creations are waiting for Redis
  const absl::Time start = absl::Now();
  const absl::Status existing = Post(*server->stub, "existing", "while hung").status();
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(existing.code(), absl::StatusCode::kUnavailable) << existing;
  // Its own bound is 2 x 500 ms (queue, then XADD); serialized behind the
  // creations it took about 20 x 500 ms.
  EXPECT_LT(took, absl::Seconds(2)) << took;
  std::cout << "Post to an existing room while " << kNewRooms
            << " rooms were being created on a hung Redis: " << took << std::endl;
  for (std::thread& creator : creators) creator.join();
  for (int i = 0; i < kNewRooms; ++i) {
    EXPECT_EQ(created[i].code(), absl::StatusCode::kUnavailable) << i << ": " << created[i];
  }
  redis->Resume();
  absl::StatusOr<Message> after;
  const absl::Time until = absl::Now() + absl::Seconds(20);
  do {
    after = Post(*server->stub, "new-0", "after");
  } while (!after.ok() && absl::Now() < until && (absl::SleepFor(absl::Milliseconds(100)), true));
  EXPECT_TRUE(after.ok()) << after.status();
}

// Issue 16 #3: rooms anyone can create are bounded. A Subscribe with a bad
// last-event-id is refused before a room is made for it; past --max_rooms a
// new room is RESOURCE_EXHAUSTED; a room with no subscriber and no post for
// --room_idle_timeout is freed (one with a subscriber is kept).
TEST(ChatServerTest, RoomsAreBoundedIdleOnesFreedAndBadIdsCreateNone) {
  std::optional<ChatServer> server = StartChatServer({"--max_rooms=3", "--room_idle_timeout=1s"});
  ASSERT_TRUE(server.has_value());
  for (int i = 0; i < 20; ++i) {
    const absl::Status status = SubscribeEndStatus(*server->stub, absl::StrCat("bad-", i), "x");
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  }
  // None of those took a room: three fit.
  for (const std::string room : {"r1", "r2", "r3"}) {
    absl::StatusOr<Message> posted = Post(*server->stub, room, "hi");
    EXPECT_TRUE(posted.ok()) << room << ": " << posted.status();
  }
  EXPECT_EQ(Post(*server->stub, "r4", "hi").status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(SubscribeEndStatus(*server->stub, "r4", "").code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Post(*server->stub, "r1", "existing rooms still take posts").ok());

  // r1 keeps a subscriber; r2 and r3 go idle and are freed.
  auto subscriber = client::Open(server->stub, &Chat::Stub::async::Subscribe, Room("r1"),
                                 client::CallOptions().WithTimeout(absl::Seconds(60)));
  ASSERT_TRUE(subscriber.ok()) << subscriber.status();
  absl::StatusOr<Message> posted;
  const absl::Time until = absl::Now() + absl::Seconds(10);
  do {
    absl::SleepFor(absl::Milliseconds(100));
    posted = Post(*server->stub, "r4", "after the idle ones went");
  } while (!posted.ok() && absl::Now() < until);
  ASSERT_TRUE(posted.ok()) << posted.status();
  // r2 and r3 went idle a moment apart, so the sweep that made room for r4
  // may not have freed the second yet: r5 fits once it has.
  do {
    posted = Post(*server->stub, "r5", "hi");
  } while (!posted.ok() && absl::Now() < until && (absl::SleepFor(absl::Milliseconds(100)), true));
  ASSERT_TRUE(posted.ok()) << posted.status();
  EXPECT_EQ(Post(*server->stub, "r6", "hi").status().code(), absl::StatusCode::kResourceExhausted);
  // r1 was kept for its subscriber, which still gets what is posted there.
  absl::StatusOr<Message> to_r1 = Post(*server->stub, "r1", "still here");
  ASSERT_TRUE(to_r1.ok()) << to_r1.status();
  Message message;
  ASSERT_TRUE(subscriber->Next(&message));
  EXPECT_EQ(message.id(), to_r1->id());
  subscriber->Cancel();
}

// Issue 16 #3 on Redis: each room cost threads and two Redis connections for
// the life of the process (30 rooms: 60 connections). Now the rooms of a
// chat-server share three connections whatever their number, and an idle
// room is freed.
TEST(ChatServerTest, RoomsOnRedisShareAFewConnections) {
  std::unique_ptr<RedisServer> redis = StartRedis();
  ASSERT_NE(redis, nullptr) << "redis-server did not start (Debian package redis-server)";
  RedisAdmin admin(redis->port());
  auto clients = [&] {
    const std::string info = admin.Run({"INFO", "clients"});
    const size_t at = info.find("connected_clients:");
    int count = -1;
    if (at != std::string::npos) count = std::atoi(info.c_str() + at + 18);
    return count;
  };
  std::optional<ChatServer> server =
      StartChatServer({"--redis=" + redis->address(), "--room_idle_timeout=1s"});
  ASSERT_TRUE(server.has_value());
  const int before = clients();
  constexpr int kRooms = 30;
  for (int i = 0; i < kRooms; ++i) {
    ASSERT_TRUE(Post(*server->stub, absl::StrCat("idle-", i), "hi").ok());
  }
  const int busy = clients();
  std::cout << kRooms << " rooms: " << busy - before << " Redis connections" << std::endl;
  EXPECT_LE(busy, before + 3);  // the reader's, the publisher's, the replays'
  // Idle rooms are freed (the server logs it); connections never grow.
  absl::SleepFor(absl::Seconds(2));
  EXPECT_LE(clients(), before + 3);
  // A freed room comes back on the next call, with its log intact.
  absl::StatusOr<Message> again = Post(*server->stub, "idle-0", "again");
  EXPECT_TRUE(again.ok()) << again.status();
}

// Issue 20 (trace context): a post's traceparent reaches the server's
// CallInfo and is kept with its Redis entry (visible with XRANGE), so a post
// can be followed to its deliveries; a post without one stores none.
TEST(ChatServerTest, APostsTraceparentIsKeptWithItsRedisEntry) {
  std::unique_ptr<RedisServer> redis = StartRedis();
  ASSERT_NE(redis, nullptr) << "redis-server did not start (Debian package redis-server)";
  RedisAdmin admin(redis->port());
  std::optional<ChatServer> server = StartChatServer({"--redis=" + redis->address()});
  ASSERT_TRUE(server.has_value());
  const std::string traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  // The newest entry's traceparent field ("" when it has none).
  auto last_traceparent = [&] {
    return admin.Run({"EVAL",
                      "local e = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1][2] "
                      "for i = 1, #e, 2 do if e[i] == 'traceparent' then return e[i + 1] end end "
                      "return ''",
                      "1", "gravity:topic:chat:traced"});
  };
  ASSERT_TRUE(Post(*server->stub, "traced", "hi", absl::Seconds(10), traceparent).ok());
  EXPECT_EQ(last_traceparent(), traceparent);
  ASSERT_TRUE(Post(*server->stub, "traced", "untraced").ok());
  EXPECT_EQ(last_traceparent(), "");
}

// Issues 16 #0 and #3: Redis at maxclients accepts a connection, answers an
// error and closes it; hiredis' next write raised SIGPIPE and killed
// chat-server, and a Post to a new room got INTERNAL (HTTP 500). Now the
// server survives, every such Post is UNAVAILABLE (503), and once Redis takes
// connections again the rooms work.
TEST(ChatServerTest, ARedisRefusingConnectionsIsUnavailableAndNeverKillsTheServer) {
  std::unique_ptr<RedisServer> redis = StartRedis();
  ASSERT_NE(redis, nullptr) << "redis-server did not start (Debian package redis-server)";
  std::optional<ChatServer> server = StartChatServer({"--redis=" + redis->address()});
  ASSERT_TRUE(server.has_value());
  ASSERT_TRUE(Post(*server->stub, "existing", "before").ok());

  RedisAdmin admin(redis->port());
  // Only the admin connection fits, and chat-server's are closed.
  ASSERT_EQ(admin.Run({"CONFIG", "SET", "maxclients", "1"}), "OK");
  ASSERT_NE(admin.Run({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"}), "0");
  const absl::Time until = absl::Now() + absl::Seconds(2);
  for (int i = 0; absl::Now() < until; ++i) {
    for (const std::string& room : {absl::StrCat("new-", i), std::string("existing")}) {
      const absl::Status status = Post(*server->stub, room, "refused").status();
      ASSERT_EQ(status.code(), absl::StatusCode::kUnavailable) << room << ": " << status;
    }
    const absl::Status subscribed = SubscribeEndStatus(*server->stub, absl::StrCat("sub-", i), "");
    ASSERT_EQ(subscribed.code(), absl::StatusCode::kUnavailable) << subscribed;
  }
  ASSERT_EQ(admin.Run({"CONFIG", "SET", "maxclients", "10000"}), "OK");
  absl::StatusOr<Message> after;
  const absl::Time recover_until = absl::Now() + absl::Seconds(20);
  do {
    after = Post(*server->stub, "existing", "after");
  } while (!after.ok() && absl::Now() < recover_until &&
           (absl::SleepFor(absl::Milliseconds(100)), true));
  ASSERT_TRUE(after.ok()) << after.status();
  server->process->Kill(SIGTERM);
  EXPECT_EQ(server->process->Finish(absl::Seconds(20)).exit_code, 0);
}

// Issue 16 #9: at exit every room's topic joined a reader blocked in XREAD
// BLOCK (about 0.9 s a room: 30 rooms took 26-29 s). Stop interrupts the
// reads now.
TEST(ChatServerTest, ExitsWithinSecondsWithManyRoomsOnRedis) {
  std::unique_ptr<RedisServer> redis = StartRedis();
  ASSERT_NE(redis, nullptr) << "redis-server did not start (Debian package redis-server)";
  std::optional<ChatServer> server = StartChatServer({"--redis=" + redis->address()});
  ASSERT_TRUE(server.has_value());
  constexpr int kRooms = 30;
  for (int i = 0; i < kRooms; ++i) {
    absl::StatusOr<Message> posted = Post(*server->stub, absl::StrCat("room-", i), "hi");
    ASSERT_TRUE(posted.ok()) << posted.status();
  }
  absl::SleepFor(absl::Milliseconds(300));  // every reader is in XREAD BLOCK
  const absl::Time start = absl::Now();
  server->process->Kill(SIGTERM);
  const Subprocess::Result result = server->process->Finish(absl::Seconds(20));
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_LT(took, absl::Seconds(5)) << took;
  std::cout << "chat-server with " << kRooms << " rooms on Redis exited in " << took << std::endl;
}

}  // namespace
}  // namespace gravity::examples

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc > 1) gravity::examples::chat_server_path = argv[1];
  return RUN_ALL_TESTS();
}
