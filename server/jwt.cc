#include "server/jwt.h"

#include <jwt.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "server/internal/jwt_keys.h"

namespace gravity::server {

namespace {

using internal::JwtAlgorithm;
using internal::JwtKey;

// Far above any real token (a few hundred bytes to a few KiB); a bound on the
// work an unauthenticated caller can ask for.
constexpr size_t kMaxTokenBytes = 16 * 1024;

grpc::Status Unauthenticated(std::string message) {
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::move(message));
}

jwt_alg_t LibjwtAlgorithm(JwtAlgorithm algorithm) {
  switch (algorithm) {
    case JwtAlgorithm::kHs256:
      return JWT_ALG_HS256;
    case JwtAlgorithm::kRs256:
      return JWT_ALG_RS256;
    case JwtAlgorithm::kEs256:
      return JWT_ALG_ES256;
  }
  return JWT_ALG_INVAL;
}

struct JwtDeleter {
  void operator()(jwt_t* jwt) const { jwt_free(jwt); }
};

std::optional<std::string> CookieValue(const CallInfo& call, absl::string_view name) {
  auto [begin, end] = call.metadata().equal_range("cookie");
  for (auto it = begin; it != end; ++it) {
    for (absl::string_view pair : absl::StrSplit(it->second, ';')) {
      pair = absl::StripAsciiWhitespace(pair);
      if (absl::ConsumePrefix(&pair, name) && absl::ConsumePrefix(&pair, "=")) {
        return std::string(pair);
      }
    }
  }
  return std::nullopt;
}

// The token's header: its algorithm and key id. Read before verifying, to
// pick the key; verification then insists on the same algorithm.
struct TokenHeader {
  JwtAlgorithm algorithm;
  std::optional<std::string> kid;
};

absl::StatusOr<TokenHeader> ReadHeader(absl::string_view token) {
  std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty()) {
    return absl::InvalidArgumentError("the token is not a signed JWT (header.payload.signature)");
  }
  std::string json;
  google::protobuf::Struct header;
  if (!absl::WebSafeBase64Unescape(parts[0], &json) ||
      !google::protobuf::util::JsonStringToMessage(json, &header).ok()) {
    return absl::InvalidArgumentError("the token's header is not base64url JSON");
  }
  auto field = [&](const char* name) -> std::optional<std::string> {
    auto it = header.fields().find(name);
    if (it == header.fields().end() ||
        it->second.kind_case() != google::protobuf::Value::kStringValue) {
      return std::nullopt;
    }
    return it->second.string_value();
  };
  std::optional<std::string> alg = field("alg");
  if (!alg) return absl::InvalidArgumentError("the token's header has no \"alg\"");
  if (absl::EqualsIgnoreCase(*alg, "none")) {
    return absl::InvalidArgumentError("unsigned tokens (\"alg\": \"none\") are not accepted");
  }
  absl::StatusOr<JwtAlgorithm> algorithm = internal::ParseJwtAlgorithm(*alg);
  if (!algorithm.ok()) return algorithm.status();
  if (parts[2].empty()) return absl::InvalidArgumentError("the token has no signature");
  return TokenHeader{*algorithm, field("kid")};
}

}  // namespace

// The guard RequireJwt returns; a friend of CallInfo, to record what it
// verified.
class JwtGuard {
 public:
  JwtGuard(JwtOptions options, std::shared_ptr<internal::JwtKeyRing> keys)
      : options_(std::move(options)), keys_(std::move(keys)) {}

  grpc::Status operator()(const CallInfo& call) const {
    absl::StatusOr<std::string> token = Token(call);
    if (!token.ok()) return Unauthenticated(std::string(token.status().message()));
    absl::StatusOr<JwtClaims> claims = Verify(*token);
    if (!claims.ok()) return Unauthenticated(std::string(claims.status().message()));
    const absl::Time now = absl::Now();
    if (claims->expires_at() == absl::InfiniteFuture() && options_.require_exp) {
      return Unauthenticated("the token has no \"exp\"");
    }
    const absl::Time expire_at = claims->expires_at() == absl::InfiniteFuture()
                                     ? absl::InfiniteFuture()
                                     : claims->expires_at() + options_.leeway;
    if (now >= expire_at) return Unauthenticated("the token expired");
    if (now + options_.leeway < claims->not_before()) {
      return Unauthenticated("the token is not valid yet (\"nbf\")");
    }
    if (!options_.issuer.empty() && claims->issuer() != options_.issuer) {
      return Unauthenticated("the token's issuer (\"iss\") is not accepted");
    }
    if (!options_.audience.empty() && !claims->Has("aud", options_.audience)) {
      return Unauthenticated("the token is not for this audience (\"aud\")");
    }
    call.RecordJwt(std::make_shared<const JwtClaims>(*std::move(claims)), expire_at);
    return grpc::Status::OK;
  }

