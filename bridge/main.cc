// gravity-bridge: serves the server-streaming methods of a gRPC backend as
// Server-Sent Events. See README.md ("The SSE bridge") for every flag.
//
//   gravity-bridge --listen=127.0.0.1:8080 --backend=127.0.0.1:50051
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/signal_set.hpp"
#include "bridge/bridge.h"
#include "client/reflection.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:8080", "host:port to serve HTTP on; port 0 picks one");
ABSL_FLAG(std::string, backend, "127.0.0.1:50051",
          "gRPC target of the backend, e.g. host:port or dns:///svc:50051 (round_robin)");
ABSL_FLAG(bool, backend_tls, false, "use TLS to the backend");
ABSL_FLAG(std::string, backend_ca, "", "PEM roots for --backend_tls (default: system roots)");
ABSL_FLAG(std::string, backend_tls_name, "", "TLS server name override for --backend_tls");
ABSL_FLAG(std::string, descriptor_set, "",
          "FileDescriptorSet (protoc --include_imports) instead of server reflection");
ABSL_FLAG(absl::Duration, discovery_timeout, absl::Seconds(30),
          "how long to keep trying reflection while the backend comes up");
ABSL_FLAG(absl::Duration, keepalive, absl::Seconds(15),
          "keep-alive comment period on idle streams");
ABSL_FLAG(absl::Duration, retry, absl::Seconds(2), "the retry: hint sent when a backend is down");
ABSL_FLAG(std::vector<std::string>, cors_origin, {},
          "comma-separated origins allowed by CORS with credentials; * = any, no credentials");
ABSL_FLAG(std::vector<std::string>, forward_header, {},
          "comma-separated request headers forwarded as metadata (Authorization and Cookie "
          "always are)");
ABSL_FLAG(int, threads, 0, "I/O threads; 0 = one per core");
ABSL_FLAG(int, max_streams, 20000, "streams served at once; more get 503");
ABSL_FLAG(int, max_streams_per_client, 0, "streams at once per client address; 0 = no limit");
ABSL_FLAG(absl::Duration, max_stream_duration, absl::ZeroDuration(),
          "cut older streams with a retry: hint so browsers rebalance; 0 = never");
ABSL_FLAG(absl::Duration, accept_timeout, absl::Seconds(30),
          "a backend that neither accepts nor refuses a call this long gets 504");
ABSL_FLAG(int64_t, max_metadata_bytes, 6 * 1024,
          "request metadata forwarded per call (name + value + 32 per header); more gets 431. "
          "Keep it 2 KiB below the backend's GRPC_ARG_MAX_METADATA_SIZE (default 8 KiB)");
ABSL_FLAG(absl::Duration, drain, absl::Seconds(5), "shutdown drain bound");
ABSL_FLAG(std::string, index_html, "", "HTML file served at / (e.g. the demo page)");

namespace {

std::shared_ptr<grpc::Channel> BackendChannel() {
  const std::string target = absl::GetFlag(FLAGS_backend);
  grpc::ChannelArguments arguments;
  if (absl::StartsWith(target, "dns:")) arguments.SetLoadBalancingPolicyName("round_robin");
  // gRPC's default reconnect backoff grows to two minutes; browsers retry
  // every --retry, so a restarted backend must be found again quickly.
  arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (absl::GetFlag(FLAGS_backend_tls)) {
    grpc::SslCredentialsOptions ssl;
    if (const std::string ca = absl::GetFlag(FLAGS_backend_ca); !ca.empty()) {
      std::ifstream in(ca);
      std::stringstream roots;
      roots << in.rdbuf();
      ssl.pem_root_certs = roots.str();
    }
    if (const std::string name = absl::GetFlag(FLAGS_backend_tls_name); !name.empty()) {
      arguments.SetSslTargetNameOverride(name);
    }
    credentials = grpc::SslCredentials(ssl);
  }
  return grpc::CreateCustomChannel(target, credentials, arguments);
}

absl::StatusOr<google::protobuf::FileDescriptorSet> Discover(
    const std::shared_ptr<grpc::Channel>& channel) {
  if (const std::string path = absl::GetFlag(FLAGS_descriptor_set); !path.empty()) {
    return gravity::bridge::LoadDescriptorSet(path);
  }
  // The backend may still be starting: retry with a capped backoff.
  const absl::Time deadline = absl::Now() + absl::GetFlag(FLAGS_discovery_timeout);
  absl::Duration backoff = absl::Milliseconds(100);
  while (true) {
    auto set = gravity::client::FetchServiceDescriptors(channel, absl::Seconds(5));
    if (set.ok() || set.status().code() != absl::StatusCode::kUnavailable ||
        absl::Now() + backoff > deadline) {
      return set;
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(2));
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Serves a gRPC backend's server streams as Server-Sent Events.");
  absl::ParseCommandLine(argc, argv);

  std::shared_ptr<grpc::Channel> channel = BackendChannel();
  auto descriptors = Discover(channel);
  if (!descriptors.ok()) {
    std::cerr << "gravity-bridge: cannot learn the backend's services: " << descriptors.status()
              << "\n";
    return 1;
  }
  gravity::bridge::BridgeOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.keepalive = absl::GetFlag(FLAGS_keepalive);
  options.retry = absl::GetFlag(FLAGS_retry);
  options.cors_origins = absl::GetFlag(FLAGS_cors_origin);
  options.forward_headers = absl::GetFlag(FLAGS_forward_header);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.max_streams = absl::GetFlag(FLAGS_max_streams);
  options.max_streams_per_client = absl::GetFlag(FLAGS_max_streams_per_client);
  options.max_stream_duration = absl::GetFlag(FLAGS_max_stream_duration);
  options.accept_timeout = absl::GetFlag(FLAGS_accept_timeout);
  options.drain_timeout = absl::GetFlag(FLAGS_drain);
  if (absl::GetFlag(FLAGS_max_metadata_bytes) < 0) {
    std::cerr << "gravity-bridge: --max_metadata_bytes must not be negative\n";
    return 1;
  }
  options.max_metadata_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_max_metadata_bytes));
  if (const std::string page = absl::GetFlag(FLAGS_index_html); !page.empty()) {
    std::ifstream in(page);
    if (!in) {
      std::cerr << "gravity-bridge: cannot read " << page << "\n";
      return 1;
    }
    std::stringstream html;
    html << in.rdbuf();
    options.index_html = html.str();
  }
  auto bridge = gravity::bridge::Bridge::Start(options, channel, *descriptors);
  if (!bridge.ok()) {
    std::cerr << "gravity-bridge: " << bridge.status() << "\n";
    return 1;
  }
  for (const std::string& warning : (*bridge)->warnings()) {
    std::cerr << "gravity-bridge: warning: " << warning << "\n";
  }
  for (const std::string& route : (*bridge)->RouteDescriptions()) {
    std::cout << "gravity-bridge: " << route << "\n";
  }
  std::cout << "gravity-bridge listening on http://" << (*bridge)->address() << std::endl;

  boost::asio::io_context signals_context;
  boost::asio::signal_set signals(signals_context, SIGINT, SIGTERM);
  signals.async_wait([](const boost::system::error_code&, int) {});
  signals_context.run();  // returns once a signal has arrived
  std::cout << "gravity-bridge draining" << std::endl;
  (*bridge)->Shutdown();
  std::cout << "gravity-bridge stopped" << std::endl;
  return 0;
}
