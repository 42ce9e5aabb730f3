// client/async_stream.h (OpenAsync): the callback reader gives the same
// messages and statuses as the blocking reader for the same calls.
#include "client/async_stream.h"

#include <string>
#include <type_traits>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "streaming/v1/streaming.grpc.pb.h"
#include "tests/examples/example_server.h"

namespace gravity::client {
namespace {

using streaming::v1::PingReply;
using streaming::v1::Streaming;
using streaming::v1::StreamUsersRequest;
using testing::kAdminToken;

CallOptions TestOptions() { return CallOptions().WithTimeout(absl::Seconds(20)); }

// What a reader saw: the messages' seq (or ids) and the final status.
struct Outcome {
  std::vector<std::string> messages;
  absl::Status status;
};

template <typename T>
std::string Key(const T& message) {
  if constexpr (std::is_same_v<T, PingReply>) {
    return std::to_string(message.seq());
  } else {
    return "user";  // ids are random
  }
}

class AsyncStreamTest : public testing::ExampleServerTest {
 protected:
  template <typename Request, typename Response>
  Outcome Sync(void (Streaming::Stub::async::*method)(grpc::ClientContext*, const Request*,
                                                      grpc::ClientReadReactor<Response>*),
               const Request& request, const CallOptions& options) {
    Outcome outcome;
    auto stream = Open(stub_, method, request, options);
    if (!stream.ok()) {
      outcome.status = stream.status();
      return outcome;
    }
    for (const Response& message : *stream) outcome.messages.push_back(Key(message));
    outcome.status = stream->status();
    return outcome;
  }

  template <typename Request, typename Response>
  Outcome Async(void (Streaming::Stub::async::*method)(grpc::ClientContext*, const Request*,
                                                       grpc::ClientReadReactor<Response>*),
                const Request& request, const CallOptions& options) {
    absl::Mutex mu;
    Outcome outcome;
    absl::Notification done;
    OpenAsync(
        stub_, method, request, options,
        [&](const Response& message) {
          absl::MutexLock lock(&mu);
          outcome.messages.push_back(Key(message));
        },
        [&](absl::Status status) {
          absl::MutexLock lock(&mu);
          outcome.status = std::move(status);
          done.Notify();
        });
    EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
    absl::MutexLock lock(&mu);
    return outcome;
  }

  template <typename Request, typename Response>
  void ExpectParity(void (Streaming::Stub::async::*method)(grpc::ClientContext*, const Request*,
                                                           grpc::ClientReadReactor<Response>*),
                    const Request& request, const CallOptions& options) {
    Outcome sync = Sync(method, request, options);
    Outcome async = Async(method, request, options);
    EXPECT_EQ(async.messages, sync.messages);
    EXPECT_EQ(async.status, sync.status);
  }
};

TEST_F(AsyncStreamTest, HappyPathMatchesTheBlockingReader) {
  ExpectParity(&Streaming::Stub::async::Ping, FastPing(3), TestOptions());
  Outcome async = Async(&Streaming::Stub::async::Ping, FastPing(3), TestOptions());
  EXPECT_EQ(async.messages, (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_TRUE(async.status.ok());
}

TEST_F(AsyncStreamTest, GuardRejectionMatchesTheBlockingReader) {
  ExpectParity(&Streaming::Stub::async::StreamUsers, StreamUsersRequest(), TestOptions());
  Outcome async = Async(&Streaming::Stub::async::StreamUsers, StreamUsersRequest(), TestOptions());
  EXPECT_TRUE(async.messages.empty());
  EXPECT_EQ(async.status.code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(AsyncStreamTest, BearerTokenMatchesTheBlockingReader) {
  StreamUsersRequest request;
  request.set_count(2);
  request.set_interval_ms(5);
  ExpectParity(&Streaming::Stub::async::StreamUsers, request,
               TestOptions().WithBearerToken(kAdminToken));
}

TEST_F(AsyncStreamTest, ErrorMidStreamMatchesTheBlockingReader) {
  ExpectParity(&Streaming::Stub::async::Ping, FastPing(2, /*fail_code=*/9), TestOptions());
  Outcome async = Async(&Streaming::Stub::async::Ping, FastPing(2, 9), TestOptions());
  EXPECT_EQ(async.messages, (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(async.status.code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(AsyncStreamTest, HandlerRejectionMatchesTheBlockingReader) {
  ExpectParity(&Streaming::Stub::async::Ping, FastPing(-1), TestOptions());
}

TEST_F(AsyncStreamTest, ResumeMatchesTheBlockingReader) {
  ExpectParity(&Streaming::Stub::async::Ping, FastPing(4), TestOptions().WithLastEventId("2"));
}

TEST_F(AsyncStreamTest, DeadlineGivesTheSameStatusAsTheBlockingReader) {
  const CallOptions options = CallOptions().WithTimeout(absl::Milliseconds(200));
  Outcome sync = Sync(&Streaming::Stub::async::Ping, FastPing(1000, 0, 20), options);
  Outcome async = Async(&Streaming::Stub::async::Ping, FastPing(1000, 0, 20), options);
  EXPECT_EQ(sync.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(async.status.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(AsyncStreamTest, CancelFromAnotherThreadEndsWithCancelled) {
  absl::Notification first_message, done;
  absl::Status final_status;
  AsyncStream pings = OpenAsync(
      stub_, &Streaming::Stub::async::Ping, FastPing(100000, 0, 10), TestOptions(),
      [&](const PingReply&) {
        if (!first_message.HasBeenNotified()) first_message.Notify();
      },
      [&](absl::Status status) {
        final_status = std::move(status);
        done.Notify();
      });
  ASSERT_TRUE(first_message.WaitForNotificationWithTimeout(absl::Seconds(10)));
  pings.Cancel();
  pings.Cancel();  // idempotent
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(final_status.code(), absl::StatusCode::kCancelled);
  pings.Cancel();  // after the end: nothing happens
}

}  // namespace
}  // namespace gravity::client
