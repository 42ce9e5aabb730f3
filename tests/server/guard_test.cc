// Guards on a service and on one method: server/guard.h, server/service.h.
#include "server/guard.h"

#include <atomic>
#include <memory>

#include "gtest/gtest.h"
#include "server/service.h"
#include "streaming/v1/streaming.grpc.pb.h"
#include "tests/server/test_server.h"

namespace gravity::server {
namespace {

using streaming::v1::PingReply;
using streaming::v1::PingRequest;
using streaming::v1::StreamUsersRequest;
using streaming::v1::User;
using testing::SetTestDeadline;
using testing::StartServer;
using testing::StubFor;

struct Counts {
  std::atomic<int> ping{0};
  std::atomic<int> users{0};
};

std::unique_ptr<Service> CountingService(Counts& counts) {
  auto service = std::make_unique<Service>("streaming.v1.Streaming");
  absl::Status added = service->AddStream<PingRequest, PingReply>(
      "Ping", [&](const PingRequest&, Stream<PingReply> s) {
        counts.ping++;
        PingReply reply;
        reply.set_seq(1);
        s.Send(reply);
        s.Close();
      });
  EXPECT_TRUE(added.ok()) << added;
  added = service->AddStream<StreamUsersRequest, User>(
      "StreamUsers", [&](const StreamUsersRequest&, Stream<User> s) {
        counts.users++;
        s.Send(User());
        s.Close();
      });
  EXPECT_TRUE(added.ok()) << added;
  return service;
}

struct Result {
  grpc::Status status;
  int messages = 0;
};

Result CallPing(streaming::v1::Streaming::Stub& stub, const char* token = nullptr) {
  grpc::ClientContext context;
  SetTestDeadline(context);
  if (token != nullptr) context.AddMetadata("authorization", std::string("Bearer ") + token);
  auto reader = stub.Ping(&context, PingRequest());
  Result result;
  PingReply reply;
  while (reader->Read(&reply)) ++result.messages;
  result.status = reader->Finish();
  return result;
}

Result CallUsers(streaming::v1::Streaming::Stub& stub, const char* token = nullptr) {
  grpc::ClientContext context;
  SetTestDeadline(context);
  if (token != nullptr) context.AddMetadata("authorization", std::string("Bearer ") + token);
  auto reader = stub.StreamUsers(&context, StreamUsersRequest());
  Result result;
  User user;
  while (reader->Read(&user)) ++result.messages;
  result.status = reader->Finish();
  return result;
}

TEST(GuardTest, AGuardOnTheServiceCoversEveryMethod) {
  Counts counts;
  auto service = CountingService(counts);
  service->Guard(RequireBearerToken("s3cret"));
  auto server = StartServer({service.get()});
  auto stub = StubFor(*server);

  EXPECT_EQ(CallPing(*stub).status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CallUsers(*stub).status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(CallPing(*stub, "s3cret").status.ok());
  EXPECT_TRUE(CallUsers(*stub, "s3cret").status.ok());
  EXPECT_EQ(counts.ping.load(), 1);
  EXPECT_EQ(counts.users.load(), 1);
}

TEST(GuardTest, AGuardOnOneMethodLeavesTheOthersOpen) {
  Counts counts;
  auto service = CountingService(counts);
  service->GuardMethod("StreamUsers", RequireBearerToken("s3cret"));
  auto server = StartServer({service.get()});
  auto stub = StubFor(*server);

  EXPECT_TRUE(CallPing(*stub).status.ok());
  EXPECT_EQ(CallUsers(*stub).status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(CallUsers(*stub, "s3cret").status.ok());
}

TEST(GuardTest, ARejectedCallGetsTheStatusAndNoMessageAndNeverReachesTheHandler) {
  Counts counts;
  auto service = CountingService(counts);
  service->Guard([](const CallInfo&) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "closed for maintenance");
  });
  auto server = StartServer({service.get()});
  auto stub = StubFor(*server);

  Result result = CallPing(*stub);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(result.status.error_message(), "closed for maintenance");
  EXPECT_EQ(result.messages, 0);
  EXPECT_EQ(counts.ping.load(), 0);
}

TEST(GuardTest, GuardsComposeInOrderServiceFirst) {
  Counts counts;
  auto service = CountingService(counts);
  std::vector<std::string> order;
  service->GuardMethod("Ping", [&](const CallInfo&) {
    order.push_back("method");
    return grpc::Status::OK;
  });
  service->Guard([&](const CallInfo& call) {
    order.push_back("service:" + call.method());
    return grpc::Status::OK;
  });
  auto server = StartServer({service.get()});
  auto stub = StubFor(*server);
  EXPECT_TRUE(CallPing(*stub).status.ok());
  EXPECT_EQ(order, (std::vector<std::string>{"service:/streaming.v1.Streaming/Ping", "method"}));
}

TEST(GuardTest, BearerTokenGuardChecksSchemeAndToken) {
  Guard guard = RequireBearerToken("s3cret");
  auto call = [](std::multimap<std::string, std::string> metadata) {
    return CallInfo("/streaming.v1.Streaming/Ping", std::move(metadata));
  };
  EXPECT_TRUE(guard(call({{"authorization", "Bearer s3cret"}})).ok());
  EXPECT_TRUE(guard(call({{"authorization", "bearer s3cret"}})).ok());
  EXPECT_FALSE(guard(call({})).ok());
  EXPECT_FALSE(guard(call({{"authorization", "Basic s3cret"}})).ok());
  EXPECT_FALSE(guard(call({{"authorization", "Bearer s3cre"}})).ok());
  EXPECT_FALSE(guard(call({{"authorization", "Bearer s3cret!"}})).ok());
  EXPECT_EQ(guard(call({})).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST(GuardTest, AnEmptyConfiguredTokenRejectsEveryone) {
  Guard guard = RequireBearerToken("");
  CallInfo call("/x/y", {{"authorization", "Bearer "}});
  EXPECT_EQ(guard(call).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST(ServiceTest, AddStreamChecksTheMethodAgainstTheDescriptors) {
  Service service("streaming.v1.Streaming");
  auto noop = [](const PingRequest&, Stream<PingReply>) {};
  EXPECT_EQ((service.AddStream<PingRequest, PingReply>("Pong", noop).code()),
            absl::StatusCode::kNotFound);
  EXPECT_EQ((service.AddStream<PingRequest, PingReply>("StreamUsers", noop).code()),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE((service.AddStream<PingRequest, PingReply>("Ping", noop).ok()));
  EXPECT_EQ((service.AddStream<PingRequest, PingReply>("Ping", noop).code()),
            absl::StatusCode::kAlreadyExists);
  Service unknown("nope.v1.Nope");
  EXPECT_EQ((unknown.AddStream<PingRequest, PingReply>("Ping", noop).code()),
            absl::StatusCode::kNotFound);
}

// Issue 20: the call's W3C trace context, for handlers and Topic::Publish.
TEST(CallInfoTest, TheTraceparentAndItsTraceId) {
  CallInfo traced("/x/y",
                  {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}});
  EXPECT_EQ(traced.traceparent(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  EXPECT_EQ(traced.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
  CallInfo none("/x/y", {});
  EXPECT_EQ(none.traceparent(), "");
  EXPECT_EQ(none.trace_id(), "");
  CallInfo malformed("/x/y", {{"traceparent", "00-not-a-trace"}});
  EXPECT_EQ(malformed.trace_id(), "");
}

}  // namespace
}  // namespace gravity::server
