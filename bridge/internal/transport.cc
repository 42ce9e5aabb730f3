#include "bridge/internal/transport.h"

#include <openssl/ssl.h>

namespace gravity::bridge::internal {

size_t Transport::pending() const {
  if (!tls_) return 0;
  return static_cast<size_t>(SSL_pending(const_cast<TlsStream&>(*tls_).native_handle()));
}

std::string Transport::alpn() const {
  if (!tls_) return "";
  const unsigned char* data = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(const_cast<TlsStream&>(*tls_).native_handle(), &data, &length);
  return std::string(reinterpret_cast<const char*>(data), data == nullptr ? 0 : length);
}

void Transport::Close() {
  boost::system::error_code ignored;
  Socket& tcp = socket();
  tcp.shutdown(Socket::shutdown_both, ignored);
  tcp.close(ignored);
}

}  // namespace gravity::bridge::internal
