// Transport: one accepted connection's byte stream, cleartext TCP or TLS over
// TCP, behind one interface, so that a connection's codec (HTTP/1.1 Session,
// HTTP/2 Http2Session) is written once for both.
//
// It is an Asio AsyncReadStream and AsyncWriteStream (Beast's parsers and
// asio::async_write take it), and it gives the TCP socket underneath for what
// only the kernel knows: readability and errors while a request is served,
// the peer's address, TCP_INFO.
//
// TLS details the codecs must respect:
// - bytes already decrypted can wait inside OpenSSL where the socket shows
//   nothing readable: check pending() before waiting on the socket;
// - only the connection's strand may read or write (an SSL object is not
//   thread-safe): no direct sends from other threads over TLS.
//
// Thread-safety: the connection's strand only.
#ifndef GRAVITY_BRIDGE_INTERNAL_TRANSPORT_H_
#define GRAVITY_BRIDGE_INTERNAL_TRANSPORT_H_

#include <memory>
#include <string>
#include <utility>

#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl/context.hpp"
#include "boost/asio/ssl/stream.hpp"
#include "bridge/internal/protocol.h"

namespace gravity::bridge::internal {

class Transport {
 public:
  using Socket = boost::asio::ip::tcp::socket;
  using TlsStream = boost::asio::ssl::stream<Socket>;
  using executor_type = Socket::executor_type;

  explicit Transport(Socket socket) : socket_(std::move(socket)) {}
  // TLS over the socket; `context` is kept alive as long as the connection
  // (a certificate reload swaps the bridge's context, not this one).
  Transport(Socket socket, std::shared_ptr<boost::asio::ssl::context> context)
      : context_(std::move(context)),
        tls_(std::make_unique<TlsStream>(std::move(socket), *context_)),
        socket_(tls_->next_layer().get_executor()) {}

  Transport(Transport&&) = default;

  bool tls() const { return tls_ != nullptr; }
  TlsStream& tls_stream() { return *tls_; }
  // The TCP socket underneath (for waits, options and the peer's address).
  Socket& socket() { return tls_ ? tls_->next_layer() : socket_; }
  executor_type get_executor() { return socket().get_executor(); }

  // Decrypted bytes that OpenSSL holds and no socket wait would show.
  size_t pending() const;
  // The ALPN protocol the TLS handshake chose ("" when none, or cleartext).
  std::string alpn() const;

  template <class MutableBuffers, class Handler>
  void async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    if (tls_) {
      tls_->async_read_some(buffers, std::forward<Handler>(handler));
    } else {
      socket_.async_read_some(buffers, std::forward<Handler>(handler));
    }
  }
  template <class ConstBuffers, class Handler>
  void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    if (tls_) {
      tls_->async_write_some(buffers, std::forward<Handler>(handler));
    } else {
      socket_.async_write_some(buffers, std::forward<Handler>(handler));
    }
  }

  // Ends the connection at once (no TLS close_notify: a peer that stopped
  // reading must not hold the close).
  void Close();

 private:
  std::shared_ptr<boost::asio::ssl::context> context_;
  std::unique_ptr<TlsStream> tls_;
  Socket socket_;  // cleartext only; unopened under TLS
};

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_TRANSPORT_H_
