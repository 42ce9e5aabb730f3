// Server: a gRPC server for gravity services with the standard health service,
// server reflection (the bridge discovers services through it), TLS, port 0,
// and a graceful shutdown with a bounded drain.
//
//   gravity::server::ServerOptions options;
//   options.listen = "127.0.0.1:0";
//   auto server = gravity::server::Server::Start(options, {&service});
//   if (!server.ok()) return fail(server.status());
//   std::cout << "listening on " << (*server)->address() << "\n";
//   (*server)->RunUntilSignal();  // SIGTERM / SIGINT, then drains
//
// SIGPIPE: Start sets SIGPIPE to SIG_IGN when it is still at its default
// (SIG_DFL), once per process, so a write to a socket that its peer closed
// (a Redis that restarts or refuses a connection) fails with EPIPE instead of
// killing the server. An application's own SIGPIPE handler is left alone.
//
// Thread-safety: Shutdown and Wait may be called from any thread; the
// services must outlive the Server.
#ifndef GRAVITY_SERVER_SERVER_H_
#define GRAVITY_SERVER_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/server.h"

namespace gravity::server {

struct ServerOptions {
  // host:port; port 0 picks a free port (see Server::port()).
  std::string listen = "0.0.0.0:50051";
  // PEM files; both set means TLS, both empty means plaintext.
  std::string tls_cert_file;
  std::string tls_key_file;
  // How long open streams may go on after shutdown starts; then they are
  // cancelled, so shutdown never hangs.
  absl::Duration drain_timeout = absl::Seconds(5);
};

class Server {
 public:
  // Builds and starts the server. Errors: unreadable TLS files, a half-given
  // TLS pair, an address that cannot be bound.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options,
                                                       const std::vector<grpc::Service*>& services);
  ~Server();  // Shutdown(), then waits.

  int port() const { return port_; }
  // The listening address with the chosen port, e.g. "127.0.0.1:41234".
  const std::string& address() const { return address_; }

  // A channel to this server inside the process (no socket), e.g. for a
  // bridge embedded in the same binary.
  std::shared_ptr<grpc::Channel> InProcessChannel();

  // Marks the health service NOT_SERVING, stops accepting calls, ends every
  // gravity stream with UNAVAILABLE once its queued messages are out (clients
  // reconnect and resume elsewhere), and cancels whatever is still open after
  // drain_timeout. Returns when every call has ended. Idempotent.
  void Shutdown();

  // Blocks until SIGINT or SIGTERM arrives or Shutdown is called. Call from
  // the main thread.
  void WaitForSignal();
  // WaitForSignal(), then Shutdown().
  void RunUntilSignal();

 private:
  Server(std::unique_ptr<grpc::Server> server, std::vector<grpc::Service*> services,
         ServerOptions options, int port, std::string address);

  const std::unique_ptr<grpc::Server> server_;
  std::vector<grpc::Service*> services_;
  const ServerOptions options_;
  const int port_;
  const std::string address_;
  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  bool shutdown_done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace gravity::server

#endif  // GRAVITY_SERVER_SERVER_H_
