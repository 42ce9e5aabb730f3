// The verification keys of RequireJwt: loaded from PEM files, an HS256 secret
// file or a JWKS file, and re-read when a file changes so keys can rotate
// while the server runs.
//
// libjwt 1.10 verifies a signature given a PEM public key (RS256, ES256) or a
// shared secret (HS256), but reads no JWKS; a JWKS key is turned into the PEM
// form libjwt takes with OpenSSL.
#ifndef GRAVITY_SERVER_INTERNAL_JWT_KEYS_H_
#define GRAVITY_SERVER_INTERNAL_JWT_KEYS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace gravity::server::internal {

enum class JwtAlgorithm { kHs256, kRs256, kEs256 };

// "HS256", "RS256", "ES256".
absl::string_view JwtAlgorithmName(JwtAlgorithm algorithm);
// The algorithm of a token header's "alg", or INVALID_ARGUMENT ("none", RS512...).
absl::StatusOr<JwtAlgorithm> ParseJwtAlgorithm(absl::string_view name);

// One key. A key verifies exactly one algorithm, so a token cannot choose how
// its key is used (an RSA public key is never taken as an HMAC secret).
struct JwtKey {
  std::string kid;  // empty when the source gives none
  JwtAlgorithm algorithm;
  std::string material;  // PEM public key text, or the HS256 secret
};

// A PEM file's public key (or the key of a PEM certificate): RSA gives RS256,
// EC on P-256 gives ES256.
absl::StatusOr<JwtKey> ParsePemPublicKey(absl::string_view pem);
// A JWKS document (RFC 7517): "RSA", "EC" (P-256) and "oct" keys. Keys with
// "use" other than "sig", or of other types or curves, are skipped; a key
// whose "alg" disagrees with its type is an error.
absl::StatusOr<std::vector<JwtKey>> ParseJwks(absl::string_view json);

// Where the keys come from; any mix, at least one.
struct JwtKeySources {
  std::vector<std::string> pem_files;
  std::string hmac_secret_file;
  std::string jwks_file;
};

// The current keys, re-read when one of the files changes (checked at most
// every `check_interval`, on the verifying thread: a stat() per file; a read
// only after a change). A file that fails to parse after a change keeps the
// keys it gave before, and is tried again at the next check, so a key file
// caught half-written never locks users out.
//
// Thread-safe.
class JwtKeyRing {
 public:
  static absl::StatusOr<std::shared_ptr<JwtKeyRing>> Create(JwtKeySources sources,
                                                            absl::Duration check_interval);

  // The keys now in force.
  std::shared_ptr<const std::vector<JwtKey>> Current();

  JwtKeyRing(JwtKeySources sources, absl::Duration check_interval);

 private:
  struct FileState {
    std::string path;
    enum Kind { kPem, kSecret, kJwks } kind;
    std::string stamp;  // size, inode and mtime when last loaded
    std::vector<JwtKey> keys;
  };

  // Re-reads files whose stamp changed. `initial`: errors are returned
  // instead of logged and kept.
  absl::Status Refresh(bool initial) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const absl::Duration check_interval_;
  absl::Mutex mu_;
  std::vector<FileState> files_ ABSL_GUARDED_BY(mu_);
  absl::Time next_check_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const std::vector<JwtKey>> keys_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gravity::server::internal

#endif  // GRAVITY_SERVER_INTERNAL_JWT_KEYS_H_
