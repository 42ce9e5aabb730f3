// JWT guards: RequireJwt lets a call through with a valid JSON Web Token,
// RequireClaim checks what the token says. The seed's `Admin` guard, for real:
//
//   JwtOptions jwt;
//   jwt.jwks_file = "/etc/myapp/jwks.json";      // or key_files / hmac_secret_file
//   jwt.issuer = "https://auth.example.com/";
//   jwt.audience = "myapp";
//   absl::StatusOr<Guard> require_jwt = RequireJwt(jwt);   // a bad key file: an error here
//   service.Guard(*require_jwt);                             // every method needs a token
//   service.GuardMethod("StreamUsers", RequireClaim("role", "admin"));
//
// A call with no token, a bad signature, an unknown `kid`, `alg: none` (or
// any algorithm its key was not made for), an expired or not-yet-valid token,
// or the wrong `iss`/`aud` gets UNAUTHENTICATED (401 through gravity-bridge);
// a valid token without the claim gets PERMISSION_DENIED (403). Handlers read
// the verified claims with `call().jwt()`.
//
// Tokens expire while streams are open: a stream is ended when its token does
// (`exp`, plus the leeway), with UNAUTHENTICATED and kCredentialsExpiredMessage.
// gravity-bridge turns that into a `retry:` cut, not an error: the browser
// reconnects with a fresh token (@gravity/client calls `token()` on every
// reconnect) and resumes from its Last-Event-ID. A native client sees the
// UNAUTHENTICATED status and reconnects with a new token itself.
//
// Keys rotate without a restart: the key files are re-read when they change.
//
// Thread-safety: the guards are called concurrently from gRPC's threads.
// Verification is a signature check (tens of microseconds for RS256/ES256)
// and, at most once per `reload_interval`, a stat() of each key file.
#ifndef GRAVITY_SERVER_JWT_H_
#define GRAVITY_SERVER_JWT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/guard.h"
#include "server/jwt_claims.h"

namespace gravity::server {

struct JwtOptions {
  // Keys: any mix, at least one. A key verifies one algorithm only, fixed by
  // its type, never by the token.
  // PEM public keys (or certificates): RSA (2048 bits or more) for RS256, EC
  // P-256 for ES256.
  std::vector<std::string> key_files;
  // HS256: the file's bytes are the shared secret (a final newline is
  // dropped); at least 32 bytes.
  std::string hmac_secret_file;
  // A JWKS document (RFC 7517, as identity providers publish it): "RSA",
  // "EC" (P-256) and "oct" keys, chosen by the token's `kid`.
  std::string jwks_file;
  // How often the files are checked for changes (on the verifying thread).
  absl::Duration reload_interval = absl::Seconds(1);

  // Required `iss` and `aud` (a string, or an array holding it); empty: not
  // checked.
  std::string issuer;
  std::string audience;
  // Clock skew allowed on `exp` and `nbf`. A stream ends at exp + leeway.
  absl::Duration leeway = absl::Seconds(5);
  // Tokens without `exp` are refused unless this is false.
  bool require_exp = true;

  // The token comes from `authorization: Bearer <token>`, or, when there is
  // none, from this cookie (e.g. "access_token"; empty: no cookie).
  std::string cookie;
};

// The guard, or INVALID_ARGUMENT when no key is given or a key file cannot be
// read or parsed at start-up (later, a file that fails to parse keeps the
// keys it gave before).
absl::StatusOr<Guard> RequireJwt(JwtOptions options);

// Requires a claim `name` equal to `value`, or an array holding it. Put it
// after RequireJwt: without a verified token it answers UNAUTHENTICATED.
Guard RequireClaim(std::string name, std::string value);

}  // namespace gravity::server

#endif  // GRAVITY_SERVER_JWT_H_
