// StartConnection: what happens to an accepted socket before a codec serves
// it. Over TLS: the handshake, bounded by tls_handshake_timeout (a client
// that stalls it holds a descriptor for that long and nothing else), then
// ALPN picks HTTP/2 (h2) or HTTP/1.1. In cleartext: the first bytes are
// read (within header_timeout) to tell HTTP/2's connection preface (h2c with
// prior knowledge) from an HTTP/1.1 request.
//
// `adopt` is called on the connection's strand with the codec's connection,
// not yet started; it must register it (for drain) and Start() it.
#ifndef GRAVITY_BRIDGE_INTERNAL_CONNECTION_START_H_
#define GRAVITY_BRIDGE_INTERNAL_CONNECTION_START_H_

#include <functional>
#include <memory>

#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl/context.hpp"
#include "bridge/internal/bridge_state.h"
#include "bridge/internal/connection.h"

namespace gravity::bridge::internal {

// `tls` null: cleartext.
void StartConnection(boost::asio::ip::tcp::socket socket, std::shared_ptr<BridgeState> state,
                     std::shared_ptr<boost::asio::ssl::context> tls,
                     std::function<void(std::shared_ptr<Connection>)> adopt);

// Whether `bytes` (a connection's first bytes) are HTTP/2's preface, or a
// prefix of it that needs more bytes to decide.
enum class Preface { kHttp2, kMaybe, kNot };
Preface MatchPreface(absl::string_view bytes);

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_CONNECTION_START_H_
