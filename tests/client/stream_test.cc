// client/client.h (Open) and client/stream.h (Stream<T>): the blocking reader
// against the seed's example service.
#include "client/stream.h"

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "streaming/v1/streaming.grpc.pb.h"
#include "tests/examples/example_server.h"
#include "tests/testing/wait_for.h"

namespace gravity::client {
namespace {

using streaming::v1::PingReply;
using streaming::v1::Streaming;
using streaming::v1::StreamUsersRequest;
using streaming::v1::User;
using testing::kAdminToken;
using testing::WaitFor;

// Every call of these tests has a deadline, so a bug fails instead of hanging.
CallOptions TestOptions() { return CallOptions().WithTimeout(absl::Seconds(20)); }

std::vector<int64_t> Seqs(const std::vector<PingReply>& replies) {
  std::vector<int64_t> seqs;
  for (const PingReply& reply : replies) seqs.push_back(reply.seq());
  return seqs;
}

class StreamTest : public testing::ExampleServerTest {};

TEST_F(StreamTest, ReadsEveryMessageThenEndsWithOk) {
  auto pings = Open(stub_, &Streaming::Stub::async::Ping, FastPing(3), TestOptions());
  ASSERT_TRUE(pings.ok()) << pings.status();
  std::vector<PingReply> replies;
  for (const PingReply& reply : *pings) replies.push_back(reply);
  EXPECT_EQ(Seqs(replies), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(replies[0].message(), "Sending ping to bob");
  EXPECT_TRUE(pings->status().ok()) << pings->status();
}

TEST_F(StreamTest, NextReadsTheSameMessagesAsTheLoop) {
  auto pings = Open(*stub_, &Streaming::Stub::async::Ping, FastPing(3), TestOptions());
  ASSERT_TRUE(pings.ok()) << pings.status();
  std::vector<PingReply> replies;
  PingReply reply;
  while (pings->Next(&reply)) replies.push_back(reply);
  EXPECT_FALSE(pings->Next(&reply));  // stays ended
  EXPECT_EQ(Seqs(replies), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_TRUE(pings->status().ok());
}

TEST_F(StreamTest, GuardRejectionIsAnErrorResultWithNoStream) {
  auto users = Open(stub_, &Streaming::Stub::async::StreamUsers, {}, TestOptions());
  ASSERT_FALSE(users.ok());
  EXPECT_EQ(users.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(users.status().message(), "missing authorization: Bearer <token>");
}

TEST_F(StreamTest, BearerTokenPassesTheGuard) {
  StreamUsersRequest request;
  request.set_count(2);
  request.set_interval_ms(5);
  auto users = Open(stub_, &Streaming::Stub::async::StreamUsers, request,
                    TestOptions().WithBearerToken(kAdminToken));
  ASSERT_TRUE(users.ok()) << users.status();
  int received = 0;
  for (const User& user : *users) {
    EXPECT_FALSE(user.id().empty());
    ++received;
  }
  EXPECT_EQ(received, 2);
  EXPECT_TRUE(users->status().ok()) << users->status();
}

TEST_F(StreamTest, HandlerRejectionIsAnErrorResult) {
  auto pings = Open(stub_, &Streaming::Stub::async::Ping, FastPing(-1), TestOptions());
  ASSERT_FALSE(pings.ok());
  EXPECT_EQ(pings.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pings.status().message(), "count must not be negative");
}

TEST_F(StreamTest, ErrorMidStreamComesAfterTheMessages) {
  auto pings =
      Open(stub_, &Streaming::Stub::async::Ping, FastPing(2, /*fail_code=*/9), TestOptions());
  ASSERT_TRUE(pings.ok()) << pings.status();
  std::vector<PingReply> replies;
  for (const PingReply& reply : *pings) replies.push_back(reply);
  EXPECT_EQ(Seqs(replies), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(pings->status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(pings->status().message(), "ping failed as asked (fail_code 9)");
}

TEST_F(StreamTest, StatusBeforeTheEndSaysSo) {
  auto pings = Open(stub_, &Streaming::Stub::async::Ping, FastPing(2, 0, 1000), TestOptions());
  ASSERT_TRUE(pings.ok()) << pings.status();
  EXPECT_EQ(pings->status().code(), absl::StatusCode::kUnknown);
}

TEST_F(StreamTest, DeadlineEndsTheStreamWithDeadlineExceeded) {
  const absl::Time start = absl::Now();
  auto pings = Open(stub_, &Streaming::Stub::async::Ping, FastPing(1000, 0, 20),
                    CallOptions().WithTimeout(absl::Milliseconds(300)));
  ASSERT_TRUE(pings.ok()) << pings.status();
  int received = 0;
  for (const PingReply& reply : *pings) received += reply.seq() > 0;
  const absl::Duration elapsed = absl::Now() - start;
  EXPECT_EQ(pings->status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_GT(received, 0);
  EXPECT_LT(received, 1000);
  EXPECT_GE(elapsed, absl::Milliseconds(250));
  EXPECT_LT(elapsed, absl::Seconds(10));
}

TEST_F(StreamTest, AbsoluteDeadlineIsHonouredToo) {
  auto pings = Open(stub_, &Streaming::Stub::async::Ping, FastPing(1000, 0, 20),
                    CallOptions().WithDeadline(absl::Now() + absl::Milliseconds(200)));
  ASSERT_TRUE(pings.ok()) << pings.status();
  PingReply reply;
  while (pings->Next(&reply)) {
  }
  EXPECT_EQ(pings->status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(StreamTest, CancelFromAnotherThreadEndsTheLoop) {
  auto pings = Open(stub_, &Streaming::Stub::async::Ping, FastPing(100000, 0, 10), TestOptions());
  ASSERT_TRUE(pings.ok()) << pings.status();
  absl::Notification first_message;
  std::thread canceller([&] {
    if (first_message.WaitForNotificationWithTimeout(absl::Seconds(10))) pings->Cancel();
  });
  const absl::Time start = absl::Now();
  int received = 0;
  for (const PingReply& reply : *pings) {
    if (received++ == 0) first_message.Notify();
    EXPECT_GT(reply.seq(), 0);
  }
  canceller.join();
  EXPECT_GE(received, 1);
  EXPECT_LT(received, 100000);
  EXPECT_EQ(pings->status().code(), absl::StatusCode::kCancelled);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST_F(StreamTest, ResumesAfterLastEventId) {
  auto pings =
      Open(stub_, &Streaming::Stub::async::Ping, FastPing(4), TestOptions().WithLastEventId("2"));
  ASSERT_TRUE(pings.ok()) << pings.status();
  std::vector<PingReply> replies;
  for (const PingReply& reply : *pings) replies.push_back(reply);
  EXPECT_EQ(Seqs(replies), (std::vector<int64_t>{3, 4}));
  EXPECT_TRUE(pings->status().ok());
}

TEST_F(StreamTest, ResumingAtTheEndIsAnEmptyOkStream) {
  auto pings =
      Open(stub_, &Streaming::Stub::async::Ping, FastPing(4), TestOptions().WithLastEventId("4"));
  ASSERT_TRUE(pings.ok()) << pings.status();
  int received = 0;
  for ([[maybe_unused]] const PingReply& reply : *pings) ++received;
  EXPECT_EQ(received, 0);
  EXPECT_TRUE(pings->status().ok()) << pings->status();
}

TEST_F(StreamTest, BufferedMessagesStayWithinTheBound) {
  auto pings = Open(stub_, &Streaming::Stub::async::Ping, FastPing(30, 0, 1),
                    TestOptions().WithMaxBufferedMessages(3));
  ASSERT_TRUE(pings.ok()) << pings.status();
  // Nothing is read for a while: the reader fills up to 3 and holds no more
  // (the rest waits in gRPC's windows), also once the server has sent it all.
  size_t most = 0;
  auto full = [&] {
    most = std::max(most, pings->buffered());
    return most >= 3;
  };
  EXPECT_TRUE(WaitFor(full, absl::Seconds(10)));
  WaitFor([&] { return full() && most > 3; }, absl::Milliseconds(300));  // stays at 3
  EXPECT_EQ(most, 3u);
  std::vector<PingReply> replies;
  for (const PingReply& reply : *pings) {
    EXPECT_LE(pings->buffered(), 3u);
    replies.push_back(reply);
  }
  ASSERT_EQ(replies.size(), 30u);
  for (int i = 0; i < 30; ++i) EXPECT_EQ(replies[i].seq(), i + 1);
  EXPECT_TRUE(pings->status().ok());
}

TEST_F(StreamTest, DestroyingAnUnfinishedStreamCancelsWithoutBlocking) {
  const absl::Time start = absl::Now();
  {
    auto pings = Open(stub_, &Streaming::Stub::async::Ping, FastPing(100000, 0, 1),
                      TestOptions().WithMaxBufferedMessages(2));
    ASSERT_TRUE(pings.ok()) << pings.status();
    PingReply reply;
    ASSERT_TRUE(pings->Next(&reply));
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  // The server still serves new calls.
  auto again = Open(stub_, &Streaming::Stub::async::Ping, FastPing(1), TestOptions());
  ASSERT_TRUE(again.ok()) << again.status();
}

TEST_F(StreamTest, UnreachableServerIsUnavailableAtOpen) {
  const std::string address = server_->address();
  server_.reset();  // the port is free again
  auto stub = Streaming::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  const absl::Time start = absl::Now();
  auto pings = Open(stub, &Streaming::Stub::async::Ping, FastPing(1), TestOptions());
  ASSERT_FALSE(pings.ok());
  EXPECT_EQ(pings.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST_F(StreamTest, UnknownMethodIsUnimplementedAtOpen) {
  auto pings =
      OpenGeneric(channel_, "/streaming.v1.Streaming/Nope", grpc::ByteBuffer(), TestOptions());
  ASSERT_FALSE(pings.ok());
  EXPECT_EQ(pings.status().code(), absl::StatusCode::kUnimplemented);
}

TEST_F(StreamTest, GenericCallReadsSerializedMessages) {
  grpc::Slice request(FastPing(2).SerializeAsString());
  auto pings = OpenGeneric(channel_, "/streaming.v1.Streaming/Ping", grpc::ByteBuffer(&request, 1),
                           TestOptions());
  ASSERT_TRUE(pings.ok()) << pings.status();
  std::vector<int64_t> seqs;
  for (const grpc::ByteBuffer& bytes : *pings) {
    grpc::Slice slice;
    ASSERT_TRUE(bytes.TrySingleSlice(&slice).ok() || bytes.DumpToSingleSlice(&slice).ok());
    PingReply reply;
    ASSERT_TRUE(reply.ParseFromArray(slice.begin(), static_cast<int>(slice.size())));
    seqs.push_back(reply.seq());
  }
  EXPECT_EQ(seqs, (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(pings->status().ok());
}

TEST(BearerTokenTest, PrefixesBearer) { EXPECT_EQ(BearerToken("abc"), "Bearer abc"); }

}  // namespace
}  // namespace gravity::client
