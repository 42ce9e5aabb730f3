// A gravity server on 127.0.0.1:0 for tests, with a channel to it.
#ifndef GRAVITY_TESTS_SERVER_TEST_SERVER_H_
#define GRAVITY_TESTS_SERVER_TEST_SERVER_H_

#include <memory>
#include <vector>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "streaming/v1/streaming.grpc.pb.h"

namespace gravity::testing {

inline std::unique_ptr<server::Server> StartServer(std::vector<grpc::Service*> services,
                                                   absl::Duration drain = absl::Seconds(2)) {
  server::ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.drain_timeout = drain;
  auto started = server::Server::Start(options, services);
  EXPECT_TRUE(started.ok()) << started.status();
  return started.ok() ? std::move(*started) : nullptr;
}

inline std::unique_ptr<streaming::v1::Streaming::Stub> StubFor(const server::Server& server) {
  return streaming::v1::Streaming::NewStub(
      grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials()));
}

// Every test call has a deadline, so a bug shows as a failure, not a hang.
inline void SetTestDeadline(grpc::ClientContext& context,
                            absl::Duration timeout = absl::Seconds(20)) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

}  // namespace gravity::testing

#endif  // GRAVITY_TESTS_SERVER_TEST_SERVER_H_
