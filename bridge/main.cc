// gravity-bridge: serves the server-streaming methods of a gRPC backend as
// Server-Sent Events. See docs/bridge.md for every flag.
//
//   gravity-bridge --listen=127.0.0.1:8080 --backend=127.0.0.1:50051
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/signal_set.hpp"
#include "bridge/bridge.h"
#include "client/reflection.h"
#include "gravity_version.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:8080", "host:port to serve HTTP on; port 0 picks one");
ABSL_FLAG(std::string, backend, "127.0.0.1:50051",
          "gRPC target of the backend, e.g. host:port, dns:///svc:50051 or "
          "ipv4:10.0.0.1:50051,10.0.0.2:50051 (the last two: round_robin)");
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
ABSL_FLAG(double, retry_jitter, 0.5,
          "each stream's retry: (and each 503's Retry-After) is --retry times a factor drawn from "
          "[1 - this, 1 + this], so clients of a dead bridge come back spread out; 0 = exact");
ABSL_FLAG(int, max_stream_starts_per_second, 0,
          "new streams per second, bridge-wide; past it EventSource gets a retry: hint, others "
          "503; 0 = no limit");
ABSL_FLAG(std::vector<std::string>, cors_origin, {},
          "comma-separated origins allowed by CORS with credentials; * = any, no credentials");
ABSL_FLAG(std::vector<std::string>, forward_header, {},
          "comma-separated request headers forwarded as metadata (Authorization and Cookie "
          "always are)");
ABSL_FLAG(int, threads, 0, "I/O threads; 0 = one per core");
ABSL_FLAG(int, max_streams, 20000, "streams served at once; more get 503");
ABSL_FLAG(int, max_unary_calls, 1000, "unary calls in flight at once; more get 503");
ABSL_FLAG(int64_t, max_reply_bytes, 1024 * 1024,
          "a unary reply's bound, as protobuf and as JSON; bigger is 502; 0 = none");
ABSL_FLAG(int64_t, max_event_bytes, 64 * 1024,
          "one stream event's bound, as protobuf and as encoded; bigger ends the stream with "
          "RESOURCE_EXHAUSTED; 0 = none");
ABSL_FLAG(int, max_streams_per_client, 0, "streams at once per client address; 0 = no limit");
ABSL_FLAG(absl::Duration, max_stream_duration, absl::ZeroDuration(),
          "cut older streams with a retry: hint so browsers rebalance; 0 = never");
ABSL_FLAG(absl::Duration, accept_timeout, absl::Seconds(30),
          "a backend that neither accepts nor refuses a call this long gets 504");
ABSL_FLAG(int64_t, max_metadata_bytes, 6 * 1024,
          "request metadata forwarded per call (name + value + 32 per header); more gets 431. "
          "Keep it 2 KiB below the backend's GRPC_ARG_MAX_METADATA_SIZE (default 8 KiB)");
ABSL_FLAG(int, read_ahead_events, 32,
          "messages read from the backend ahead of a browser, per stream");
ABSL_FLAG(int64_t, read_ahead_bytes, 64 * 1024,
          "bytes of encoded events read ahead of a browser, per stream");
ABSL_FLAG(absl::Duration, write_timeout, absl::Seconds(60),
          "a socket write stalled this long drops the connection (a browser that stopped reading)");
ABSL_FLAG(std::string, access_log, "",
          "one JSON line per stream end (route, status, code, events, bytes, duration, client; "
          "never a header or query value): - for stderr, or a file to append to; empty: none");
ABSL_FLAG(absl::Duration, drain, absl::Seconds(5), "shutdown drain bound");
ABSL_FLAG(std::string, index_html, "", "HTML file served at / (e.g. the demo page)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain (leaf first): serve HTTPS (TLS 1.2+, ALPN h2 and http/1.1); "
          "SIGHUP reloads it");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert; SIGHUP reloads it");
ABSL_FLAG(absl::Duration, tls_handshake_timeout, absl::Seconds(10),
          "a TLS handshake not done within this closes the connection");
ABSL_FLAG(bool, start_traces, true,
          "give a call without a W3C traceparent a fresh one (about 1 KiB more per idle stream "
          "in the bridge and the backend); false forwards only what clients send");
ABSL_FLAG(bool, compression, true,
          "gzip for clients that accept it: streams (flushed after every batch of events) and "
          "plain or unary answers of 1 KiB or more");
ABSL_FLAG(int, compression_window_bits, 11,
          "a compressed stream's window, 2^bits bytes (9 to 15): 11 saves about 54 % of "
          "chat-sized events for about 15 KiB of zlib state per stream, 9 about 46 % for 9 KiB");
ABSL_FLAG(bool, http2, true,
          "serve HTTP/2: over TLS through ALPN, in cleartext with prior knowledge (h2c)");
ABSL_FLAG(int, http2_max_concurrent_streams, 100,
          "streams one HTTP/2 connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS)");
