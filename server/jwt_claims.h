// JwtClaims: the claims of a JSON Web Token that a guard (RequireJwt, in
// server/jwt.h) has verified, as handlers see them through CallInfo::jwt().
//
//   if (const JwtClaims* claims = stream.call().jwt()) {
//     std::string user = claims->subject();
//     bool admin = claims->Has("role", "admin");
//   }
//
// Only a verified token's claims are ever built into one: the signature, `exp`,
// `nbf`, `iss` and `aud` were checked before. Immutable: thread-safe.
#ifndef GRAVITY_SERVER_JWT_CLAIMS_H_
#define GRAVITY_SERVER_JWT_CLAIMS_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/struct.pb.h"

namespace gravity::server {

class JwtClaims {
 public:
  // Parses the claims object of a token (its decoded payload). INVALID_ARGUMENT
  // when it is not a JSON object or a registered claim has the wrong type.
  static absl::StatusOr<JwtClaims> FromJson(absl::string_view json);

  // Every claim, as the token carried it.
  const google::protobuf::Struct& fields() const { return fields_; }

  // A string claim, or nullopt when it is absent or not a string.
  std::optional<std::string> String(absl::string_view name) const;
  // True when claim `name` is the string `value`, or an array holding it (so
  // `"role": "admin"` and `"roles": ["admin", "ops"]` both match).
  bool Has(absl::string_view name, absl::string_view value) const;

  // The registered claims; empty / InfinitePast / InfiniteFuture when absent.
  std::string subject() const { return String("sub").value_or(""); }
  std::string issuer() const { return String("iss").value_or(""); }
  absl::Time expires_at() const { return expires_at_; }
  absl::Time not_before() const { return not_before_; }

 private:
  google::protobuf::Struct fields_;
  absl::Time expires_at_ = absl::InfiniteFuture();
  absl::Time not_before_ = absl::InfinitePast();
};

}  // namespace gravity::server

#endif  // GRAVITY_SERVER_JWT_CLAIMS_H_
