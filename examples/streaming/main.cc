// streaming-server: the seed's example service as a gRPC server.
//
//   streaming-server --listen=127.0.0.1:50051 --admin_token=secret
//   streaming-server --jwt_key=auth-public.pem        # StreamUsers: a JWT with "role": "admin"
//
// Prints the address it listens on, serves until SIGINT/SIGTERM, then drains.
#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "examples/streaming/streaming_service.h"
#include "server/jwt.h"
#include "server/server.h"

namespace {

std::string AdminTokenFromEnv() {
  const char* token = std::getenv("GRAVITY_ADMIN_TOKEN");
  return token == nullptr ? "" : token;
}

}  // namespace

ABSL_FLAG(std::string, listen, "127.0.0.1:50051", "host:port to listen on; port 0 picks one");
ABSL_FLAG(std::string, admin_token, AdminTokenFromEnv(),
          "bearer token for StreamUsers (default: $GRAVITY_ADMIN_TOKEN)");
ABSL_FLAG(std::string, jwt_key, "",
          "PEM public key (RS256, ES256): StreamUsers then takes a JWT whose role claim is admin, "
          "instead of --admin_token");
ABSL_FLAG(std::string, jwks, "", "JWKS file of JWT keys (by kid), instead of or with --jwt_key");
ABSL_FLAG(std::string, jwt_issuer, "", "required JWT iss (empty: not checked)");
ABSL_FLAG(std::string, jwt_audience, "", "required JWT aud (empty: not checked)");
ABSL_FLAG(absl::Duration, jwt_leeway, absl::Seconds(5), "clock skew allowed on JWT exp and nbf");
ABSL_FLAG(std::string, jwt_cookie, "access_token",
          "cookie that may carry the JWT when there is no Authorization header");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate file (TLS when set with --tls_key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key file");
ABSL_FLAG(absl::Duration, drain, absl::Seconds(5), "how long open streams may run after SIGTERM");

namespace {

// StreamUsers' Admin guard: a JWT with "role": "admin" when keys are given,
// the static --admin_token otherwise.
absl::StatusOr<std::unique_ptr<gravity::server::Service>> MakeService() {
  gravity::server::JwtOptions jwt;
  if (!absl::GetFlag(FLAGS_jwt_key).empty()) jwt.key_files = {absl::GetFlag(FLAGS_jwt_key)};
  jwt.jwks_file = absl::GetFlag(FLAGS_jwks);
  if (jwt.key_files.empty() && jwt.jwks_file.empty()) {
    return gravity::examples::MakeStreamingService(absl::GetFlag(FLAGS_admin_token));
  }
  jwt.issuer = absl::GetFlag(FLAGS_jwt_issuer);
  jwt.audience = absl::GetFlag(FLAGS_jwt_audience);
  jwt.leeway = absl::GetFlag(FLAGS_jwt_leeway);
  jwt.cookie = absl::GetFlag(FLAGS_jwt_cookie);
  absl::StatusOr<gravity::server::Guard> require_jwt = gravity::server::RequireJwt(jwt);
  if (!require_jwt.ok()) return require_jwt.status();
  return gravity::examples::MakeStreamingService(
      {*std::move(require_jwt), gravity::server::RequireClaim("role", "admin")});
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Serves the streaming.v1.Streaming example over gRPC.");
  absl::ParseCommandLine(argc, argv);

  auto service = MakeService();
  if (!service.ok()) {
    std::cerr << "streaming-server: " << service.status() << "\n";
    return 1;
  }
  gravity::server::ServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  // Half a TLS pair would otherwise be an error without the flags' names.
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    std::cerr << "streaming-server: "
              << (options.tls_cert_file.empty() ? "--tls_key needs --tls_cert"
                                                : "--tls_cert needs --tls_key")
              << " (TLS takes both; neither serves plaintext)\n";
    return 1;
  }
  options.drain_timeout = absl::GetFlag(FLAGS_drain);
  auto server = gravity::server::Server::Start(options, {service->get()});
  if (!server.ok()) {
    std::cerr << "streaming-server: " << server.status() << "\n";
    return 1;
  }
  std::cout << "streaming-server listening on " << (*server)->address() << std::endl;
  (*server)->RunUntilSignal();
  std::cout << "streaming-server stopped" << std::endl;
  return 0;
}
