#include "server/internal/jwt_keys.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "server/log.h"

namespace gravity::server::internal {

namespace {

// A JWKS key's RSA modulus is at most 16 kbit; anything larger is garbage.
constexpr size_t kMaxKeyFileBytes = 1 << 20;

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().size() > kMaxKeyFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is over 1 MiB: not a key file"));
  }
  return text.str();
}

// What decides whether a file changed: size, inode (a rename replaces it) and
// the modification time to the nanosecond.
std::string Stamp(const std::string& path) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0) return "";
  return absl::StrCat(info.st_size, ":", info.st_ino, ":", info.st_mtim.tv_sec, ".",
                      info.st_mtim.tv_nsec);
}

absl::StatusOr<std::string> PemOf(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return absl::InternalError("out of memory");
  std::string pem;
  if (PEM_write_bio_PUBKEY(bio, key) == 1) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    pem.assign(data, static_cast<size_t>(size));
  }
  BIO_free(bio);
  if (pem.empty()) return absl::InternalError("cannot write a public key as PEM");
  return pem;
}

absl::StatusOr<JwtKey> KeyOf(EVP_PKEY* key) {
  JwtKey out;
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
      if (EVP_PKEY_get_bits(key) < 2048) {
        return absl::InvalidArgumentError("RSA keys under 2048 bits are not accepted");
      }
      out.algorithm = JwtAlgorithm::kRs256;
      break;
    case EVP_PKEY_EC: {
      char group[64] = {0};
      size_t length = 0;
      if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                         &length) != 1 ||
          absl::string_view(group) != "prime256v1") {
        return absl::InvalidArgumentError("EC keys must be on P-256 (ES256)");
      }
      out.algorithm = JwtAlgorithm::kEs256;
      break;
    }
    default:
      return absl::InvalidArgumentError("the key is neither RSA nor EC");
  }
  absl::StatusOr<std::string> pem = PemOf(key);
  if (!pem.ok()) return pem.status();
  out.material = *std::move(pem);
  return out;
}

absl::StatusOr<std::string> Base64Url(const google::protobuf::Struct& key, const char* name) {
  auto it = key.fields().find(name);
  std::string bytes;
  if (it == key.fields().end() || it->second.kind_case() != google::protobuf::Value::kStringValue ||
      !absl::WebSafeBase64Unescape(it->second.string_value(), &bytes) || bytes.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", name, "\" is missing or not base64url"));
  }
  return bytes;
}

std::string StringField(const google::protobuf::Struct& key, const char* name) {
  auto it = key.fields().find(name);
  if (it == key.fields().end() || it->second.kind_case() != google::protobuf::Value::kStringValue) {
    return "";
  }
  return it->second.string_value();
}

// Builds a public key from OSSL_PARAMs (OpenSSL 3's way to make a key from
// its numbers).
Pkey FromParams(const char* type, OSSL_PARAM_BLD* builder) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(builder);
  EVP_PKEY_CTX* context = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* key = nullptr;
  if (params != nullptr && context != nullptr && EVP_PKEY_fromdata_init(context) == 1) {
    EVP_PKEY_fromdata(context, &key, EVP_PKEY_PUBLIC_KEY, params);
  }
  EVP_PKEY_CTX_free(context);
  OSSL_PARAM_free(params);
  return Pkey(key);
}

absl::StatusOr<JwtKey> RsaFromJwk(const google::protobuf::Struct& jwk) {
  absl::StatusOr<std::string> n = Base64Url(jwk, "n");
  if (!n.ok()) return n.status();
  absl::StatusOr<std::string> e = Base64Url(jwk, "e");
  if (!e.ok()) return e.status();
  BIGNUM* modulus = BN_bin2bn(reinterpret_cast<const unsigned char*>(n->data()),
                              static_cast<int>(n->size()), nullptr);
  BIGNUM* exponent = BN_bin2bn(reinterpret_cast<const unsigned char*>(e->data()),
                               static_cast<int>(e->size()), nullptr);
  OSSL_PARAM_BLD* builder = OSSL_PARAM_BLD_new();
  Pkey key;
  if (modulus != nullptr && exponent != nullptr && builder != nullptr &&
      OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_N, modulus) == 1 &&
      OSSL_PARAM_BLD_push_BN(builder, OSSL_PKEY_PARAM_RSA_E, exponent) == 1) {
    key = FromParams("RSA", builder);
  }
  OSSL_PARAM_BLD_free(builder);
  BN_free(modulus);
  BN_free(exponent);
  if (key == nullptr) return absl::InvalidArgumentError("not a valid RSA public key");
  return KeyOf(key.get());
}

