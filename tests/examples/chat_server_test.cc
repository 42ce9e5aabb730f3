// chat-server (argv[1]) as a process, read with the native client: Post and
// Subscribe in memory; then two chat-servers on one redis-server (started by
// the test): a subscriber on the first reads with Open, the first is
// SIGKILLed (the cut), messages are posted on the second meanwhile, and the
// subscriber resumes on the second with Open + last-event-id: every message
// once, in order. And Post with Redis hung (SIGSTOP): the server's threads
// are never held, every Post ends with UNAVAILABLE.
#include <signal.h>
#include <stdlib.h>

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

namespace gravity::examples {
namespace {

const char* chat_server_path = nullptr;

using chat::v1::Chat;
using chat::v1::Message;
using chat::v1::PostRequest;
using chat::v1::SubscribeRequest;
using testing::RedisServer;
using testing::Subprocess;

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
                             absl::Duration deadline = absl::Seconds(10)) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
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

}  // namespace
}  // namespace gravity::examples

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc > 1) gravity::examples::chat_server_path = argv[1];
  return RUN_ALL_TESTS();
}
