// streaming-embedded: one process that serves the example service over gRPC
// and, through the bridge on the in-process channel, as Server-Sent Events,
// as the seed's framework does.
//
//   streaming-embedded --grpc_listen=127.0.0.1:50051 --http_listen=127.0.0.1:8080
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "bridge/bridge.h"
#include "examples/streaming/streaming_service.h"
#include "server/server.h"

ABSL_FLAG(std::string, grpc_listen, "127.0.0.1:50051", "host:port for gRPC; port 0 picks one");
ABSL_FLAG(std::string, http_listen, "127.0.0.1:8080", "host:port for SSE; port 0 picks one");
ABSL_FLAG(std::string, admin_token, "", "bearer token for StreamUsers");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Serves the example service over gRPC and SSE in one process.");
  absl::ParseCommandLine(argc, argv);

  auto service = gravity::examples::MakeStreamingService(absl::GetFlag(FLAGS_admin_token));
  if (!service.ok()) {
    std::cerr << service.status() << "\n";
    return 1;
  }
  gravity::server::ServerOptions server_options;
  server_options.listen = absl::GetFlag(FLAGS_grpc_listen);
  auto server = gravity::server::Server::Start(server_options, {service->get()});
  if (!server.ok()) {
    std::cerr << server.status() << "\n";
    return 1;
  }
  // The services are linked in: no reflection round trip needed.
  auto descriptors = gravity::bridge::DescriptorsOfLinkedServices({(*service)->full_name()});
  if (!descriptors.ok()) {
    std::cerr << descriptors.status() << "\n";
    return 1;
  }
  gravity::bridge::BridgeOptions bridge_options;
  bridge_options.listen = absl::GetFlag(FLAGS_http_listen);
  auto bridge =
      gravity::bridge::Bridge::Start(bridge_options, (*server)->InProcessChannel(), *descriptors);
  if (!bridge.ok()) {
    std::cerr << bridge.status() << "\n";
    return 1;
  }
  std::cout << "gRPC on " << (*server)->address() << ", SSE on http://" << (*bridge)->address()
            << std::endl;
  (*server)->WaitForSignal();
  // Bridge first: browsers get a retry hint, then gRPC clients are drained.
  (*bridge)->Shutdown();
  (*server)->Shutdown();
  return 0;
}