absl::StatusOr<JwtKey> EcFromJwk(const google::protobuf::Struct& jwk) {
  if (StringField(jwk, "crv") != "P-256") {
    return absl::InvalidArgumentError("EC keys must be on P-256 (ES256)");
  }
  absl::StatusOr<std::string> x = Base64Url(jwk, "x");
  if (!x.ok()) return x.status();
  absl::StatusOr<std::string> y = Base64Url(jwk, "y");
  if (!y.ok()) return y.status();
  if (x->size() != 32 || y->size() != 32) {
    return absl::InvalidArgumentError("a P-256 key's x and y are 32 bytes each");
  }
  // The uncompressed point: 0x04 || x || y.
  const std::string point = absl::StrCat("\x04", *x, *y);
  OSSL_PARAM_BLD* builder = OSSL_PARAM_BLD_new();
  Pkey key;
  if (builder != nullptr &&
      OSSL_PARAM_BLD_push_utf8_string(builder, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
      OSSL_PARAM_BLD_push_octet_string(builder, OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) == 1) {
    key = FromParams("EC", builder);
  }
  OSSL_PARAM_BLD_free(builder);
  if (key == nullptr) return absl::InvalidArgumentError("not a valid P-256 public key");
  return KeyOf(key.get());
}

absl::StatusOr<JwtKey> SecretFromJwk(const google::protobuf::Struct& jwk) {
  absl::StatusOr<std::string> k = Base64Url(jwk, "k");
  if (!k.ok()) return k.status();
  if (k->size() < 32) {
    return absl::InvalidArgumentError("an HS256 secret needs at least 32 bytes");
  }
  return JwtKey{"", JwtAlgorithm::kHs256, *std::move(k)};
}

}  // namespace

absl::string_view JwtAlgorithmName(JwtAlgorithm algorithm) {
  switch (algorithm) {
    case JwtAlgorithm::kHs256:
      return "HS256";
    case JwtAlgorithm::kRs256:
      return "RS256";
    case JwtAlgorithm::kEs256:
      return "ES256";
  }
  return "?";
}

absl::StatusOr<JwtAlgorithm> ParseJwtAlgorithm(absl::string_view name) {
  if (name == "HS256") return JwtAlgorithm::kHs256;
  if (name == "RS256") return JwtAlgorithm::kRs256;
  if (name == "ES256") return JwtAlgorithm::kEs256;
  return absl::InvalidArgumentError(
      absl::StrCat("algorithm \"", absl::CHexEscape(name.substr(0, 16)),
                   "\" is not accepted (HS256, RS256 and ES256 are)"));
}

absl::StatusOr<JwtKey> ParsePemPublicKey(absl::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return absl::InternalError("out of memory");
  Pkey key(PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr));
  if (key == nullptr) {
    // Not a bare public key: perhaps a certificate.
    BIO_reset(bio);
    X509* certificate = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    if (certificate != nullptr) {
      key.reset(X509_get_pubkey(certificate));
      X509_free(certificate);
    }
  }
  BIO_free(bio);
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        "not a PEM public key (-----BEGIN PUBLIC KEY-----) or certificate");
  }
  return KeyOf(key.get());
}

absl::StatusOr<std::vector<JwtKey>> ParseJwks(absl::string_view json) {
  google::protobuf::Struct document;
  if (!google::protobuf::util::JsonStringToMessage(std::string(json), &document).ok()) {
    return absl::InvalidArgumentError("not a JSON object");
  }
  auto keys = document.fields().find("keys");
  if (keys == document.fields().end() ||
      keys->second.kind_case() != google::protobuf::Value::kListValue) {
    return absl::InvalidArgumentError("no \"keys\" array");
  }
  std::vector<JwtKey> out;
  int index = 0;
  for (const google::protobuf::Value& entry : keys->second.list_value().values()) {
    const int at = index++;
    if (entry.kind_case() != google::protobuf::Value::kStructValue) {
      return absl::InvalidArgumentError(absl::StrCat("keys[", at, "] is not an object"));
    }
    const google::protobuf::Struct& jwk = entry.struct_value();
    const std::string use = StringField(jwk, "use");
    if (!use.empty() && use != "sig") continue;
    const std::string type = StringField(jwk, "kty");
    absl::StatusOr<JwtKey> key = absl::InvalidArgumentError("");
    if (type == "RSA") {
      key = RsaFromJwk(jwk);
    } else if (type == "EC") {
      if (StringField(jwk, "crv") != "P-256") continue;  // a curve we do not verify
      key = EcFromJwk(jwk);
    } else if (type == "oct") {
      key = SecretFromJwk(jwk);
    } else {
      continue;
    }
    if (!key.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("keys[", at, "]: ", key.status().message()));
    }
    const std::string alg = StringField(jwk, "alg");
    if (!alg.empty() && alg != JwtAlgorithmName(key->algorithm)) {
      return absl::InvalidArgumentError(
          absl::StrCat("keys[", at, "]: \"alg\" ", alg, " does not ", "fit a ", type, " key"));
    }
    key->kid = StringField(jwk, "kid");
    out.push_back(*std::move(key));
  }
  return out;
}

