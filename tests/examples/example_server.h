// The seed's example service (examples/streaming) on an in-process gravity
// server at 127.0.0.1:0, the fixture of the example, client and bridge tests;
// StreamUsers takes the bearer token kAdminToken.
#ifndef GRAVITY_TESTS_EXAMPLES_EXAMPLE_SERVER_H_
#define GRAVITY_TESTS_EXAMPLES_EXAMPLE_SERVER_H_

#include <memory>
#include <utility>

#include "examples/streaming/streaming_service.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "streaming/v1/streaming.grpc.pb.h"
#include "tests/server/test_server.h"

namespace gravity::testing {

// Every credential the suites use holds "gv5ecret", so that
// tests/lint/no_secrets_in_logs.sh can find one that leaked into a log.
inline constexpr char kAdminToken[] = "admin-token-gv5ecret";

class ExampleServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto made = examples::MakeStreamingService(kAdminToken);
    ASSERT_TRUE(made.ok()) << made.status();
    service_ = std::move(*made);
    server_ = StartServer({service_.get()});
    ASSERT_NE(server_, nullptr);
    channel_ = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    stub_ = streaming::v1::Streaming::NewStub(channel_);
  }

  static streaming::v1::PingRequest FastPing(int count, int fail_code = 0, int interval_ms = 5) {
    streaming::v1::PingRequest request;
    request.set_to("bob");
    request.set_count(count);
    request.set_interval_ms(interval_ms);
    request.set_fail_code(fail_code);
    return request;
  }

  std::unique_ptr<server::Service> service_;
  std::unique_ptr<server::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<streaming::v1::Streaming::Stub> stub_;
};

}  // namespace gravity::testing

#endif  // GRAVITY_TESTS_EXAMPLES_EXAMPLE_SERVER_H_
