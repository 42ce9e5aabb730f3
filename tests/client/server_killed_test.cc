// The client when its server dies mid-stream: the real streaming-server
// binary (path in argv[1]) runs as a subprocess and is SIGKILLed. The reader
// ends with UNAVAILABLE, promptly, never hanging.
#include <signal.h>

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "streaming/v1/streaming.grpc.pb.h"
#include "tests/client/subprocess.h"

namespace gravity::client {
namespace {

const char* streaming_server_path = nullptr;

using streaming::v1::PingReply;
using streaming::v1::PingRequest;
using streaming::v1::Streaming;
using testing::Subprocess;

class ServerKilledTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(streaming_server_path, nullptr) << "usage: server_killed_test <streaming-server>";
    server_ = Subprocess::Start({streaming_server_path, "--listen=127.0.0.1:0", "--drain=0s"});
    ASSERT_NE(server_, nullptr) << "cannot start " << streaming_server_path;
    // "streaming-server listening on 127.0.0.1:PORT"
    std::optional<std::string> line = server_->ReadLine(absl::Seconds(20));
    ASSERT_TRUE(line.has_value()) << "streaming-server did not start";
    ASSERT_TRUE(absl::StrContains(*line, "listening on ")) << *line;
    address_ = std::string(absl::StripPrefix(*line, "streaming-server listening on "));
    stub_ = Streaming::NewStub(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  }

  static PingRequest EndlessPing() {
    PingRequest request;
    request.set_to("bob");
    request.set_count(1000000);
    request.set_interval_ms(10);
    return request;
  }

  std::unique_ptr<Subprocess> server_;
  std::string address_;
  std::unique_ptr<Streaming::Stub> stub_;
};

TEST_F(ServerKilledTest, ReaderEndsWithUnavailable) {
  auto pings = Open(stub_, &Streaming::Stub::async::Ping, EndlessPing(),
                    CallOptions().WithTimeout(absl::Seconds(30)));
  ASSERT_TRUE(pings.ok()) << pings.status();
  PingReply reply;
  ASSERT_TRUE(pings->Next(&reply));
  ASSERT_TRUE(pings->Next(&reply));
  server_->Kill(SIGKILL);
  const absl::Time killed = absl::Now();
  while (pings->Next(&reply)) {
  }
  EXPECT_EQ(pings->status().code(), absl::StatusCode::kUnavailable) << pings->status();
  EXPECT_LT(absl::Now() - killed, absl::Seconds(10));
}

TEST_F(ServerKilledTest, CallbackReaderEndsWithUnavailable) {
  absl::Notification second_message, done;
  absl::Status final_status;
  int received = 0;  // on_message calls never overlap
  OpenAsync(
      stub_, &Streaming::Stub::async::Ping, EndlessPing(),
      CallOptions().WithTimeout(absl::Seconds(30)),
      [&](const PingReply&) {
        if (++received == 2) second_message.Notify();
      },
      [&](absl::Status status) {
        final_status = std::move(status);
        done.Notify();
      });
  ASSERT_TRUE(second_message.WaitForNotificationWithTimeout(absl::Seconds(10)));
  server_->Kill(SIGKILL);
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(final_status.code(), absl::StatusCode::kUnavailable) << final_status;
}

TEST_F(ServerKilledTest, OpeningAfterTheKillIsUnavailable) {
  server_->Kill(SIGKILL);
  server_->Finish(absl::Seconds(10));  // reaped: the port is closed
  auto pings = Open(stub_, &Streaming::Stub::async::Ping, EndlessPing(),
                    CallOptions().WithTimeout(absl::Seconds(30)));
  ASSERT_FALSE(pings.ok());
  EXPECT_EQ(pings.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace gravity::client

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc > 1) gravity::client::streaming_server_path = argv[1];
  return RUN_ALL_TESTS();
}