 private:
  absl::StatusOr<std::string> Token(const CallInfo& call) const {
    constexpr absl::string_view kScheme = "Bearer ";
    std::optional<std::string> token;
    if (std::optional<absl::string_view> header = call.Metadata("authorization")) {
      if (!absl::StartsWithIgnoreCase(*header, kScheme)) {
        return absl::InvalidArgumentError("authorization is not \"Bearer <token>\"");
      }
      token = std::string(absl::StripAsciiWhitespace(header->substr(kScheme.size())));
    } else if (!options_.cookie.empty()) {
      token = CookieValue(call, options_.cookie);
    }
    if (!token || token->empty()) {
      return absl::InvalidArgumentError(
          options_.cookie.empty()
              ? "missing authorization: Bearer <token>"
              : absl::StrCat("missing authorization: Bearer <token> (or cookie ", options_.cookie,
                             ")"));
    }
    if (token->size() > kMaxTokenBytes) return absl::InvalidArgumentError("the token is too long");
    return *std::move(token);
  }

  absl::StatusOr<JwtClaims> Verify(const std::string& token) const {
    absl::StatusOr<TokenHeader> header = ReadHeader(token);
    if (!header.ok()) return header.status();
    std::shared_ptr<const std::vector<JwtKey>> keys = keys_->Current();
    bool kid_known = false;
    for (const JwtKey& key : *keys) {
      // A key from a PEM file has no id and stands for any.
      if (header->kid && !key.kid.empty() && key.kid != *header->kid) continue;
      kid_known = true;
      if (key.algorithm != header->algorithm) continue;
      jwt_t* decoded = nullptr;
      const int failed = jwt_decode(&decoded, token.c_str(),
                                    reinterpret_cast<const unsigned char*>(key.material.data()),
                                    static_cast<int>(key.material.size()));
      std::unique_ptr<jwt_t, JwtDeleter> owned(decoded);
      if (failed != 0 || owned == nullptr ||
          jwt_get_alg(owned.get()) != LibjwtAlgorithm(key.algorithm)) {
        continue;
      }
      char* grants = jwt_get_grants_json(owned.get(), nullptr);
      if (grants == nullptr) return absl::InvalidArgumentError("the token has no claims");
      absl::StatusOr<JwtClaims> claims = JwtClaims::FromJson(grants);
      free(grants);
      return claims;
    }
    if (header->kid && !kid_known) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown key id (\"kid\") \"", absl::CHexEscape(header->kid->substr(0, 64)), "\""));
    }
    return absl::InvalidArgumentError(absl::StrCat("the token's ",
                                                   internal::JwtAlgorithmName(header->algorithm),
                                                   " signature does not verify with any key"));
  }

  const JwtOptions options_;
  const std::shared_ptr<internal::JwtKeyRing> keys_;
};

absl::StatusOr<Guard> RequireJwt(JwtOptions options) {
  internal::JwtKeySources sources{options.key_files, options.hmac_secret_file, options.jwks_file};
  absl::StatusOr<std::shared_ptr<internal::JwtKeyRing>> keys =
      internal::JwtKeyRing::Create(std::move(sources), options.reload_interval);
  if (!keys.ok()) return keys.status();
  auto guard = std::make_shared<const JwtGuard>(std::move(options), *std::move(keys));
  return Guard([guard](const CallInfo& call) { return (*guard)(call); });
}

Guard RequireClaim(std::string name, std::string value) {
  return [name = std::move(name), value = std::move(value)](const CallInfo& call) -> grpc::Status {
    const JwtClaims* claims = call.jwt();
    if (claims == nullptr) {
      return Unauthenticated("this method needs a token (RequireJwt before RequireClaim)");
    }
    if (!claims->Has(name, value)) {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          absl::StrCat("the token's \"", name, "\" claim is not \"", value, "\""));
    }
    return grpc::Status::OK;
  };
}

}  // namespace gravity::server
