// TlsContext: the bridge's TLS configuration, its certificate chain and key
// loaded from PEM files, and reloaded from them on demand (SIGHUP), so that
// a certificate rotates without dropping a connection: handshakes after a
// reload get the new pair; connections already up keep theirs.
//
// Settings: TLS 1.2 and later; for TLS 1.2 only ECDHE key exchange with AEAD
// ciphers; no renegotiation; no compression; idle connections give their
// OpenSSL buffers back (SSL_MODE_RELEASE_BUFFERS: tens of thousands of idle
// streams are the normal case). ALPN: `h2` when HTTP/2 is on and the client
// offers it, else `http/1.1`.
//
// Thread-safety: Current() and Reload() are thread-safe.
#ifndef GRAVITY_BRIDGE_INTERNAL_TLS_CONTEXT_H_
#define GRAVITY_BRIDGE_INTERNAL_TLS_CONTEXT_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/ssl/context.hpp"

namespace gravity::bridge::internal {

class TlsContext {
 public:
  // Fails (with the file and OpenSSL's reason) when a file is missing,
  // unreadable, not PEM, or the key does not match the certificate.
  static absl::StatusOr<std::unique_ptr<TlsContext>> Load(std::string cert_path,
                                                          std::string key_path, bool http2);

  // The context new handshakes use.
  std::shared_ptr<boost::asio::ssl::context> Current() const;

  // Reads the files again; on success new handshakes get the new pair. On
  // failure the previous pair stays in service and the error says why.
  absl::Status Reload();

 private:
  TlsContext(std::string cert_path, std::string key_path, bool http2)
      : cert_path_(std::move(cert_path)), key_path_(std::move(key_path)), http2_(http2) {}
  absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> Build() const;

  const std::string cert_path_;
  const std::string key_path_;
  const bool http2_;
  mutable absl::Mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> current_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_TLS_CONTEXT_H_
