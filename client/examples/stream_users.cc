// The seed's client example ("Receiving a stream from a client") in C++, as
// shown in docs/native-client.md: the reader loop with error handling, then the
// callback variant.
//
//   streaming-server --listen=127.0.0.1:50051 --admin_token=secret &
//   stream-users --target=127.0.0.1:50051 --token=secret
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/synchronization/notification.h"
#include "client/client.h"
#include "grpcpp/create_channel.h"
#include "streaming/v1/streaming.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "the streaming-server");
ABSL_FLAG(std::string, token, "", "the admin bearer token of StreamUsers");

using streaming::v1::PingReply;
using streaming::v1::PingRequest;
using streaming::v1::Streaming;
using streaming::v1::User;

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  auto stub = Streaming::NewStub(
      grpc::CreateChannel(absl::GetFlag(FLAGS_target), grpc::InsecureChannelCredentials()));

  // --- The reader loop: const userStream = await api.streaming.streamUsers();
  auto users = gravity::client::Open(
      stub, &Streaming::Stub::async::StreamUsers, {},
      gravity::client::CallOptions().WithBearerToken(absl::GetFlag(FLAGS_token)));
  if (!users.ok()) {  // if (userStream.error) ...
    std::cerr << "Error while receiving the stream: " << users.status() << "\n";
    return 1;
  }
  for (const User& user : *users) {  // for await (const user of userStream.data)
    std::cout << "Received user: " << user.id() << "\n";
  }
  if (!users->status().ok()) {  // the stream broke after it started
    std::cerr << "The stream ended with " << users->status() << "\n";
    return 1;
  }

  // --- The callback variant, for event loops: no thread of its own.
  PingRequest request;
  request.set_to("bob");
  request.set_count(3);
  request.set_interval_ms(100);
  absl::Notification done;
  gravity::client::OpenAsync(
      stub, &Streaming::Stub::async::Ping, request, {},
      [](const PingReply& reply) { std::cout << reply.seq() << ": " << reply.message() << "\n"; },
      [&done](absl::Status status) {
        std::cout << "ping ended: " << status << "\n";
        done.Notify();
      });
  // A real event loop would go on with its work; this demo just waits.
  return done.WaitForNotificationWithTimeout(absl::Seconds(30)) ? 0 : 1;
}
