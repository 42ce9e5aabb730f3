// jwt_fuzz: what an outside client controls of a JWT guard (server/jwt.h): the
// token, in `authorization` or in a cookie, and so the header, claims and
// signature the guard parses before and after verifying. Also the JWKS
// parser, on the bytes of a key file. Invariants: nothing crashes, leaks or
// hangs; a token the fuzzer made is never let through (it cannot sign), so
// every verdict is UNAUTHENTICATED with a reason, and no claims are recorded.
//
// Input: the first byte selects what the rest is: 0-3 a token (0: bearer, 1:
// cookie, 2: bearer with a valid header and kid pasted in front of the rest,
// 3: a valid token with its payload replaced by the rest), 4 a JWKS document,
// 5 a claims object.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/call_info.h"
#include "server/internal/jwt_keys.h"
#include "server/jwt.h"
#include "server/jwt_claims.h"
#include "server/log.h"

namespace {

using gravity::server::CallInfo;
using gravity::server::Guard;

[[noreturn]] void Broken(const std::string& what) {
  std::fprintf(stderr, "jwt_fuzz: invariant broken: %s\n", what.c_str());
  std::abort();
}

std::string WriteTemp(const std::string& name, const std::string& text) {
  const std::string path = absl::StrCat("/tmp/gravity-jwt-fuzz-", getpid(), "-", name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::string PublicPem(const char* type, const char* param) {
  EVP_PKEY* key = param == nullptr ? EVP_PKEY_Q_keygen(nullptr, nullptr, type, size_t{2048})
                                   : EVP_PKEY_Q_keygen(nullptr, nullptr, type, param);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(size));
  BIO_free(bio);
  EVP_PKEY_free(key);
  return pem;
}

// One guard with every kind of key: an EC and an RSA PEM file, an HS256
// secret and a JWKS with a kid.
const Guard& TheGuard() {
  static const Guard* guard = [] {
    gravity::server::SetLogSink(nullptr);
    gravity::server::JwtOptions options;
    options.key_files = {WriteTemp("ec.pem", PublicPem("EC", "P-256")),
                         WriteTemp("rsa.pem", PublicPem("RSA", nullptr))};
    options.hmac_secret_file = WriteTemp("secret", "a-fuzzing-secret-of-32-bytes-or-more");
    std::string k;
    absl::WebSafeBase64Escape("another-secret-of-32-bytes-at-least!", &k);
    options.jwks_file = WriteTemp(
        "jwks.json", absl::StrCat(R"({"keys":[{"kty":"oct","kid":"k1","k":")", k, "\"}]}"));
    options.cookie = "access_token";
    options.issuer = "https://auth.test/";
    options.audience = "gravity";
    auto made = gravity::server::RequireJwt(options);
    if (!made.ok()) Broken(std::string(made.status().message()));
    // Loaded: the guard keeps its keys when the files are gone.
    for (const std::string& path : options.key_files) unlink(path.c_str());
    unlink(options.hmac_secret_file.c_str());
    unlink(options.jwks_file.c_str());
    return new Guard(*std::move(made));
  }();
  return *guard;
}

std::string B64(const std::string& bytes) {
  std::string out;
  absl::WebSafeBase64Escape(bytes, &out);
  return out;
}

void CheckToken(const std::string& token, bool in_cookie) {
  std::multimap<std::string, std::string> metadata;
  if (in_cookie) {
    metadata.emplace("cookie", "theme=dark; access_token=" + token);
  } else {
    metadata.emplace("authorization", "Bearer " + token);
  }
  CallInfo call("/streaming.v1.Streaming/StreamUsers", std::move(metadata));
  const grpc::Status verdict = TheGuard()(call);
  if (verdict.ok()) Broken("a token the fuzzer made was let through: " + token);
  if (verdict.error_code() != grpc::StatusCode::UNAUTHENTICATED) {
    Broken(absl::StrCat("code ", verdict.error_code(), " for a bad token"));
  }
  if (verdict.error_message().empty()) Broken("a refusal without a reason");
  if (call.jwt() != nullptr) Broken("claims recorded for a refused token");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t selector = data[0] % 6;
  const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string header = B64(R"({"alg":"ES256","typ":"JWT","kid":"k1"})");
  const std::string claims = B64(R"({"sub":"x","role":"admin","exp":4102444800})");
  switch (selector) {
    case 0:
      CheckToken(rest, /*in_cookie=*/false);
      break;
    case 1:
      CheckToken(rest, /*in_cookie=*/true);
      break;
    case 2:
      CheckToken(header + "." + rest, /*in_cookie=*/false);
      break;
    case 3:
      CheckToken(header + "." + B64(rest) + ".c2lnbmF0dXJl", /*in_cookie=*/false);
      CheckToken(B64(rest) + "." + claims + ".c2lnbmF0dXJl", /*in_cookie=*/false);
      break;
    case 4: {
      auto keys = gravity::server::internal::ParseJwks(rest);
      if (keys.ok()) {
        for (const auto& key : *keys) {
          if (key.material.empty()) Broken("a JWKS key without material");
        }
      }
      break;
    }
    case 5: {
      auto parsed = gravity::server::JwtClaims::FromJson(rest);
      if (parsed.ok()) {
        (void)parsed->subject();
        (void)parsed->Has("role", "admin");
      }
      break;
    }
  }
  return 0;
}
