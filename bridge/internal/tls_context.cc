#include "bridge/internal/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace gravity::bridge::internal {

namespace ssl = boost::asio::ssl;

namespace {

std::string OpenSslError() {
  const unsigned long code = ERR_get_error();  // NOLINT(runtime/int): OpenSSL's type
  ERR_clear_error();
  if (code == 0) return "unknown error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

// ALPN, server side: h2 when offered and on (arg non-null), else http/1.1.
// A client that offers neither goes on without ALPN (HTTP/1.1).
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* in,
               unsigned int in_length, void* http2) {
  static constexpr unsigned char kH2[] = {2, 'h', '2'};
  static constexpr unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (http2 != nullptr && SSL_select_next_proto(&selected, out_length, kH2, sizeof kH2, in,
                                                in_length) == OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  if (SSL_select_next_proto(&selected, out_length, kHttp11, sizeof kHttp11, in, in_length) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TlsContext>> TlsContext::Load(std::string cert_path,
                                                             std::string key_path, bool http2) {
  std::unique_ptr<TlsContext> tls(new TlsContext(std::move(cert_path), std::move(key_path), http2));
  if (absl::Status loaded = tls->Reload(); !loaded.ok()) return loaded;
  return tls;
}

std::shared_ptr<ssl::context> TlsContext::Current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

absl::Status TlsContext::Reload() {
  absl::StatusOr<std::shared_ptr<ssl::context>> built = Build();
  if (!built.ok()) return built.status();
  absl::MutexLock lock(&mu_);
  current_ = std::move(*built);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<ssl::context>> TlsContext::Build() const {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* ctx = context->native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  // TLS 1.2: forward secrecy and AEAD only (TLS 1.3's suites are all that).
  if (SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1) {
    return absl::InternalError(absl::StrCat("TLS cipher list: ", OpenSslError()));
  }
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_path_.c_str()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls_cert ", cert_path_, ": cannot load a PEM certificate chain: ", OpenSslError()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_path_.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      return absl::InvalidArgumentError(absl::StrCat(
          "--tls_key ", key_path_, " does not match the certificate of --tls_cert ", cert_path_));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("--tls_key ", key_path_, ": cannot load a PEM private key: ", OpenSslError()));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("--tls_key ", key_path_,
                                                   " does not match the certificate of --tls_cert ",
                                                   cert_path_, ": ", OpenSslError()));
  }
  SSL_CTX_set_alpn_select_cb(ctx, SelectAlpn, http2_ ? ctx : nullptr);
  return context;
}

}  // namespace gravity::bridge::internal
