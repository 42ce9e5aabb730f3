// Unary methods on gravity::server::Service: the two handler forms, a reply
// from another thread, a handler that never replies, a client that cancels,
// guards, and registration errors.
#include "server/unary.h"

#include <memory>
#include <thread>

#include "absl/synchronization/notification.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "server/guard.h"
#include "server/service.h"
#include "streaming/v1/streaming.grpc.pb.h"
#include "tests/server/test_server.h"
#include "tests/testing/wait_for.h"

namespace gravity::server {
namespace {

using streaming::v1::EchoReply;
using streaming::v1::EchoRequest;
using streaming::v1::PingReply;
using streaming::v1::PingRequest;

EchoReply ReplyOf(const std::string& text) {
  EchoReply reply;
  reply.set_text(text);
  return reply;
}

grpc::Status CallEcho(streaming::v1::Streaming::Stub& stub, const std::string& text,
                      EchoReply* reply, const std::string& token = "") {
  grpc::ClientContext context;
  testing::SetTestDeadline(context);
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  EchoRequest request;
  request.set_text(text);
  return stub.Echo(&context, request, reply);
}

TEST(UnaryTest, AHandlerReturningStatusOrReplies) {
  Service service("streaming.v1.Streaming");
  ASSERT_TRUE(
      (service.AddUnary<EchoRequest, EchoReply>(
           "Echo",
           [](const EchoRequest& request, const CallInfo& call) -> absl::StatusOr<EchoReply> {
             if (request.text().empty()) return absl::InvalidArgumentError("no text");
             return ReplyOf(request.text() + " via " + call.method());
           }))
          .ok());
  auto server = testing::StartServer({&service});
  auto stub = testing::StubFor(*server);
  EchoReply reply;
  grpc::Status status = CallEcho(*stub, "hello", &reply);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(reply.text(), "hello via /streaming.v1.Streaming/Echo");

  status = CallEcho(*stub, "", &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "no text");
}

TEST(UnaryTest, AReplyMayComeLaterFromAnotherThreadAndOnlyTheFirstCounts) {
  Service service("streaming.v1.Streaming");
  std::vector<std::thread> workers;
  std::atomic<int> second_finish_accepted{-1};
  ASSERT_TRUE((service.AddUnary<EchoRequest, EchoReply>("Echo", [&](const EchoRequest& request,
                                                                    UnaryReply<EchoReply> reply) {
                workers.emplace_back([request, reply, &second_finish_accepted] {
                  absl::SleepFor(absl::Milliseconds(50));
                  EXPECT_TRUE(reply.Finish(ReplyOf(request.text())));
                  second_finish_accepted =
                      reply.Finish(grpc::Status(grpc::StatusCode::INTERNAL, "late"));
                });
              })).ok());
  auto server = testing::StartServer({&service});
  auto stub = testing::StubFor(*server);
  EchoReply reply;
  grpc::Status status = CallEcho(*stub, "later", &reply);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(reply.text(), "later");
  for (std::thread& worker : workers) worker.join();
  EXPECT_EQ(second_finish_accepted.load(), 0);
}

TEST(UnaryTest, AHandlerThatDropsItsReplyEndsTheCallWithInternal) {
  Service service("streaming.v1.Streaming");
  ASSERT_TRUE((service.AddUnary<EchoRequest, EchoReply>("Echo", [](const EchoRequest&,
                                                                   UnaryReply<EchoReply>) {
              })).ok());
  auto server = testing::StartServer({&service});
  auto stub = testing::StubFor(*server);
  EchoReply reply;
  const absl::Time start = absl::Now();
  grpc::Status status = CallEcho(*stub, "x", &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(status.error_message(), "/streaming.v1.Streaming/Echo ended without a reply");
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));  // not the 20 s deadline
}

TEST(UnaryTest, AClientCancelRunsTheHookAndALaterReplyIsRefused) {
  Service service("streaming.v1.Streaming");
  absl::Notification cancelled;
  absl::Notification handler_ran;
  std::optional<UnaryReply<EchoReply>> kept;
  ASSERT_TRUE((service.AddUnary<EchoRequest, EchoReply>("Echo", [&](const EchoRequest&,
                                                                    UnaryReply<EchoReply> reply) {
                reply.OnCancel([&] { cancelled.Notify(); });
                kept = reply;
                handler_ran.Notify();
              })).ok());
  auto server = testing::StartServer({&service});
  auto stub = testing::StubFor(*server);
  grpc::ClientContext context;
  testing::SetTestDeadline(context);
  EchoRequest request;
  EchoReply reply;
  absl::Notification call_done;
  grpc::Status status;
  stub->async()->Echo(&context, &request, &reply, [&](grpc::Status s) {
    status = std::move(s);
    call_done.Notify();
  });
  ASSERT_TRUE(handler_ran.WaitForNotificationWithTimeout(absl::Seconds(10)));
  context.TryCancel();
  EXPECT_TRUE(cancelled.WaitForNotificationWithTimeout(absl::Seconds(5)));
  ASSERT_TRUE(call_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(testing::WaitFor([&] { return !kept->IsOpen(); }, absl::Seconds(5)));
  EXPECT_FALSE(kept->Finish(ReplyOf("too late")));
  kept.reset();
}

TEST(UnaryTest, GuardsRunBeforeTheHandler) {
  Service service("streaming.v1.Streaming");
  std::atomic<int> handled{0};
  service.GuardMethod("Echo", RequireBearerToken("unary-gv5ecret"));
  ASSERT_TRUE((service.AddUnary<EchoRequest, EchoReply>(
                   "Echo",
                   [&](const EchoRequest& request, const CallInfo&) -> absl::StatusOr<EchoReply> {
                     ++handled;
                     return ReplyOf(request.text());
                   }))
                  .ok());
  auto server = testing::StartServer({&service});
  auto stub = testing::StubFor(*server);
  EchoReply reply;
  EXPECT_EQ(CallEcho(*stub, "x", &reply).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(handled.load(), 0);
  EXPECT_TRUE(CallEcho(*stub, "x", &reply, "unary-gv5ecret").ok());
  EXPECT_EQ(handled.load(), 1);
}

TEST(UnaryTest, RegistrationChecksTheMethodsKindAndTypes) {
  Service service("streaming.v1.Streaming");
  auto echo = [](const EchoRequest&, UnaryReply<EchoReply>) {};
  absl::Status wrong_kind = service.AddUnary<PingRequest, PingReply>(
      "Ping", [](const PingRequest&, UnaryReply<PingReply>) {});
  EXPECT_EQ(wrong_kind.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(wrong_kind.message(), "streaming.v1.Streaming.Ping is not a unary method");
  absl::Status as_stream = service.AddStream<EchoRequest, EchoReply>(
      "Echo", [](const EchoRequest&, Stream<EchoReply>) {});
  EXPECT_EQ(as_stream.message(), "streaming.v1.Streaming.Echo is not a server-streaming method");
  absl::Status wrong_types = service.AddUnary<PingRequest, EchoReply>(
      "Echo", [](const PingRequest&, UnaryReply<EchoReply>) {});
  EXPECT_EQ(wrong_types.code(), absl::StatusCode::kInvalidArgument);
  auto add_echo = [&](const char* method) {
    return service.AddUnary<EchoRequest, EchoReply>(method, echo);
  };
  EXPECT_TRUE(add_echo("Echo").ok());
  EXPECT_EQ(add_echo("Echo").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(add_echo("Nope").code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace gravity::server
