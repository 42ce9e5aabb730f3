// Protocol: what a connection speaks, for /metrics and the access log.
#ifndef GRAVITY_BRIDGE_INTERNAL_PROTOCOL_H_
#define GRAVITY_BRIDGE_INTERNAL_PROTOCOL_H_

namespace gravity::bridge::internal {

enum class Protocol {
  kHttp1,  // HTTP/1.x, cleartext or TLS
  kH2c,    // HTTP/2 in cleartext, with prior knowledge
  kH2,     // HTTP/2 over TLS (ALPN h2)
};
inline constexpr int kProtocols = 3;

inline const char* ProtocolName(Protocol protocol) {
  switch (protocol) {
    case Protocol::kHttp1:
      return "http/1.1";
    case Protocol::kH2c:
      return "h2c";
    case Protocol::kH2:
      return "h2";
  }
  return "?";
}

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_PROTOCOL_H_
