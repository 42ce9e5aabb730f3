// The bridge's connection layer from outside (a socket, a backend, a
// shutdown): a connection's life around the calls it serves, and the bounds
// on what one client can make the bridge hold. Each test is the regression
// test of a bug found in session.cc; the backend here records what reached it
// (calls started, cancels), so a call left running shows.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bridge/bridge.h"
#include "bridge/internal/upstream_call.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "server/service.h"
#include "server/unary.h"
#include "streaming/v1/streaming.pb.h"
#include "tests/bridge/holding_backend.h"
#include "tests/bridge/http_test_client.h"
#include "tests/server/test_server.h"
#include "tests/testing/sanitizers.h"
#include "tests/testing/wait_for.h"

namespace gravity::bridge {
namespace {

using streaming::v1::EchoReply;
using streaming::v1::EchoRequest;
using streaming::v1::PingReply;
using streaming::v1::PingRequest;
using testing::HttpConnection;
using testing::HttpResponse;

// Sanitizer builds run several times slower.
const absl::Duration kPromptly = testing::kSanitizedBuild ? absl::Seconds(3) : absl::Seconds(1);

using testing::HoldingBackend;

class ConnectionTest : public ::testing::Test {
 protected:
  void StartBridge(BridgeOptions options = {}) {
    options.listen = "127.0.0.1:0";
    options.retry_jitter = 0;  // exact Retry-After values
    options.threads = 2;
    auto descriptors = DescriptorsOfLinkedServices({"streaming.v1.Streaming"});
    ASSERT_TRUE(descriptors.ok()) << descriptors.status();
    auto bridge = Bridge::Start(options, backend_.Channel(), *descriptors);
    ASSERT_TRUE(bridge.ok()) << bridge.status();
    bridge_ = std::move(*bridge);
  }

  int Connect() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(bridge_->port()));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    timeval timeout{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    return fd;
  }

  static void Send(int fd, const std::string& bytes) {
    ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }

