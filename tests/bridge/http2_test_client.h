// A blocking HTTP/2 client for the bridge's tests: one request on its own
// connection, h2c with prior knowledge or h2 over TLS (ALPN), through
// libnghttp2's client session and OpenSSL, so that the contract suites can run
// the same requests over HTTP/1.1, h2c and h2 (see Wire).
//
// Test code: certificates are not verified (the bridge's test certificate is
// made per run).
#ifndef GRAVITY_TESTS_BRIDGE_HTTP2_TEST_CLIENT_H_
#define GRAVITY_TESTS_BRIDGE_HTTP2_TEST_CLIENT_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "tests/bridge/http_test_client.h"

namespace gravity::testing {

// How a test reaches the bridge.
enum class Wire { kHttp1, kH2c, kH2 };

inline std::string WireName(Wire wire) {
  switch (wire) {
    case Wire::kHttp1:
      return "Http1";
    case Wire::kH2c:
      return "H2c";
    case Wire::kH2:
      return "H2Tls";
  }
  return "?";
}

namespace http2_client_internal {

struct Exchange {
  int fd = -1;
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  HttpResponse response;
  std::string body;  // the request's
  size_t body_sent = 0;
  bool done = false;

  ~Exchange() {
    if (ssl != nullptr) SSL_free(ssl);
    if (ctx != nullptr) SSL_CTX_free(ctx);
    if (fd >= 0) ::close(fd);
  }
  bool Write(const uint8_t* data, size_t length) {
    while (length > 0) {
      const ssize_t n = ssl != nullptr ? SSL_write(ssl, data, static_cast<int>(length))
                                       : ::send(fd, data, length, MSG_NOSIGNAL);
      if (n <= 0) return false;
      data += n;
      length -= static_cast<size_t>(n);
    }
    return true;
  }
  ssize_t Read(uint8_t* data, size_t length) {
    return ssl != nullptr ? SSL_read(ssl, data, static_cast<int>(length))
                          : ::recv(fd, data, length, 0);
  }
};

inline int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                    size_t name_length, const uint8_t* value, size_t value_length, uint8_t,
                    void* user_data) {
  auto* exchange = static_cast<Exchange*>(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  std::string key(reinterpret_cast<const char*>(name), name_length);
  std::string text(reinterpret_cast<const char*>(value), value_length);
  if (key == ":status") {
    exchange->response.status = std::atoi(text.c_str());
  } else {
    exchange->response.headers[key] = text;
  }
  return 0;
}

inline int OnData(nghttp2_session*, uint8_t, int32_t, const uint8_t* data, size_t length,
                  void* user_data) {
  static_cast<Exchange*>(user_data)->response.body.append(reinterpret_cast<const char*>(data),
                                                          length);
  return 0;
}

inline int OnClose(nghttp2_session*, int32_t, uint32_t error_code, void* user_data) {
  auto* exchange = static_cast<Exchange*>(user_data);
  exchange->done = true;
  if (error_code != NGHTTP2_NO_ERROR) {
    exchange->response.error = "stream reset: " + std::string(nghttp2_http2_strerror(error_code));
  }
  return 0;
}

inline ssize_t ReadBody(nghttp2_session*, int32_t, uint8_t* buffer, size_t length, uint32_t* flags,
                        nghttp2_data_source*, void* user_data) {
  auto* exchange = static_cast<Exchange*>(user_data);
  const size_t n = std::min(length, exchange->body.size() - exchange->body_sent);
  std::memcpy(buffer, exchange->body.data() + exchange->body_sent, n);
  exchange->body_sent += n;
  if (exchange->body_sent == exchange->body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

}  // namespace http2_client_internal

// One request over a new HTTP/2 connection; the whole response. The same
// defaults as HttpRequest (a POST says it is JSON). `go_on(body so far)` is
// asked after each read, as HttpConnection::ReadResponse asks it: false stops
// with error "stopped by the caller".
inline HttpResponse Http2Request(
    int port, bool tls, const std::string& method, const std::string& target,
    const std::vector<std::pair<std::string, std::string>>& headers, const std::string& body,
    int timeout_ms = 20000,
    const std::function<bool(const std::string&)>& go_on = [](const std::string&) {
      return true;
    }) {
  using http2_client_internal::Exchange;
  Exchange exchange;
  exchange.body = body;
  HttpResponse& response = exchange.response;
  exchange.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(exchange.fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    response.error = "connect failed";
    return response;
  }
  timeval timeout{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(exchange.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  if (tls) {
    exchange.ctx = SSL_CTX_new(TLS_client_method());
    static const unsigned char kAlpn[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(exchange.ctx, kAlpn, sizeof kAlpn);
    exchange.ssl = SSL_new(exchange.ctx);
    SSL_set_fd(exchange.ssl, exchange.fd);
    if (SSL_connect(exchange.ssl) != 1) {
      response.error = "TLS handshake failed";
      return response;
    }
    const unsigned char* alpn = nullptr;
    unsigned int alpn_length = 0;
    SSL_get0_alpn_selected(exchange.ssl, &alpn, &alpn_length);
    if (std::string(reinterpret_cast<const char*>(alpn), alpn == nullptr ? 0 : alpn_length) !=
        "h2") {
      response.error = "ALPN did not choose h2";
      return response;
    }
  }

  nghttp2_session_callbacks* callbacks;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, http2_client_internal::OnHeader);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks,
                                                            http2_client_internal::OnData);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, http2_client_internal::OnClose);
  nghttp2_session* session;
  nghttp2_session_client_new(&session, callbacks, &exchange);
  nghttp2_session_callbacks_del(callbacks);
  nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, nullptr, 0);

  std::vector<std::pair<std::string, std::string>> fields = {
      {":method", method},
      {":path", target},
      {":scheme", tls ? "https" : "http"},
      {":authority", "127.0.0.1"},
  };
  if (method == "POST") fields.emplace_back("content-type", "application/json");
  for (const auto& [name, value] : headers) {
    std::string lower = name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    fields.emplace_back(lower, value);
  }
  std::vector<nghttp2_nv> nva;
  for (auto& [name, value] : fields) {
    nva.push_back({reinterpret_cast<uint8_t*>(name.data()),
                   reinterpret_cast<uint8_t*>(value.data()), name.size(), value.size(),
                   NGHTTP2_NV_FLAG_NONE});
  }
  nghttp2_data_provider provider;
  provider.source.ptr = nullptr;
  provider.read_callback = http2_client_internal::ReadBody;
  nghttp2_submit_request(session, nullptr, nva.data(), nva.size(),
                         body.empty() && method != "POST" ? nullptr : &provider, nullptr);

  uint8_t buffer[16384];
  while (!exchange.done) {
    const uint8_t* data = nullptr;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(session, &data)) > 0) {
      if (!exchange.Write(data, static_cast<size_t>(n))) break;
    }
    const ssize_t got = exchange.Read(buffer, sizeof buffer);
    if (got <= 0) {
      response.error = "connection closed before the stream ended";
      break;
    }
    if (nghttp2_session_mem_recv(session, buffer, static_cast<size_t>(got)) < 0) {
      response.error = "HTTP/2 protocol error";
      break;
    }
    if (!exchange.done && !go_on(response.body)) {
      response.error = "stopped by the caller";
      break;
    }
  }
  nghttp2_session_del(session);
  return response;
}

}  // namespace gravity::testing

#endif  // GRAVITY_TESTS_BRIDGE_HTTP2_TEST_CLIENT_H_
