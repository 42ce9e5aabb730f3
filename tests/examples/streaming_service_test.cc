// The seed's example service: examples/streaming/streaming_service.h.
#include "examples/streaming/streaming_service.h"

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "streaming/v1/streaming.grpc.pb.h"
#include "tests/examples/example_server.h"
#include "tests/server/test_server.h"

namespace gravity::examples {
namespace {

using streaming::v1::PingReply;
using streaming::v1::PingRequest;
using streaming::v1::StreamUsersRequest;
using streaming::v1::User;
using testing::SetTestDeadline;

class StreamingServiceTest : public testing::ExampleServerTest {
 protected:
  grpc::Status Ping(PingRequest request, std::vector<PingReply>* replies,
                    const std::string& last_event_id = "") {
    grpc::ClientContext context;
    SetTestDeadline(context);
    if (!last_event_id.empty()) context.AddMetadata("last-event-id", last_event_id);
    auto reader = stub_->Ping(&context, request);
    PingReply reply;
    while (reader->Read(&reply)) replies->push_back(reply);
    return reader->Finish();
  }
};

TEST_F(StreamingServiceTest, PingSendsCountMessagesWithSeqFromOne) {
  std::vector<PingReply> replies;
  ASSERT_TRUE(Ping(FastPing(3), &replies).ok());
  ASSERT_EQ(replies.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(replies[i].message(), "Sending ping to bob");
    EXPECT_EQ(replies[i].seq(), i + 1);
  }
}

TEST_F(StreamingServiceTest, PingDefaultsToFiveMessages) {
  PingRequest request = FastPing(0);
  std::vector<PingReply> replies;
  ASSERT_TRUE(Ping(request, &replies).ok());
  EXPECT_EQ(replies.size(), 5u);
}

TEST_F(StreamingServiceTest, PingWithFailCodeEndsWithThatCodeAfterTheMessages) {
  std::vector<PingReply> replies;
  grpc::Status status = Ping(FastPing(2, /*fail_code=*/9), &replies);
  EXPECT_EQ(replies.size(), 2u);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_FALSE(status.error_message().empty());
}

TEST_F(StreamingServiceTest, PingResumesAfterLastEventId) {
  std::vector<PingReply> replies;
  ASSERT_TRUE(Ping(FastPing(5), &replies, "2").ok());
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_EQ(replies[0].seq(), 3);
  EXPECT_EQ(replies[2].seq(), 5);
}

TEST_F(StreamingServiceTest, PingResumedAtTheEndClosesAtOnce) {
  std::vector<PingReply> replies;
  ASSERT_TRUE(Ping(FastPing(5), &replies, "5").ok());
  EXPECT_TRUE(replies.empty());
}

TEST_F(StreamingServiceTest, PingRejectsAGarbledLastEventIdBeforeAnyMessage) {
  std::vector<PingReply> replies;
  grpc::Status status = Ping(FastPing(5), &replies, "abc");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(replies.empty());
}

TEST_F(StreamingServiceTest, PingRejectsANegativeCount) {
  std::vector<PingReply> replies;
  EXPECT_EQ(Ping(FastPing(-1), &replies).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(StreamingServiceTest, StreamUsersWithoutTokenIsUnauthenticated) {
  grpc::ClientContext context;
  SetTestDeadline(context);
  auto reader = stub_->StreamUsers(&context, StreamUsersRequest());
  User user;
  EXPECT_FALSE(reader->Read(&user));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(StreamingServiceTest, StreamUsersWithTokenSendsDistinctIds) {
  grpc::ClientContext context;
  SetTestDeadline(context);
  context.AddMetadata("authorization", std::string("Bearer ") + testing::kAdminToken);
  StreamUsersRequest request;
  request.set_count(20);
  request.set_interval_ms(5);
  auto reader = stub_->StreamUsers(&context, request);
  std::set<std::string> ids;
  User user;
  int received = 0;
  while (reader->Read(&user)) {
    ++received;
    EXPECT_EQ(user.seq(), received);
    ids.insert(user.id());
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(received, 20);
  EXPECT_EQ(ids.size(), 20u);
}

TEST_F(StreamingServiceTest, StreamUsersResumesAfterLastEventId) {
  auto users = [&](const std::string& last_event_id) {
    grpc::ClientContext context;
    SetTestDeadline(context);
    context.AddMetadata("authorization", std::string("Bearer ") + testing::kAdminToken);
    context.AddMetadata("last-event-id", last_event_id);
    StreamUsersRequest request;
    request.set_count(6);
    request.set_interval_ms(5);
    auto reader = stub_->StreamUsers(&context, request);
    std::vector<int64_t> seqs;
    User user;
    while (reader->Read(&user)) seqs.push_back(user.seq());
    return std::make_pair(reader->Finish(), seqs);
  };
  auto [resumed, seqs] = users("4");
  EXPECT_TRUE(resumed.ok());
  EXPECT_EQ(seqs, (std::vector<int64_t>{5, 6}));
  auto [at_end, none] = users("6");
  EXPECT_TRUE(at_end.ok());
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(users("x").first.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace gravity::examples