JwtKeyRing::JwtKeyRing(JwtKeySources sources, absl::Duration check_interval)
    : check_interval_(check_interval) {
  absl::MutexLock lock(&mu_);
  for (std::string& path : sources.pem_files) {
    files_.push_back({std::move(path), FileState::kPem, "", {}});
  }
  if (!sources.hmac_secret_file.empty()) {
    files_.push_back({std::move(sources.hmac_secret_file), FileState::kSecret, "", {}});
  }
  if (!sources.jwks_file.empty()) {
    files_.push_back({std::move(sources.jwks_file), FileState::kJwks, "", {}});
  }
}

absl::StatusOr<std::shared_ptr<JwtKeyRing>> JwtKeyRing::Create(JwtKeySources sources,
                                                               absl::Duration check_interval) {
  auto ring = std::make_shared<JwtKeyRing>(std::move(sources), check_interval);
  absl::MutexLock lock(&ring->mu_);
  if (ring->files_.empty()) {
    return absl::InvalidArgumentError(
        "RequireJwt needs keys: a PEM public key file, an HS256 secret file or a JWKS file");
  }
  absl::Status loaded = ring->Refresh(/*initial=*/true);
  if (!loaded.ok()) return loaded;
  if (ring->keys_->empty()) {
    return absl::InvalidArgumentError("the key files hold no usable signing key");
  }
  return ring;
}

absl::Status JwtKeyRing::Refresh(bool initial) {
  bool changed = false;
  for (FileState& file : files_) {
    const std::string stamp = Stamp(file.path);
    if (!initial && stamp == file.stamp) continue;
    absl::StatusOr<std::string> text = ReadFile(file.path);
    absl::StatusOr<std::vector<JwtKey>> keys = std::vector<JwtKey>();
    if (!text.ok()) {
      keys = text.status();
    } else {
      switch (file.kind) {
        case FileState::kPem: {
          absl::StatusOr<JwtKey> key = ParsePemPublicKey(*text);
          keys = key.ok() ? absl::StatusOr<std::vector<JwtKey>>(std::vector<JwtKey>{*key})
                          : key.status();
          break;
        }
        case FileState::kSecret: {
          std::string secret(absl::StripSuffix(*text, "\n"));
          if (secret.size() < 32) {
            keys = absl::InvalidArgumentError("an HS256 secret needs at least 32 bytes");
          } else {
            keys = std::vector<JwtKey>{{"", JwtAlgorithm::kHs256, std::move(secret)}};
          }
          break;
        }
        case FileState::kJwks:
          keys = ParseJwks(*text);
          break;
      }
    }
    if (!keys.ok()) {
      const absl::Status error =
          absl::InvalidArgumentError(absl::StrCat(file.path, ": ", keys.status().message()));
      if (initial) return error;
      // Keep the keys the file gave before; the stamp stays old, so the next
      // check reads it again (a writer may not have finished).
      Log(LogSeverity::kWarning, absl::StrCat("JWT keys not reloaded: ", error.message()));
      continue;
    }
    file.stamp = stamp;
    file.keys = *std::move(keys);
    changed = true;
  }
  if (changed || keys_ == nullptr) {
    auto all = std::make_shared<std::vector<JwtKey>>();
    for (const FileState& file : files_)
      all->insert(all->end(), file.keys.begin(), file.keys.end());
    keys_ = std::move(all);
    if (!initial) Log(LogSeverity::kInfo, absl::StrCat("JWT keys reloaded: ", keys_->size()));
  }
  next_check_ = absl::Now() + check_interval_;
  return absl::OkStatus();
}

std::shared_ptr<const std::vector<JwtKey>> JwtKeyRing::Current() {
  absl::MutexLock lock(&mu_);
  if (absl::Now() >= next_check_) Refresh(/*initial=*/false).IgnoreError();
  return keys_;
}

}  // namespace gravity::server::internal
