// Uses an installed gravity: builds a streaming::v1::PingReply and prints it
// as proto3 JSON, then serves Ping with gravity::server, reads it back with
// gravity::client and puts gravity::bridge in front of it, so every installed
// library links and works from the install.
#include <iostream>
#include <string>

#include "bridge/bridge.h"
#include "client/client.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "server/server.h"
#include "server/service.h"
#include "streaming/v1/streaming.grpc.pb.h"
#include "streaming/v1/streaming.pb.h"

int main() {
  streaming::v1::PingReply reply;
  reply.set_message("Sending ping to consumer");
  reply.set_seq(7);

  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(reply, &json);
  if (!status.ok()) {
    std::cerr << "MessageToJsonString: " << status.ToString() << "\n";
    return 1;
  }
  std::cout << json << "\n";

  gravity::server::Service service("streaming.v1.Streaming");
  absl::Status added = service.AddStream<streaming::v1::PingRequest, streaming::v1::PingReply>(
      "Ping", [](const streaming::v1::PingRequest& request,
                 gravity::server::Stream<streaming::v1::PingReply> stream) {
        for (int i = 1; i <= request.count(); ++i) {
          streaming::v1::PingReply ping;
          ping.set_message("Sending ping to " + request.to());
          ping.set_seq(i);
          stream.Send(ping);
        }
        stream.Close();
      });
  if (!added.ok()) return 1;
  gravity::server::ServerOptions options;
  options.listen = "127.0.0.1:0";
  auto server = gravity::server::Server::Start(options, {&service});
  if (!server.ok()) return 1;

  auto channel = grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials());
  auto stub = streaming::v1::Streaming::NewStub(channel);
  streaming::v1::PingRequest request;
  request.set_to("consumer");
  request.set_count(2);
  auto pings = gravity::client::Open(stub, &streaming::v1::Streaming::Stub::async::Ping, request,
                                     gravity::client::CallOptions().WithTimeout(absl::Seconds(10)));
  if (!pings.ok()) return 1;
  for (const streaming::v1::PingReply& ping : *pings)
    std::cout << ping.seq() << " " << ping.message() << "\n";
  std::cout << "status " << pings->status().ToString() << "\n";

  auto descriptors = gravity::bridge::DescriptorsOfLinkedServices({"streaming.v1.Streaming"});
  if (!descriptors.ok()) return 1;
  gravity::bridge::BridgeOptions bridge_options;
  bridge_options.listen = "127.0.0.1:0";
  auto bridge = gravity::bridge::Bridge::Start(bridge_options, channel, *descriptors);
  if (!bridge.ok()) return 1;
  std::cout << "bridge routes " << (*bridge)->RouteDescriptions().size() << "\n";
  (*bridge)->Shutdown();
  return 0;
}
