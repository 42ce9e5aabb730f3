// Uses an installed gravity: builds a streaming::v1::PingReply, prints it as
// proto3 JSON, and creates a gRPC stub of the example service (no call is
// made), so both the generated messages and gRPC link from the install.
#include <iostream>
#include <string>

#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "streaming/v1/streaming.grpc.pb.h"
#include "streaming/v1/streaming.pb.h"
// When server/, client/ and bridge/ install their headers, include one of each
// here (e.g. "server/stream.h", "client/reader.h", "bridge/bridge.h") and use
// a symbol from it, to prove they link from the install too.

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

  auto channel = grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials());
  auto stub = streaming::v1::Streaming::NewStub(channel);
  if (stub == nullptr) return 1;
  std::cout << streaming::v1::Streaming::service_full_name() << "\n";
  return 0;
}
