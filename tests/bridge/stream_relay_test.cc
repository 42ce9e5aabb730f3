// StreamRelay (bridge/internal/stream_relay.h) fed directly through its
// UpstreamListener side: the read-ahead bound, coalescing, and the
// end-of-stream decision table.
#include "bridge/internal/stream_relay.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bridge/internal/stream_format.h"
#include "gtest/gtest.h"
#include "streaming/v1/streaming.pb.h"

namespace gravity::bridge::internal {
namespace {

grpc::ByteBuffer Serialized(const google::protobuf::Message& message) {
  grpc::Slice slice(message.SerializeAsString());
  return grpc::ByteBuffer(&slice, 1);
}

streaming::v1::PingReply Reply(int seq, size_t padding = 0) {
  streaming::v1::PingReply reply;
  reply.set_seq(seq);
  reply.set_message(std::string(padding, 'x'));
  return reply;
}

class StreamRelayTest : public ::testing::Test {
 protected:
  StreamRelayTest()
      : routes_(*google::protobuf::DescriptorPool::generated_pool(), {"streaming.v1.Streaming"},
                &warnings_),
        json_(google::protobuf::DescriptorPool::generated_pool()) {}

  std::unique_ptr<StreamRelay> MakeRelay(ReadAheadLimits limits, size_t max_event_bytes = 0) {
    encoder_ =
        std::make_shared<EventEncoder>(*Ping(), json_, streaming::v1::PingReply::default_instance(),
                                       StreamFormat::kSse, max_event_bytes);
    return std::make_unique<StreamRelay>(encoder_, limits, [this] { ++wakes_; });
  }

  // What the upstream call does with a message: encode it (no lock), then
  // hand it over.
  bool Deliver(StreamRelay& relay, const grpc::ByteBuffer& message) {
    std::string event;
    const absl::Status encoded = encoder_->Append(message, &event);
    return relay.OnUpstreamEvent(encoded, &event);
  }

  const RoutedMethod* Ping() { return routes_.Match("/streaming.v1.Streaming/Ping")->method; }