ABSL_FLAG(absl::Duration, header_timeout, absl::Seconds(10),
          "a request's head (HTTP/2: its headers and body) must arrive within this");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Seconds(60),
          "a connection with no request in flight for this long is closed");

namespace {

// Everything the flags name on disk, read and checked before anything
// starts: a file that is missing, unreadable or not what the flag needs stops
// the bridge with a message naming the flag and the file (fail closed: a bad
// --backend_ca must never fall back to the system roots).
struct FileConfig {
  std::string backend_roots;                                       // PEM; empty: the system roots
  std::optional<google::protobuf::FileDescriptorSet> descriptors;  // unset: reflection
  std::string index_html;
};

// The whole file; a directory, a missing or unreadable file is an error.
absl::StatusOr<std::string> ReadFlagFile(absl::string_view flag, const std::string& path) {
  auto failed = [&](int error) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, "=", path, ": cannot read: ", std::strerror(error)));
  };
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return failed(errno);
  std::string contents;
  char chunk[1 << 16];
  while (true) {
    const ssize_t n = read(fd, chunk, sizeof chunk);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      close(fd);
      return failed(error);
    }
    contents.append(chunk, static_cast<size_t>(n));
  }
  close(fd);
  return contents;
}

absl::StatusOr<FileConfig> LoadFileConfig() {
  FileConfig config;
  const bool tls = absl::GetFlag(FLAGS_backend_tls);
  const std::string ca = absl::GetFlag(FLAGS_backend_ca);
  if (!tls && (!ca.empty() || !absl::GetFlag(FLAGS_backend_tls_name).empty())) {
    return absl::InvalidArgumentError(
        "--backend_ca and --backend_tls_name need --backend_tls (without it the backend "
        "connection is plaintext)");
  }
  if (!ca.empty()) {
    absl::StatusOr<std::string> roots = ReadFlagFile("backend_ca", ca);
    if (!roots.ok()) return roots.status();
    if (!absl::StrContains(*roots, "-----BEGIN CERTIFICATE-----")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--backend_ca=", ca, ": not a PEM certificate (no -----BEGIN CERTIFICATE-----)"));
    }
    config.backend_roots = *std::move(roots);
  }
  if (const std::string path = absl::GetFlag(FLAGS_descriptor_set); !path.empty()) {
    absl::StatusOr<std::string> bytes = ReadFlagFile("descriptor_set", path);
    if (!bytes.ok()) return bytes.status();
    google::protobuf::FileDescriptorSet set;
    if (!set.ParseFromString(*bytes)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--descriptor_set=", path, ": not a FileDescriptorSet"));
    }
    if (gravity::bridge::ServicesIn(set).empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--descriptor_set=", path,
          ": no services in it (write it with protoc --descriptor_set_out --include_imports)"));
    }
    config.descriptors = std::move(set);
  }
  if (const std::string path = absl::GetFlag(FLAGS_index_html); !path.empty()) {
    absl::StatusOr<std::string> html = ReadFlagFile("index_html", path);
    if (!html.ok()) return html.status();
    if (html->empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--index_html=", path, ": empty file"));
    }
    config.index_html = *std::move(html);
  }
  return config;
}

std::shared_ptr<grpc::Channel> BackendChannel(const FileConfig& config) {
  const std::string target = absl::GetFlag(FLAGS_backend);
  grpc::ChannelArguments arguments = gravity::bridge::BackendChannelArguments();
  // A target that names several addresses spreads calls over all of them
  // (gRPC's default, pick_first, would send everything to the first).
  for (const char* scheme : {"dns:", "ipv4:", "ipv6:"}) {
    if (absl::StartsWith(target, scheme)) arguments.SetLoadBalancingPolicyName("round_robin");
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (absl::GetFlag(FLAGS_backend_tls)) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = config.backend_roots;
    if (const std::string name = absl::GetFlag(FLAGS_backend_tls_name); !name.empty()) {
      arguments.SetSslTargetNameOverride(name);
    }
    credentials = grpc::SslCredentials(ssl);
  }
  return grpc::CreateCustomChannel(target, credentials, arguments);
}

