// A blocking HTTP/1.1 client for bridge tests: every read has a timeout, so a
// bug shows as a failure, not a hang.
#ifndef GRAVITY_TESTS_BRIDGE_HTTP_TEST_CLIENT_H_
#define GRAVITY_TESTS_BRIDGE_HTTP_TEST_CLIENT_H_

#include <sys/socket.h>
#include <sys/time.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http.hpp"

namespace gravity::testing {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower case
  std::string body;
  std::string error;  // set when the exchange failed
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// A connection kept open by the test (for keep-alive and disconnects).
class HttpConnection {
 public:
  explicit HttpConnection(int port, int timeout_ms = 20000) : socket_(io_) {
    boost::asio::ip::tcp::endpoint endpoint(boost::asio::ip::make_address("127.0.0.1"),
                                            static_cast<unsigned short>(port));
    boost::system::error_code ec;
    socket_.connect(endpoint, ec);
    timeval timeout{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  }

  void SendRequest(const std::string& method, const std::string& target,
                   const std::vector<std::pair<std::string, std::string>>& headers = {},
                   const std::string& body = "") {
    namespace http = boost::beast::http;
    http::request<http::string_body> request(http::string_to_verb(method), target, 11);
    request.set(http::field::host, "127.0.0.1");
    // What every client of a POST sends (a body not declared JSON is 415).
    if (method == "POST") request.set(http::field::content_type, "application/json");
    for (const auto& [name, value] : headers) request.set(name, value);
    request.body() = body;
    request.prepare_payload();
    boost::system::error_code ec;
    http::write(socket_, request, ec);
  }

  // Reads one whole response (a chunked stream up to its last chunk).
  HttpResponse ReadResponse() {
    return ReadResponse([](const std::string&) { return true; });
  }

  // Reads one response like ReadResponse(), asking `go_on(body so far)` after
  // each read; stops with error "stopped by the caller" when it answers false
  // (a stream that no longer moves, say).
  HttpResponse ReadResponse(const std::function<bool(const std::string&)>& go_on) {
    namespace http = boost::beast::http;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    boost::system::error_code ec;
    bool stopped = false;
    while (!ec && !parser.is_done()) {
      http::read_some(socket_, buffer_, parser, ec);
      if (!ec && !parser.is_done() && !go_on(parser.get().body())) {
        stopped = true;
        break;
      }
    }
    HttpResponse result;
    if (ec) result.error = ec.message();
    if (stopped) result.error = "stopped by the caller";
    const auto& response = parser.get();
    result.status = static_cast<int>(response.result_int());
    for (const auto& field : response) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      result.headers[name] = std::string(field.value());
    }
    result.body = response.body();
    return result;
  }

  // Sends `bytes` as they are (malformed requests, HTTP/1.0, pipelining).
  void SendRaw(const std::string& bytes) {
    boost::system::error_code ec;
    boost::asio::write(socket_, boost::asio::buffer(bytes), ec);
  }

  // Everything until the bridge closes the connection (or the read timeout).
  std::string ReadToClose() {
    std::string seen;
    char chunk[4096];
    while (true) {
      boost::system::error_code ec;
      size_t n = socket_.read_some(boost::asio::buffer(chunk), ec);
      if (ec) return seen;
      seen.append(chunk, n);
    }
  }

  // Reads the head and then raw bytes until `needle` shows up in them.
  bool ReadUntil(const std::string& needle, std::string* seen) {
    char chunk[4096];
    while (seen->find(needle) == std::string::npos) {
      boost::system::error_code ec;
      size_t n = socket_.read_some(boost::asio::buffer(chunk), ec);
      if (ec) return false;
      seen->append(chunk, n);
    }
    return true;
  }

  void Close() {
    boost::system::error_code ec;
    socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
};

inline HttpResponse HttpRequest(
    int port, const std::string& method, const std::string& target,
    const std::vector<std::pair<std::string, std::string>>& headers = {},
    const std::string& body = "") {
  HttpConnection connection(port);
  connection.SendRequest(method, target, headers, body);
  return connection.ReadResponse();
}

// The `data:` payloads and `id:` values of an SSE body, in order.
struct SseEvent {
  std::string event;  // "" for a message
  std::string id;
  std::string data;
};

inline std::vector<SseEvent> ParseSse(const std::string& body) {
  std::vector<SseEvent> events;
  SseEvent current;
  bool any = false;
  size_t start = 0;
  while (start < body.size()) {
    size_t end = body.find('\n', start);
    if (end == std::string::npos) end = body.size();
    std::string line = body.substr(start, end - start);
    start = end + 1;
    if (line.empty()) {
      if (any) events.push_back(current);
      current = SseEvent();
      any = false;
      continue;
    }
    if (line[0] == ':') continue;
    const size_t colon = line.find(": ");
    const std::string field = line.substr(0, colon);
    const std::string value = colon == std::string::npos ? "" : line.substr(colon + 2);
    if (field == "data") {
      current.data += value;
      any = true;
    } else if (field == "id") {
      current.id = value;
    } else if (field == "event") {
      current.event = value;
    }
  }
  return events;
}

}  // namespace gravity::testing

#endif  // GRAVITY_TESTS_BRIDGE_HTTP_TEST_CLIENT_H_