  std::vector<std::string> warnings_;
  RouteTable routes_;
  JsonEncoder json_;
  int wakes_ = 0;
  std::shared_ptr<EventEncoder> encoder_;
};

TEST_F(StreamRelayTest, ReadingPausesAtTheEventBound) {
  auto relay = MakeRelay({/*max_events=*/4, /*max_bytes=*/1 << 20});
  for (int seq = 1; seq <= 3; ++seq) EXPECT_TRUE(Deliver(*relay, Serialized(Reply(seq))));
  EXPECT_FALSE(Deliver(*relay, Serialized(Reply(4))));
  std::string out;
  StreamRelay::Taken taken = relay->Take(&out);
  EXPECT_EQ(taken.events, 4);
  EXPECT_TRUE(taken.accepted);
  EXPECT_FALSE(taken.done);
}

TEST_F(StreamRelayTest, ReadingPausesAtTheByteBoundSoMemoryStaysBounded) {
  constexpr size_t kMaxBytes = 16 * 1024;
  auto relay = MakeRelay({/*max_events=*/1000, kMaxBytes});
  int accepted = 0;
  while (Deliver(*relay, Serialized(Reply(accepted + 1, 1000)))) {
    ++accepted;
    ASSERT_LT(accepted, 1000) << "never paused";
  }
  ++accepted;  // the one that filled it
  std::string out;
  relay->Take(&out);
  // Bounded by the limit plus at most one event past it.
  EXPECT_GE(out.size(), kMaxBytes);
  EXPECT_LT(out.size(), kMaxBytes + 1100);
  EXPECT_LT(accepted, 20);
}

TEST_F(StreamRelayTest, EventsReadDuringAWriteComeOutAsOneBufferWithTheSameBytes) {
  auto relay = MakeRelay({});
  std::string one_by_one;
  for (int seq = 1; seq <= 10; ++seq) {
    Deliver(*relay, Serialized(Reply(seq)));
    AppendSseMessage(std::to_string(seq), absl::StrCat("{\"seq\":\"", seq, "\"}"), &one_by_one);
  }
  // Ten messages, one wake-up: the session makes one write of them.
  EXPECT_EQ(wakes_, 1);
  std::string out;
  StreamRelay::Taken taken = relay->Take(&out);
  EXPECT_EQ(taken.events, 10);
  EXPECT_EQ(out, one_by_one);
  // Taken once: the next message wakes again.
  Deliver(*relay, Serialized(Reply(11)));
  EXPECT_EQ(wakes_, 2);
}

TEST_F(StreamRelayTest, TheStatusComesAfterTheEventsBeforeIt) {
  auto relay = MakeRelay({});
  Deliver(*relay, Serialized(Reply(1)));
  relay->OnUpstreamDone(grpc::Status(grpc::StatusCode::ABORTED, "boom"));
  std::string out;
  StreamRelay::Taken taken = relay->Take(&out);
  EXPECT_EQ(taken.events, 1);
  ASSERT_TRUE(taken.done);
  EXPECT_EQ(taken.done->error_code(), grpc::StatusCode::ABORTED);
}

TEST_F(StreamRelayTest, AMessageOfTheWrongTypeEndsTheStreamWithInternal) {
  auto relay = MakeRelay({});
  grpc::Slice garbage(std::string("\xff\xff\xff", 3));
  EXPECT_FALSE(Deliver(*relay, grpc::ByteBuffer(&garbage, 1)));
  std::string out;
  StreamRelay::Taken taken = relay->Take(&out);
  ASSERT_TRUE(taken.done);
  EXPECT_EQ(taken.done->error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_TRUE(out.empty());
}

TEST(StreamEndTest, TheDecisionTable) {
  const grpc::Status ok = grpc::Status::OK;
  const grpc::Status failed(grpc::StatusCode::NOT_FOUND, "x");
  const grpc::Status unavailable(grpc::StatusCode::UNAVAILABLE, "down");
  const grpc::Status too_large(grpc::StatusCode::RESOURCE_EXHAUSTED,
                               "received initial metadata size exceeds limit");
  const grpc::Status exhausted(grpc::StatusCode::RESOURCE_EXHAUSTED, "slow consumer");
  // accepted (headers out)
  EXPECT_EQ(DecideStreamEnd(ok, true, true), StreamEnd::kEndEvent);
  EXPECT_EQ(DecideStreamEnd(failed, true, true), StreamEnd::kEndEvent);
  EXPECT_EQ(DecideStreamEnd(exhausted, true, false), StreamEnd::kEndEvent);
  EXPECT_EQ(DecideStreamEnd(unavailable, true, false), StreamEnd::kRetry);
  EXPECT_EQ(DecideStreamEnd(too_large, true, true), StreamEnd::kRetry);
  // A token that expires mid-stream: a cut, so the client reconnects with a
  // fresh one; before the head it is the 401 of a refused token.
  const grpc::Status expired(grpc::StatusCode::UNAUTHENTICATED, "the token expired");
  EXPECT_EQ(DecideStreamEnd(expired, true, true), StreamEnd::kRetry);
  EXPECT_EQ(DecideStreamEnd(expired, true, false), StreamEnd::kRetry);
  EXPECT_EQ(DecideStreamEnd(expired, false, true), StreamEnd::kHttpError);
  // not yet accepted
  EXPECT_EQ(DecideStreamEnd(ok, false, false), StreamEnd::kEndEvent);
  EXPECT_EQ(DecideStreamEnd(failed, false, true), StreamEnd::kHttpError);
  EXPECT_EQ(DecideStreamEnd(unavailable, false, true), StreamEnd::kRetry);
  EXPECT_EQ(DecideStreamEnd(unavailable, false, false), StreamEnd::kHttpError);
  EXPECT_EQ(DecideStreamEnd(too_large, false, true), StreamEnd::kHeaderTooLarge);
  EXPECT_EQ(DecideStreamEnd(exhausted, false, true), StreamEnd::kHttpError);
}

// The write in flight counts against the read-ahead bound: a browser that
// stops reading holds about max_bytes plus one event, not max_bytes in the
// read-ahead plus everything being written.
TEST_F(StreamRelayTest, AWriteInFlightCountsAgainstTheByteBound) {
  auto relay = MakeRelay({/*max_events=*/1000, /*max_bytes=*/4096});
  relay->SetWriteInFlight(4000);
  // One ~200-byte event fills what the write in flight left of 4096.
  EXPECT_FALSE(Deliver(*relay, Serialized(Reply(1, 150))));
  std::string out;
  relay->Take(&out);
  relay->SetWriteInFlight(0);
  int accepted = 0;
  while (Deliver(*relay, Serialized(Reply(accepted + 2, 150)))) ++accepted;
  EXPECT_GT(accepted, 10);  // without the write, the same bound takes many
}

// A message over max_event_bytes ends the stream with RESOURCE_EXHAUSTED and
// leaves nothing of itself in the read-ahead.
TEST_F(StreamRelayTest, AnEventOverTheBoundEndsTheStreamWithResourceExhausted) {
  auto relay = MakeRelay({/*max_events=*/32, /*max_bytes=*/1 << 20}, /*max_event_bytes=*/1000);
  EXPECT_TRUE(Deliver(*relay, Serialized(Reply(1, 100))));
  EXPECT_FALSE(Deliver(*relay, Serialized(Reply(2, 5000))));
  EXPECT_FALSE(Deliver(*relay, Serialized(Reply(3, 10))));  // nothing after the end
  std::string out;
  StreamRelay::Taken taken = relay->Take(&out);
  EXPECT_EQ(taken.events, 1);
  ASSERT_TRUE(taken.done.has_value());
  EXPECT_EQ(taken.done->error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(taken.done->error_message().find("--max_event_bytes"), std::string::npos);
  EXPECT_EQ(out.find("seq\":\"2"), std::string::npos) << out;
}

// JSON escaping can make an event several times its protobuf size: the bound
// applies to the encoded event too.
TEST_F(StreamRelayTest, TheEventBoundAppliesToTheEncodedEvent) {
  auto relay = MakeRelay({/*max_events=*/32, /*max_bytes=*/1 << 20}, /*max_event_bytes=*/2000);
  streaming::v1::PingReply reply = Reply(1);
  reply.set_message(std::string(600, '<'));  // 600 bytes; 3,600 as \u003c
  EXPECT_FALSE(Deliver(*relay, Serialized(reply)));
  std::string out;
  StreamRelay::Taken taken = relay->Take(&out);
  ASSERT_TRUE(taken.done.has_value());
  EXPECT_EQ(taken.done->error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
}

}  // namespace
}  // namespace gravity::bridge::internal
