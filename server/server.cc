#include "server/server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "server/internal/ignore_sigpipe.h"
#include "server/service.h"

namespace gravity::server {

namespace {

// The whole file; a directory, a missing or unreadable file is an error
// naming `what` and the path.
absl::StatusOr<std::string> ReadFile(absl::string_view what, const std::string& path) {
  auto failed = [&](int error) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", what, " ", path, ": ", std::strerror(error)));
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

// The files are read and given a cheap PEM check here, so a wrong file is a
// start-up error naming it (gRPC would only say it cannot listen).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const ServerOptions& options) {
  if (options.tls_cert_file.empty() && options.tls_key_file.empty()) {
    return grpc::InsecureServerCredentials();
  }
  if (options.tls_cert_file.empty() || options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TLS needs both a certificate and a key file; ",
        options.tls_cert_file.empty() ? "tls_cert_file" : "tls_key_file", " is not set"));
  }
  absl::StatusOr<std::string> cert = ReadFile("TLS certificate", options.tls_cert_file);
  if (!cert.ok()) return cert.status();
  if (!absl::StrContains(*cert, "-----BEGIN CERTIFICATE-----")) {
    return absl::InvalidArgumentError(absl::StrCat("TLS certificate ", options.tls_cert_file,
                                                   " is not PEM (no -----BEGIN CERTIFICATE-----)"));
  }
  absl::StatusOr<std::string> key = ReadFile("TLS key", options.tls_key_file);
  if (!key.ok()) return key.status();
  if (!absl::StrContains(*key, "PRIVATE KEY-----")) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS key ", options.tls_key_file, " is not a PEM private key"));
  }
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(ssl);
}

// The write end of the self-pipe that the signal handler wakes RunUntilSignal
// through (write is async-signal-safe; anything else there is not).
std::atomic<int> signal_pipe_write{-1};

void OnTerminationSignal(int) {
  const int fd = signal_pipe_write.load();
  if (fd >= 0) {
    const char byte = 1;
    [[maybe_unused]] ssize_t ignored = write(fd, &byte, 1);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options,
                                                      const std::vector<grpc::Service*>& services) {
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = Credentials(options);
  if (!credentials.ok()) return credentials.status();

  // A peer that closed its socket must cost one connection, never the
  // process: see ignore_sigpipe.h (Redis via hiredis writes with write()).
  internal::IgnoreSigpipe();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // Without this a second server on a taken port would silently share it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  int port = 0;
  builder.AddListeningPort(options.listen, *credentials, &port);
  for (grpc::Service* service : services) builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    // With TLS, gRPC also fails here on a PEM file it cannot use.
    const std::string tls =
        options.tls_cert_file.empty()
            ? ""
            : absl::StrCat(" (or TLS certificate ", options.tls_cert_file, " and key ",
                           options.tls_key_file, " are not a usable pair)");
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen, tls));
  }
  server->GetHealthCheckService()->SetServingStatus(true);

  absl::string_view host = options.listen;
  if (size_t colon = host.rfind(':'); colon != absl::string_view::npos)
    host = host.substr(0, colon);
  std::string address = absl::StrCat(host, ":", port);
  return std::unique_ptr<Server>(
      new Server(std::move(server), services, options, port, std::move(address)));
}

Server::Server(std::unique_ptr<grpc::Server> server, std::vector<grpc::Service*> services,
               ServerOptions options, int port, std::string address)
    : server_(std::move(server)),
      services_(std::move(services)),
      options_(std::move(options)),
      port_(port),
      address_(std::move(address)) {}

Server::~Server() { Shutdown(); }

std::shared_ptr<grpc::Channel> Server::InProcessChannel() {
  return server_->InProcessChannel(grpc::ChannelArguments());
}

void Server::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) {
      // A second caller returns when the first one is done.
      mu_.Await(absl::Condition(&shutdown_done_));
      return;
    }
    shut_down_ = true;
  }
  server_->GetHealthCheckService()->SetServingStatus(false);
  const grpc::Status going_away(grpc::StatusCode::UNAVAILABLE, "the server is shutting down");
  for (grpc::Service* service : services_) {
    if (auto* gravity_service = dynamic_cast<Service*>(service)) {
      gravity_service->EndAllStreams(going_away);
    }
  }
  // Past the deadline gRPC cancels what is still open: streams see OnCancel
  // and finish, so this returns within about drain_timeout.
  server_->Shutdown(absl::ToChronoTime(absl::Now() + options_.drain_timeout));
  server_->Wait();
  absl::MutexLock lock(&mu_);
  shutdown_done_ = true;
}

void Server::RunUntilSignal() {
  WaitForSignal();
  Shutdown();
}

void Server::WaitForSignal() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return;
  signal_pipe_write.store(fds[1]);
  struct sigaction action = {};
  action.sa_handler = OnTerminationSignal;
  sigemptyset(&action.sa_mask);
  struct sigaction old_int, old_term;
  sigaction(SIGINT, &action, &old_int);
  sigaction(SIGTERM, &action, &old_term);

  // Wakes once a second to notice a Shutdown called from elsewhere.
  pollfd wait_for = {fds[0], POLLIN, 0};
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (shut_down_) break;
    }
    const int ready = poll(&wait_for, 1, 1000);
    if (ready > 0) break;
    if (ready < 0 && errno != EINTR) break;
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  signal_pipe_write.store(-1);
  close(fds[0]);
  close(fds[1]);
}

}  // namespace gravity::server
