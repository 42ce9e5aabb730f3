// server/server.h: port 0, health, reflection, bounded shutdown.
#include "server/server.h"

#include <atomic>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "server/service.h"
#include "streaming/v1/streaming.grpc.pb.h"
#include "tests/server/test_server.h"

namespace gravity::server {
namespace {

using streaming::v1::PingReply;
using streaming::v1::PingRequest;
using testing::SetTestDeadline;
using testing::StartServer;
using testing::StubFor;

std::unique_ptr<Service> EndlessService(std::atomic<int>& open_streams) {
  auto service = std::make_unique<Service>("streaming.v1.Streaming");
  EXPECT_TRUE((service->AddStream<PingRequest, PingReply>("Ping", [&](const PingRequest&,
                                                                      Stream<PingReply> stream) {
                open_streams++;
                stream.OnCancel([&] { open_streams--; });
                PingReply reply;
                reply.set_seq(1);
                stream.Send(reply);  // and never closes
              })).ok());
  return service;
}

TEST(ServerTest, PortZeroPicksAPortAndReportsIt) {
  std::atomic<int> open{0};
  auto service = EndlessService(open);
  auto server = StartServer({service.get()});
  ASSERT_NE(server, nullptr);
  EXPECT_GT(server->port(), 0);
  EXPECT_EQ(server->address(), "127.0.0.1:" + std::to_string(server->port()));
}

TEST(ServerTest, AnAddressInUseIsAnError) {
  std::atomic<int> open{0};
  auto service = EndlessService(open);
  auto first = StartServer({service.get()});
  ServerOptions options;
  options.listen = first->address();
  Service other("streaming.v1.Streaming");
  auto second = Server::Start(options, {&other});
  EXPECT_FALSE(second.ok());
}

TEST(ServerTest, HalfATlsPairIsAnError) {
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.tls_cert_file = "/nonexistent/cert.pem";
  auto server = Server::Start(options, {});
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
}

std::string ReadTestFile(const std::string& name) {
  std::ifstream in(std::string(GRAVITY_TESTDATA_DIR) + "/" + name);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

TEST(ServerTest, TlsServesTlsClientsAndRefusesPlaintext) {
  std::atomic<int> open{0};
  auto service = EndlessService(open);
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.tls_cert_file = std::string(GRAVITY_TESTDATA_DIR) + "/server.crt";
  options.tls_key_file = std::string(GRAVITY_TESTDATA_DIR) + "/server.key";
  auto server = Server::Start(options, {service.get()});
  ASSERT_TRUE(server.ok()) << server.status();

  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadTestFile("server.crt");
  ASSERT_FALSE(ssl.pem_root_certs.empty());
  auto tls_stub = streaming::v1::Streaming::NewStub(
      grpc::CreateChannel((*server)->address(), grpc::SslCredentials(ssl)));
  grpc::ClientContext tls_context;
  SetTestDeadline(tls_context, absl::Seconds(10));
  auto reader = tls_stub->Ping(&tls_context, PingRequest());
  PingReply reply;
  ASSERT_TRUE(reader->Read(&reply));
  EXPECT_EQ(reply.seq(), 1);
  tls_context.TryCancel();
  reader->Finish();

  auto plain_stub = StubFor(**server);
  grpc::ClientContext plain_context;
  SetTestDeadline(plain_context, absl::Seconds(10));
  auto plain = plain_stub->Ping(&plain_context, PingRequest());
  EXPECT_FALSE(plain->Read(&reply));
  EXPECT_EQ(plain->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST(ServerTest, ShutdownWith100OpenStreamsEndsThemWithinTheDrainTime) {
  constexpr int kStreams = 100;
  const absl::Duration drain = absl::Milliseconds(500);
  std::atomic<int> open{0};
  auto service = EndlessService(open);
  auto server = StartServer({service.get()}, drain);
  auto stub = StubFor(*server);

  struct Call {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<PingReply>> reader;
  };
  std::vector<std::unique_ptr<Call>> calls;
  for (int i = 0; i < kStreams; ++i) {
    auto call = std::make_unique<Call>();
    SetTestDeadline(call->context, absl::Seconds(30));
    call->reader = stub->Ping(&call->context, PingRequest());
    PingReply reply;
    ASSERT_TRUE(call->reader->Read(&reply));
    calls.push_back(std::move(call));
  }
  EXPECT_EQ(open.load(), kStreams);

  const absl::Time start = absl::Now();
  server->Shutdown();
  const absl::Duration took = absl::Now() - start;
  EXPECT_LT(took, drain + absl::Seconds(2));
  EXPECT_EQ(open.load(), 0);

  for (auto& call : calls) {
    PingReply reply;
    while (call->reader->Read(&reply)) {
    }
    grpc::Status status = call->reader->Finish();
    EXPECT_TRUE(status.error_code() == grpc::StatusCode::CANCELLED ||
                status.error_code() == grpc::StatusCode::UNAVAILABLE)
        << status.error_code() << " " << status.error_message();
  }
}

TEST(ServerTest, HealthServiceReportsServing) {
  std::atomic<int> open{0};
  auto service = EndlessService(open);
  auto server = StartServer({service.get()});
  auto channel = grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials());
  // grpc.health.v1.Health/Check with an empty request: a raw call keeps this
  // test free of the health proto; SERVING is field 1 = 1.
  grpc::GenericStub generic(channel);
  grpc::ClientContext context;
  SetTestDeadline(context);
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1);  // an empty HealthCheckRequest
  grpc::ByteBuffer response;
  absl::Notification done;
  grpc::Status status;
  generic.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                    &response, [&](grpc::Status s) {
                      status = std::move(s);
                      done.Notify();
                    });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (auto& slice : slices)
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));
}

}  // namespace
}  // namespace gravity::server