  // Closes `fd` with a reset (RST), as a crashed client or a killed tab does.
  static void Reset(int fd) {
    linger hard{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    ::close(fd);
  }

  // Reads from `fd` until `needle` shows up (true) or the read timeout.
  static bool ReadUntil(int fd, const std::string& needle, std::string* seen) {
    char chunk[4096];
    while (seen->find(needle) == std::string::npos) {
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      seen->append(chunk, static_cast<size_t>(n));
    }
    return true;
  }

  static std::string EchoPost(const std::string& body, const std::string& extra = "") {
    return absl::StrCat(
        "POST /streaming.v1.Streaming/Echo HTTP/1.1\r\nHost: x\r\nContent-Type: "
        "application/json\r\n",
        extra, "Content-Length: ", body.size(), "\r\n\r\n", body);
  }

  HoldingBackend backend_;
  std::unique_ptr<Bridge> bridge_;
};

// Bug: during a slow unary call only the disconnect watch held the session;
// a client that sent its next request early made the watch let go, and the
// session was freed: the connection reset, no reply, the call left running.
TEST_F(ConnectionTest, ASlowUnaryCallWithAPipelinedRequestAnswersBothInOrder) {
  // The bug showed once the session's last timer (the read deadline) fired.
  BridgeOptions options;
  options.header_timeout = absl::Milliseconds(300);
  StartBridge(options);
  const int fd = Connect();
  Send(fd, EchoPost(R"({"text":"slow"})"));
  ASSERT_TRUE(
      testing::WaitFor([&] { return backend_.unary_started.load() == 1; }, absl::Seconds(5)));
  Send(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  absl::SleepFor(absl::Milliseconds(1500));  // the call is still held
  EXPECT_EQ(backend_.unary_cancelled.load(), 0);
  EXPECT_EQ(backend_.AnswerAll("done"), 1);
  std::string seen;
  ASSERT_TRUE(ReadUntil(fd, "{\"status\":\"SERVING\"}\n", &seen)) << seen;
  const size_t reply = seen.find("{\"text\":\"done\"}\n");
  const size_t health = seen.find("{\"status\":\"SERVING\"}\n");
  ASSERT_NE(reply, std::string::npos) << seen;
  EXPECT_LT(reply, health) << seen;
  EXPECT_TRUE(absl::StartsWith(seen, "HTTP/1.1 200 OK\r\n")) << seen;
  ::close(fd);
}

// Bug: once a byte of a next request waited unread, the disconnect watch
// stopped, and a client that then reset its connection was never noticed:
// its stream kept its upstream call and its max_streams slot.
TEST_F(ConnectionTest, AResetAfterAPipelinedByteFreesTheStreamAndCancelsItsCall) {
  StartBridge();
  constexpr int kStreams = 20;
  std::vector<int> fds;
  for (int i = 0; i < kStreams; ++i) {
    const int fd = Connect();
    Send(fd,
         "GET /streaming.v1.Streaming/Ping HTTP/1.1\r\nHost: x\r\n"
         "Accept: application/x-ndjson\r\n\r\n");
    std::string seen;
    ASSERT_TRUE(ReadUntil(fd, "{\"result\":", &seen)) << seen;
    Send(fd, "G");
    fds.push_back(fd);
  }
  ASSERT_TRUE(testing::WaitFor([&] { return backend_.streams_started.load() == kStreams; },
                               absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(200));  // every watch has seen its byte
  EXPECT_EQ(bridge_->active_streams(), kStreams);
  const absl::Time reset_at = absl::Now();
  for (int fd : fds) Reset(fd);
  EXPECT_TRUE(testing::WaitFor(
      [&] { return bridge_->active_streams() == 0 && backend_.streams_cancelled == kStreams; },
      absl::Seconds(5)));
  EXPECT_LT(absl::Now() - reset_at, kPromptly);
  EXPECT_EQ(bridge_->active_streams(), 0);
  EXPECT_EQ(backend_.streams_cancelled.load(), kStreams);
}

// Bug: a unary call in flight at shutdown was left running; the client got a
// closed connection with no answer and the backend's cancel came only when
// the event loop was torn down.
TEST_F(ConnectionTest, ShutdownAnswersAUnaryCallInFlight503AndCancelsIt) {
  BridgeOptions options;
  options.drain_timeout = absl::Seconds(2);
  StartBridge(options);
  HttpConnection connection(bridge_->port());
  connection.SendRequest("POST", "/streaming.v1.Streaming/Echo", {}, R"({"text":"slow"})");
  ASSERT_TRUE(
      testing::WaitFor([&] { return backend_.unary_started.load() == 1; }, absl::Seconds(5)));
  const absl::Time began = absl::Now();
  std::thread shutdown([&] { bridge_->Shutdown(); });
  HttpResponse response = connection.ReadResponse();
  shutdown.join();
  EXPECT_LT(absl::Now() - began, kPromptly);
  EXPECT_EQ(response.status, 503) << response.error << response.body;
  EXPECT_EQ(response.header("retry-after"), "2");
  EXPECT_EQ(response.header("connection"), "close");
  EXPECT_TRUE(absl::StartsWith(response.body, "{\"code\":14,")) << response.body;
  EXPECT_TRUE(
      testing::WaitFor([&] { return backend_.unary_cancelled.load() == 1; }, absl::Seconds(5)));
}

// Bug: max_streams was check-then-act: concurrent opens could pass it.
TEST_F(ConnectionTest, MaxStreamsHoldsUnderABurstOfConcurrentOpens) {
  BridgeOptions options;
  options.max_streams = 50;
  StartBridge(options);
  constexpr int kOpens = 100;
  std::vector<int> fds(kOpens);
  for (int i = 0; i < kOpens; ++i) fds[i] = Connect();
  // Every request goes out at once, from several threads.
  std::vector<std::thread> senders;
  for (int t = 0; t < 4; ++t) {
    senders.emplace_back([&, t] {
      for (int i = t; i < kOpens; i += 4) {
        Send(fds[i], "GET /streaming.v1.Streaming/Ping HTTP/1.1\r\nHost: x\r\n\r\n");
      }
    });
  }
  for (auto& sender : senders) sender.join();
  int streaming = 0;
  int refused = 0;
  for (int fd : fds) {
    std::string seen;
    ReadUntil(fd, "\r\n\r\n", &seen);
    if (absl::StartsWith(seen, "HTTP/1.1 200 ")) ++streaming;
    if (absl::StartsWith(seen, "HTTP/1.1 503 ")) {
      ++refused;
      EXPECT_TRUE(absl::StrContains(seen, "Retry-After: ")) << seen;
    }
  }
  EXPECT_EQ(streaming, 50);
  EXPECT_EQ(refused, 50);
  EXPECT_LE(bridge_->active_streams(), 50);
  for (int fd : fds) ::close(fd);
  EXPECT_TRUE(testing::WaitFor([&] { return bridge_->active_streams() == 0; }, absl::Seconds(5)));
}

// Unary calls in flight are bounded too: past max_unary_calls, 503 with
// Retry-After, and nothing reaches the backend.
TEST_F(ConnectionTest, UnaryCallsInFlightAreLimited) {
  BridgeOptions options;
  options.max_unary_calls = 5;
  StartBridge(options);
  std::vector<std::unique_ptr<HttpConnection>> held;
  for (int i = 0; i < 5; ++i) {
    held.push_back(std::make_unique<HttpConnection>(bridge_->port()));
    held.back()->SendRequest("POST", "/streaming.v1.Streaming/Echo", {}, "{}");
  }
  ASSERT_TRUE(
      testing::WaitFor([&] { return backend_.unary_started.load() == 5; }, absl::Seconds(5)));
  for (int i = 0; i < 3; ++i) {
    HttpResponse refused =
        testing::HttpRequest(bridge_->port(), "POST", "/streaming.v1.Streaming/Echo", {}, "{}");
    EXPECT_EQ(refused.status, 503) << refused.body;
    EXPECT_FALSE(refused.header("retry-after").empty());
    EXPECT_TRUE(absl::StrContains(refused.body, "limit of unary calls")) << refused.body;
  }
  EXPECT_EQ(backend_.unary_started.load(), 5);
  EXPECT_EQ(backend_.AnswerAll("ok"), 5);
  for (auto& connection : held) EXPECT_EQ(connection->ReadResponse().status, 200);
  // The slots are back.
  held[0]->SendRequest("POST", "/streaming.v1.Streaming/Echo", {}, "{}");
  ASSERT_TRUE(
      testing::WaitFor([&] { return backend_.unary_started.load() == 6; }, absl::Seconds(5)));
  backend_.AnswerAll("again");
  EXPECT_EQ(held[0]->ReadResponse().status, 200);
}

// A head that came, a body that did not: 408 with a Status JSON, then close
// (a head that never completes still gets nothing: see bad_input_test).
TEST_F(ConnectionTest, ABodyThatDoesNotArriveInTimeIs408) {
  BridgeOptions options;
  options.header_timeout = absl::Milliseconds(300);
  StartBridge(options);
  const int fd = Connect();
  Send(fd,
       "POST /streaming.v1.Streaming/Echo HTTP/1.1\r\nHost: x\r\n"
       "Content-Type: application/json\r\nContent-Length: 20\r\n\r\n{\"te");
  std::string seen;
  char chunk[4096];
  ssize_t n;
  while ((n = ::recv(fd, chunk, sizeof chunk, 0)) > 0) seen.append(chunk, static_cast<size_t>(n));
  ::close(fd);
  EXPECT_TRUE(absl::StartsWith(seen, "HTTP/1.1 408 Request Timeout\r\n")) << seen;
  EXPECT_TRUE(absl::StrContains(seen, "Connection: close\r\n")) << seen;
  EXPECT_TRUE(absl::StrContains(seen, "{\"code\":3,\"message\":\"the request body did not arrive"))
      << seen;
  EXPECT_EQ(backend_.unary_started.load(), 0);
}

// A unary reply is bounded, as protobuf and as JSON (which can be several
// times bigger): over it, 502 with RESOURCE_EXHAUSTED, and the connection
// serves on.
TEST_F(ConnectionTest, AUnaryReplyOverTheBoundIs502) {
  BridgeOptions options;
  options.max_reply_bytes = 1000;
  StartBridge(options);
  HttpConnection connection(bridge_->port());
  auto answer = [&](const std::string& text) {
    connection.SendRequest("POST", "/streaming.v1.Streaming/Echo", {}, "{}");
    EXPECT_TRUE(testing::WaitFor([&] { return backend_.AnswerAll(text) == 1; }, absl::Seconds(5)));
    return connection.ReadResponse();
  };
  HttpResponse big = answer(std::string(2000, 'a'));  // over as protobuf
  EXPECT_EQ(big.status, 502);
  EXPECT_TRUE(absl::StartsWith(big.body, "{\"code\":8,")) << big.body;
  EXPECT_TRUE(absl::StrContains(big.body, "--max_reply_bytes")) << big.body;
  HttpResponse escaped = answer(std::string(300, '<'));  // 300 bytes; 1,800 as JSON
  EXPECT_EQ(escaped.status, 502);
  EXPECT_TRUE(absl::StrContains(escaped.body, "--max_reply_bytes")) << escaped.body;
  HttpResponse fits = answer("fits");
  EXPECT_EQ(fits.status, 200);
  EXPECT_EQ(fits.body, "{\"text\":\"fits\"}\n");
}

// Urgent (out-of-band) data while a next request waits unread: the error
// watch used to wake at once, for ever, spinning an I/O thread.
TEST_F(ConnectionTest, UrgentDataDoesNotSpinTheConnectionsThread) {
  StartBridge();
  const int fd = Connect();
  Send(fd, "GET /streaming.v1.Streaming/Ping HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string seen;
  ASSERT_TRUE(ReadUntil(fd, "data: ", &seen)) << seen;
  Send(fd, "G");
  ASSERT_EQ(::send(fd, "x", 1, MSG_OOB | MSG_NOSIGNAL), 1);
  absl::SleepFor(absl::Milliseconds(200));
  rusage before{};
  ::getrusage(RUSAGE_SELF, &before);
  absl::SleepFor(absl::Seconds(1));
  rusage after{};
  ::getrusage(RUSAGE_SELF, &after);
  auto seconds = [](const rusage& usage) {
    return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
           (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  };
  // An idle process uses next to nothing; a spinning thread, a whole core.
  EXPECT_LT(seconds(after) - seconds(before), 0.5);
  EXPECT_EQ(bridge_->active_streams(), 1);  // the stream is still served
  Reset(fd);
  EXPECT_TRUE(testing::WaitFor([&] { return bridge_->active_streams() == 0; }, absl::Seconds(5)));
}

// Asio makes sockets without close-on-exec; the bridge's must have it, or a
// child process started by an application that embeds the bridge inherits
// its connections and holds them open after the bridge closed them.
TEST_F(ConnectionTest, TheBridgesSocketsAreNotInheritedByChildProcesses) {
  StartBridge();
  HttpConnection connection(bridge_->port());
  connection.SendRequest("GET", "/healthz");
  ASSERT_EQ(connection.ReadResponse().status, 200);
  int listening = 0;
  int accepted = 0;
  for (int fd = 3; fd < 4096; ++fd) {
    sockaddr_in local{};
    socklen_t length = sizeof local;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) != 0 ||
        local.sin_family != AF_INET || ntohs(local.sin_port) != bridge_->port()) {
      continue;
    }
    sockaddr_in peer{};
    length = sizeof peer;
    const bool connected = ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &length) == 0;
    ++(connected ? accepted : listening);
    EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC) << (connected ? "accepted" : "listening");
  }
  EXPECT_EQ(listening, 1);
  EXPECT_EQ(accepted, 1);
}

// An encoder that blocks until told, to hold a gRPC thread mid-encoding.
class BlockingEncoder : public internal::MessageEncoder {
 public:
  absl::Status Append(const grpc::ByteBuffer&, std::string* out) override {
    entered.Notify();
    release.WaitForNotification();
    out->append("event");
    return absl::OkStatus();
  }
  absl::Notification entered;
  absl::Notification release;
};

class CountingListener : public internal::UpstreamListener {
 public:
  void OnUpstreamAccepted() override {}
  bool OnUpstreamEvent(const absl::Status&, std::string*) override {
    ++events;
    return true;
  }
  void OnUpstreamDone(const grpc::Status&) override { ++dones; }
  std::atomic<int> events{0};
  std::atomic<int> dones{0};
};

// Bug: Release() took the call's lock, which a gRPC thread held across the
// listener's encoding of a whole message: the releasing I/O thread (and every
// connection on it) stalled behind one big message. Now the encoding runs
// outside that lock, and Release() returns at once; the listener gets nothing
// afterwards.
TEST_F(ConnectionTest, ReleaseDoesNotWaitForAMessageBeingEncoded) {
  grpc::GenericStub stub(backend_.Channel());
  auto encoder = std::make_shared<BlockingEncoder>();
  CountingListener listener;
  auto live = std::make_shared<std::atomic<int64_t>>(0);
  PingRequest request;
  grpc::Slice slice(request.SerializeAsString());
  grpc::ByteBuffer payload(&slice, 1);
  internal::UpstreamCall* call = internal::UpstreamCall::Start(
      stub, "/streaming.v1.Streaming/Ping", payload, {}, &listener, encoder, live);
  ASSERT_TRUE(encoder->entered.WaitForNotificationWithTimeout(absl::Seconds(5)));
  auto released = std::async(std::launch::async, [call] { call->Release(); });
  EXPECT_EQ(released.wait_for(std::chrono::seconds(2)), std::future_status::ready)
      << "Release() waited for the encoding";
  encoder->release.Notify();
  released.wait();
  EXPECT_TRUE(testing::WaitFor([&] { return live->load() == 0; }, absl::Seconds(5)));
  EXPECT_EQ(listener.events.load(), 0);
  EXPECT_EQ(listener.dones.load(), 0);
}

}  // namespace
}  // namespace gravity::bridge