absl::StatusOr<google::protobuf::FileDescriptorSet> Discover(
    const FileConfig& config, const std::shared_ptr<grpc::Channel>& channel) {
  if (config.descriptors.has_value()) return *config.descriptors;
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
  // absl handles --version itself: it prints this and exits 0.
  absl::FlagsUsageConfig usage_config;
  usage_config.version_string = [] { return std::string("gravity-bridge " GRAVITY_VERSION "\n"); };
  absl::SetFlagsUsageConfig(usage_config);
  absl::ParseCommandLine(argc, argv);
  // Debian's Abseil is built without NDEBUG, so every absl::Mutex (gRPC's
  // too) records lock order for deadlock detection: about 5 % of the
  // bridge's CPU per event. The tests keep it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  absl::StatusOr<FileConfig> files = LoadFileConfig();
  if (!files.ok()) {
    std::cerr << "gravity-bridge: " << files.status().message() << "\n";
    return 1;
  }
  std::shared_ptr<grpc::Channel> channel = BackendChannel(*files);
  auto descriptors = Discover(*files, channel);
  if (!descriptors.ok()) {
    std::cerr << "gravity-bridge: cannot learn the backend's services: " << descriptors.status()
              << "\n";
    return 1;
  }
  gravity::bridge::BridgeOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.keepalive = absl::GetFlag(FLAGS_keepalive);
  options.retry = absl::GetFlag(FLAGS_retry);
  if (absl::GetFlag(FLAGS_retry_jitter) < 0 || absl::GetFlag(FLAGS_retry_jitter) > 1) {
    std::cerr << "gravity-bridge: --retry_jitter must be between 0 and 1\n";
    return 1;
  }
  options.retry_jitter = absl::GetFlag(FLAGS_retry_jitter);
  options.max_stream_starts_per_second = absl::GetFlag(FLAGS_max_stream_starts_per_second);
  options.cors_origins = absl::GetFlag(FLAGS_cors_origin);
  options.forward_headers = absl::GetFlag(FLAGS_forward_header);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.max_streams = absl::GetFlag(FLAGS_max_streams);
  options.max_streams_per_client = absl::GetFlag(FLAGS_max_streams_per_client);
  options.max_unary_calls = absl::GetFlag(FLAGS_max_unary_calls);
  if (absl::GetFlag(FLAGS_max_reply_bytes) < 0 || absl::GetFlag(FLAGS_max_event_bytes) < 0) {
    std::cerr << "gravity-bridge: --max_reply_bytes and --max_event_bytes must be 0 or more\n";
    return 1;
  }
  options.max_reply_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_max_reply_bytes));
  options.max_event_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_max_event_bytes));
  options.max_stream_duration = absl::GetFlag(FLAGS_max_stream_duration);
  options.accept_timeout = absl::GetFlag(FLAGS_accept_timeout);
  options.drain_timeout = absl::GetFlag(FLAGS_drain);
  if (absl::GetFlag(FLAGS_max_metadata_bytes) < 0) {
    std::cerr << "gravity-bridge: --max_metadata_bytes must not be negative\n";
    return 1;
  }
  options.max_metadata_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_max_metadata_bytes));
  if (absl::GetFlag(FLAGS_read_ahead_events) < 1 || absl::GetFlag(FLAGS_read_ahead_bytes) < 1) {
    std::cerr << "gravity-bridge: --read_ahead_events and --read_ahead_bytes must be positive\n";
    return 1;
  }
  options.write_timeout = absl::GetFlag(FLAGS_write_timeout);
  options.access_log = absl::GetFlag(FLAGS_access_log);
  options.read_ahead_events = absl::GetFlag(FLAGS_read_ahead_events);
  options.read_ahead_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_read_ahead_bytes));
  options.index_html = std::move(files->index_html);
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.tls_handshake_timeout = absl::GetFlag(FLAGS_tls_handshake_timeout);
  options.http2 = absl::GetFlag(FLAGS_http2);
  options.compression = absl::GetFlag(FLAGS_compression);
  options.compression_window_bits = absl::GetFlag(FLAGS_compression_window_bits);
  options.start_traces = absl::GetFlag(FLAGS_start_traces);
  options.http2_max_concurrent_streams = absl::GetFlag(FLAGS_http2_max_concurrent_streams);
  options.header_timeout = absl::GetFlag(FLAGS_header_timeout);
  options.idle_timeout = absl::GetFlag(FLAGS_idle_timeout);
  // Caught from before the bridge listens: a SIGTERM right after the
  // "listening" line must drain, not kill.
  boost::asio::io_context signals_context;
  boost::asio::signal_set signals(signals_context, SIGINT, SIGTERM);
  boost::asio::signal_set hangups(signals_context, SIGHUP);
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
  std::cout << "gravity-bridge listening on " << ((*bridge)->tls() ? "https://" : "http://")
            << (*bridge)->address() << std::endl;

  // SIGHUP: the certificate and key are read again (rotation). Connections
  // already up are untouched; a pair that does not load leaves the old one.
  std::function<void()> await_hangup = [&] {
    hangups.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;  // shutting down
      if ((*bridge)->tls()) {
        const absl::Status reloaded = (*bridge)->ReloadTls();
        if (reloaded.ok()) {
          std::cerr << "gravity-bridge: TLS certificate reloaded from " << options.tls_cert
                    << std::endl;
        } else {
          std::cerr << "gravity-bridge: TLS reload failed: " << reloaded.message()
                    << "; keeping the previous certificate" << std::endl;
        }
      }
      await_hangup();
    });
  };
  await_hangup();
  signals.async_wait([&](const boost::system::error_code&, int) { hangups.cancel(); });
  signals_context.run();  // returns once a signal has arrived
  std::cout << "gravity-bridge draining" << std::endl;
  (*bridge)->Shutdown();
  std::cout << "gravity-bridge stopped" << std::endl;
  return 0;
}
