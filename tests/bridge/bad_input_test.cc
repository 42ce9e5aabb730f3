// Bad input against one bridge: malformed and hostile requests, each with its
// exact outcome, while five canary streams run on their own connections. At
// the end every canary must have received every event once, in order, and a
// clean `end`: nothing a bad request does may disturb another client.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bridge/bridge.h"
#include "gtest/gtest.h"
#include "tests/bridge/http_test_client.h"
#include "tests/examples/example_server.h"
#include "tests/testing/sanitizers.h"

namespace gravity::bridge {
namespace {

using testing::HttpConnection;
using testing::ParseSse;
using testing::SseEvent;

// Canaries: 20 ms apart, sized to outlast the cases by far: 10 s (15 s
// under sanitizers) where the cases take about 2 s.
constexpr int kCanaries = 5;
constexpr int kCanaryEvents = testing::kSanitizedBuild ? 750 : 500;
constexpr int kReadTimeoutMs = 5000;

// The body of a chunked response (from just after its head), de-chunked; false
// when the framing is broken or incomplete.
bool Dechunk(const std::string& raw, std::string* body) {
  size_t at = 0;
  while (true) {
    const size_t line_end = raw.find("\r\n", at);
    if (line_end == std::string::npos) return false;
    uint64_t size = 0;
    if (!absl::SimpleHexAtoi(raw.substr(at, line_end - at), &size)) return false;
    at = line_end + 2;
    if (size == 0) return raw.compare(at, 2, "\r\n") == 0;
    if (raw.size() < at + size + 2 || raw.compare(at + size, 2, "\r\n") != 0) return false;
    body->append(raw, at, size);
    at += size + 2;
  }
}

// One response read off a connection: the status line, the head, the body
// (de-chunked), and whether the bridge closed the connection after it.
struct Outcome {
  bool answered = false;  // false: closed (or timed out) without a response
  std::string status_line;
  std::string head;
  std::string body;
  bool closed_after = false;
  bool framing_ok = true;
};

Outcome ReadOutcome(HttpConnection& connection) {
  Outcome outcome;
  std::string seen;
  if (!connection.ReadUntil("\r\n\r\n", &seen)) {
    outcome.body = seen;  // whatever partial bytes came (expected: none)
    outcome.framing_ok = seen.empty();
    return outcome;
  }
  outcome.answered = true;
  const size_t head_end = seen.find("\r\n\r\n");
  outcome.head = seen.substr(0, head_end + 2);
  outcome.status_line = seen.substr(0, seen.find("\r\n"));
  std::string rest = seen.substr(head_end + 4);
  const std::string lower = absl::AsciiStrToLower(outcome.head);
  const size_t length_at = lower.find("\r\ncontent-length: ");
  if (absl::StrContains(lower, "\r\ntransfer-encoding: chunked\r\n")) {
    connection.ReadUntil("0\r\n\r\n", &rest);
    outcome.framing_ok = Dechunk(rest, &outcome.body);
  } else if (length_at != std::string::npos) {
    size_t length = 0;
    const size_t value_at = length_at + 18;
    absl::SimpleAtoi(lower.substr(value_at, lower.find("\r\n", value_at) - value_at), &length);
    // Every body here is JSON ending in "}\n".
    if (rest.size() < length) connection.ReadUntil("}\n", &rest);
    outcome.framing_ok = rest.size() == length;
    outcome.body = rest.substr(0, length);
  } else {
    rest += connection.ReadToClose();
    outcome.body = rest;
  }
  if (absl::StrContains(lower, "\r\nconnection: close\r\n")) {
    outcome.closed_after = connection.ReadToClose().empty();
  }
  return outcome;
}

// What a case must produce: a status line ("" for a connection closed with
// no response) and, for an error, the Status JSON's code and a distinctive
// part of its message; for a 200, the stream's `end` code.
struct Expected {
  std::string status_line;
  int code = 0;
  std::string message;
  bool closes = false;  // the response says Connection: close, then closes
};
constexpr bool kCloses = true;

constexpr char kClosed[] = "";
const std::string k400 = "HTTP/1.1 400 Bad Request";
const std::string k401 = "HTTP/1.1 401 Unauthorized";
const std::string k200 = "HTTP/1.1 200 OK";
const std::string k403 = "HTTP/1.1 403 Forbidden";
const std::string k408 = "HTTP/1.1 408 Request Timeout";
const std::string k413 = "HTTP/1.1 413 Payload Too Large";
const std::string k415 = "HTTP/1.1 415 Unsupported Media Type";
const std::string k431 = "HTTP/1.1 431 Request Header Fields Too Large";
const std::string k501 = "HTTP/1.1 501 Not Implemented";
const std::string k502 = "HTTP/1.1 502 Bad Gateway";

bool Discovering() { return std::getenv("BAD_INPUT_DISCOVER") != nullptr; }

void Check(const std::string& name, const Outcome& outcome, const Expected& expected) {
  if (Discovering()) {
    std::cout << "CASE " << name << "\n  answered=" << outcome.answered
              << " status=" << outcome.status_line << " closed_after=" << outcome.closed_after
              << " framing_ok=" << outcome.framing_ok << "\n  head=" << outcome.head
              << "\n  body=" << outcome.body.substr(0, 400) << "\n";
    return;
  }
  SCOPED_TRACE(name);
  EXPECT_TRUE(outcome.framing_ok) << outcome.body;
  if (expected.status_line.empty()) {
    EXPECT_FALSE(outcome.answered) << outcome.status_line << "\n" << outcome.body;
    return;
  }
  ASSERT_EQ(outcome.status_line, expected.status_line) << outcome.body;
  EXPECT_EQ(outcome.closed_after, expected.closes) << outcome.head;
  if (expected.status_line == k200) {
    auto events = ParseSse(outcome.body);
    ASSERT_FALSE(events.empty()) << outcome.body;
    EXPECT_EQ(events.back().event, "end") << outcome.body;
    EXPECT_TRUE(
        absl::StartsWith(events.back().data, absl::StrCat("{\"code\":", expected.code, ",")))
        << outcome.body;
    EXPECT_TRUE(absl::StrContains(outcome.body, expected.message)) << outcome.body;
    return;
  }
  EXPECT_TRUE(absl::StrContains(outcome.head, "Content-Type: application/json\r\n"))
      << outcome.head;
  EXPECT_TRUE(absl::StartsWith(outcome.body, absl::StrCat("{\"code\":", expected.code, ",")))
      << outcome.body;
  EXPECT_TRUE(absl::StrContains(outcome.body, expected.message)) << outcome.body;
}

// A plain socket to the bridge, for what HttpConnection does not do (half
// close, thousands of connections).
int Connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  timeval timeout{kReadTimeoutMs / 1000, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  return fd;
}

// Reads until the peer closes (true) or the read timeout (false).
bool ReadFdToClose(int fd, std::string* seen) {
  char chunk[4096];
  while (true) {
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
    seen->append(chunk, static_cast<size_t>(n));
  }
}

class BadInputTest : public testing::ExampleServerTest {
 protected:
  void SetUp() override {
    testing::ExampleServerTest::SetUp();
    if (HasFatalFailure()) return;
    BridgeOptions options;
    options.listen = "127.0.0.1:0";
    options.threads = 2;
    options.cors_origins = {"https://app.example"};
    options.header_timeout = absl::Milliseconds(300);
    // Far above every other case's reply; the reply-bound case goes over it.
    options.max_reply_bytes = 64 * 1024;
    auto descriptors = DescriptorsOfLinkedServices({"streaming.v1.Streaming"});
    ASSERT_TRUE(descriptors.ok()) << descriptors.status();
    auto bridge = Bridge::Start(options, channel_, *descriptors);
    ASSERT_TRUE(bridge.ok()) << bridge.status();
    bridge_ = std::move(*bridge);
    port_ = bridge_->port();
  }

  // Sends `raw` on a new connection and reads one response.
  Outcome Exchange(const std::string& raw) {
    HttpConnection connection(port_, kReadTimeoutMs);
    connection.SendRaw(raw);
    return ReadOutcome(connection);
  }

  void Run(const std::string& name, const std::string& raw, const Expected& expected) {
    ++cases_;
    Check(name, Exchange(raw), expected);
  }

  bool Healthy() {
    Outcome outcome = Exchange("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    return outcome.status_line == k200 && outcome.body == "{\"status\":\"SERVING\"}\n";
  }

  std::unique_ptr<Bridge> bridge_;
  int port_ = 0;
  int cases_ = 0;
};

std::string Get(const std::string& target, const std::string& headers = "") {
  return absl::StrCat("GET ", target, " HTTP/1.1\r\nHost: x\r\n", headers, "\r\n");
}

std::string Post(const std::string& body, const std::string& headers = "") {
  return absl::StrCat("POST /streaming.v1.Streaming/Ping HTTP/1.1\r\nHost: x\r\n",
                      "Content-Type: application/json\r\nContent-Length: ", body.size(), "\r\n",
                      headers, "\r\n", body);
}

constexpr char kPing[] = "/streaming.v1.Streaming/Ping?count=1&interval_ms=1";
constexpr char kUsers[] = "/streaming.v1.Streaming/StreamUsers?count=1&interval_ms=1";
std::string Ping(const std::string& query) {
  return absl::StrCat("/streaming.v1.Streaming/Ping?", query);
}

TEST_F(BadInputTest, EveryCaseHasItsOutcomeAndTheCanariesAreUndisturbed) {
  const absl::Time start = absl::Now();
  // ---- The canaries, each read on its own thread.
  std::vector<std::string> canary_raw(kCanaries);
  std::array<std::atomic<bool>, kCanaries> canary_done{};
  std::vector<std::thread> canary_readers;
  std::vector<std::unique_ptr<HttpConnection>> canaries;
  for (int i = 0; i < kCanaries; ++i) {
    canaries.push_back(std::make_unique<HttpConnection>(port_, kReadTimeoutMs));
    canaries.back()->SendRaw(
        Get(Ping(absl::StrCat("to=canary&count=", kCanaryEvents, "&interval_ms=20"))));
  }
  for (int i = 0; i < kCanaries; ++i) {
    std::string seen;
    ASSERT_TRUE(canaries[i]->ReadUntil("id: 1\n", &seen)) << seen;
    canary_raw[i] = seen;
  }
  for (int i = 0; i < kCanaries; ++i) {
    canary_readers.emplace_back(
        [&, i] { canary_done[i] = canaries[i]->ReadUntil("\r\n0\r\n\r\n", &canary_raw[i]); });
  }

  // ---- Request smuggling shapes.
  Run("Content-Length with Transfer-Encoding",
      "POST /streaming.v1.Streaming/Ping HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      {k400, 3, "malformed HTTP request: bad Transfer-Encoding", kCloses});
  Run("two equal Content-Lengths", Post("{}", "Content-Length: 2\r\n"),
      {k400, 3, "more than one Content-Length", kCloses});
  Run("two different Content-Lengths",
      "POST /streaming.v1.Streaming/Ping HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
      "Content-Length: 3\r\n\r\n{} ",
      {k400, 3, "malformed HTTP request: multiple Content-Length", kCloses});
  Run("a Content-Length list", Post("{}", "Content-Length: 2, 2\r\n"),
      {k400, 3, "more than one Content-Length", kCloses});
  const std::string chunked_head =
      "POST /streaming.v1.Streaming/Ping HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  const std::string bad_chunk = "malformed HTTP request: bad chunk";
  Run("a non-hex chunk size", chunked_head + "zz\r\n{}\r\n0\r\n\r\n",
      {k400, 3, bad_chunk, kCloses});
  Run("a chunk size past 2^64", chunked_head + "10000000000000002\r\n{}\r\n0\r\n\r\n",
      {k400, 3, bad_chunk, kCloses});
  Run("a negative chunk size", chunked_head + "-2\r\n{}\r\n0\r\n\r\n",
      {k400, 3, bad_chunk, kCloses});
  for (const char* coding :
       {"xchunked", "identity", "gzip", "chunked, identity", "gzip, chunked"}) {
    Run(absl::StrCat("Transfer-Encoding: ", coding),
        absl::StrCat("POST /streaming.v1.Streaming/Ping HTTP/1.1\r\nHost: x\r\n"
                     "Transfer-Encoding: ",
                     coding, "\r\n\r\n0\r\n\r\n"),
        {k501, 12,
         absl::StrCat("Transfer-Encoding \\\"", coding,
                      "\\\" is not implemented; only \\\"chunked\\\" is"),
         kCloses});
  }
  Run("Transfer-Encoding on HTTP/1.0",
      "POST /streaming.v1.Streaming/Ping HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
      "2\r\n{}\r\n0\r\n\r\n",
      {k400, 3, "Transfer-Encoding in HTTP/1.0", kCloses});

  // ---- Header syntax. An obs-fold is unfolded to a space (RFC 9112 §5.2
  // allows that instead of a 400).
  Run("an obs-fold", Get(kPing, "X-A: a\r\n b\r\n"), {k200, 0, "event: end"});
  Run("bare LF line endings", "GET /healthz HTTP/1.1\nHost: x\n\n",
      {k400, 3, "malformed HTTP request: bad version", kCloses});
  Run("a NUL in a header value", Get(kPing, std::string("X-A: a\0b\r\n", 10)),
      {k400, 3, "malformed HTTP request: bad value", kCloses});
  Run("a CR in a header value", Get(kPing, "X-A: a\rb\r\n"),
      {k400, 3, "malformed HTTP request: bad line ending", kCloses});
  Run("a LF in a header value", Get(kPing, "X-A: a\nb\r\n"),
      {k400, 3, "malformed HTTP request: bad value", kCloses});
  Run("spaces in the target",
      "GET /streaming.v1.Streaming/Ping?to=a b&count=1 HTTP/1.1\r\nHost: x\r\n\r\n",
      {k400, 3, "malformed HTTP request: bad version", kCloses});

  // ---- Sizes.
  Run("a request line over 16 KiB", Get(Ping("count=1&to=" + std::string(17000, 'a'))),
      {k431, 3, "request headers too large", kCloses});
  Run("a header over 16 KiB", Get(kPing, "X-A: " + std::string(17000, 'a') + "\r\n"),
      {k431, 3, "request headers too large", kCloses});
  {
    std::string many;
    for (int i = 0; i < 10000; ++i) absl::StrAppend(&many, "X-", i, ": v\r\n");
    Run("10,000 headers", Get(kPing, many), {k431, 3, "request headers too large", kCloses});
  }
  Run("a body over 1 MiB with Content-Length", Post(std::string(1100 * 1024, ' ')),
      {k413, 3, "request body too large", kCloses});
  {
    std::string body;
    for (int i = 0; i < 18; ++i) {
      absl::StrAppend(&body, "10000\r\n", std::string(65536, ' '), "\r\n");
    }
    Run("a chunked body over 1 MiB", chunked_head + body + "0\r\n\r\n",
        {k413, 3, "request body too large", kCloses});
  }

  // ---- Query values.
  Run("%zz", Get(Ping("count=1&to=%zz")), {k400, 3, "malformed request target"});
  Run("%4", Get(Ping("count=1&to=%4")), {k400, 3, "malformed request target"});
  Run("invalid UTF-8 %ff", Get(Ping("count=1&to=%ff")),
      {k400, 3, R"(field \"to\": \"\ufffd\" is not a valid UTF-8 string)"});
  Run("a surrogate", Get(Ping("count=1&to=%ED%A0%80")),
      {k400, 3, R"(field \"to\": \"\ufffd\ufffd\ufffd\" is not a valid UTF-8 string)"});
  Run("an int32 overflow", Get(Ping("count=99999999999999999999")),
      {k400, 3, R"(field \"count\": \"99999999999999999999\" is not a valid int32)"});
  Run("a float for an int", Get(Ping("count=1.5")),
      {k400, 3, R"(field \"count\": \"1.5\" is not a valid int32)"});
  Run("an exponent for an int", Get(Ping("count=1e3")),
      {k400, 3, R"(field \"count\": \"1e3\" is not a valid int32)"});
  Run("a leading space", Get(Ping("count=%201")),
      {k400, 3, R"(field \"count\": \" 1\" is not a valid int32)"});
  Run("an unknown field", Get(Ping("count=1&nope=1")),
      {k400, 3, R"(field \"nope\": streaming.v1.PingRequest has no field \"nope\")"});
  Run("a repeated singular field", Get(Ping("count=1&count=2")),
      {k400, 3, R"(field \"count\" given more than once)"});
  Run("a field under both names", Get(Ping("count=1&intervalMs=1&interval_ms=2")),
      {k400, 3, R"(field \"interval_ms\" given more than once)"});
  Run("deep unknown nested fields", Get(Ping("count=1&a.b.c.d=1")),
      {k400, 3, R"(field \"a.b.c.d\": streaming.v1.PingRequest has no field \"a\")"});
  Run("a nested field under a scalar", Get(Ping("count=1&to.x=1")),
      {k400, 3, R"(field \"to.x\": \"to\" is not a singular message)"});
  // The example API has no enum field: a name where a number is due.
  Run("a name for an int", Get(Ping("count=1&fail_code=NOT_FOUND")),
      {k400, 3, R"(field \"fail_code\": \"NOT_FOUND\" is not a valid int32)"});
  Run("a repeated lastEventId", Get(Ping("count=1&lastEventId=1&lastEventId=2")),
      {k400, 3, R"(parameter \"lastEventId\" given more than once)"});

  // ---- POST JSON bodies.
  Run("10,000 unclosed arrays", Post(std::string(10000, '[')),
      {k400, 3, "request body: Unexpected end of string. Expected a value or ] within an array"});
  Run("10,000 nested arrays", Post(std::string(10000, '[') + std::string(10000, ']')),
      {k400, 3, "request body: : Root element must be a message."});
  Run("10,000 nested objects", Post([] {
        std::string nested;
        for (int i = 0; i < 10000; ++i) nested += "{\"a\":";
        return nested;
      }()),
      {k400, 3, "request body: Message too deep. Max recursion depth reached for key 'a'"});
  Run("a UTF-8 BOM", Post("\xEF\xBB\xBF{\"count\":1,\"intervalMs\":1}"),
      {k400, 3, "request body: Expected a value."});
  Run("a string for an int", Post("{\"count\":\"x\"}"),
      {k400, 3, R"(request body: (count): invalid value \"x\" for type TYPE_INT32)"});
  Run("an unknown JSON field", Post("{\"count\":1,\"nope\":1}"),
      {k400, 3, "request body: nope: Cannot find field."});
  Run("a duplicate JSON key", Post("{\"count\":1,\"count\":2}"),
      {k400, 3, R"(request body: field \"count\" given more than once)"});
  Run("a field under its JSON and proto names", Post("{\"intervalMs\":1,\"interval_ms\":2}"),
      {k400, 3, R"(field \"interval_ms\" given more than once)"});
  Run("invalid JSON", Post("{\"count\":1"),
      {k400, 3, "request body: Unexpected end of string. Expected , or } after key:value pair."});
  Run("a field in both the body and the query",
      absl::StrCat("POST /streaming.v1.Streaming/Ping?to=bob HTTP/1.1\r\nHost: x\r\n",
                   "Content-Type: application/json\r\nContent-Length: 12\r\n\r\n",
                   R"({"to":"ann"})"),
      {k400, 3, R"(field \"to\" given in both the body and the query)"});

  // ---- Replies and events over their bounds (max_reply_bytes: 64 KiB here;
  // max_event_bytes: the default 64 KiB). 20,000 '<' are 20,000 bytes as
  // protobuf and 120,000 as JSON (\u003c): a 502 with RESOURCE_EXHAUSTED.
  {
    const std::string body = absl::StrCat(R"({"text":")", std::string(20000, '<'), R"("})");
    Run("a unary reply over max_reply_bytes",
        absl::StrCat("POST /api/streaming/echo HTTP/1.1\r\nHost: x\r\n",
                     "Content-Type: application/json\r\nContent-Length: ", body.size(), "\r\n\r\n",
                     body),
        {k502, 8,
         "the reply takes 120012 bytes as JSON, over the bridge's bound of 65536 "
         "(--max_reply_bytes)"});
  }
  // Every event of this stream is over 64 KiB: a 200 whose stream ends with
  // RESOURCE_EXHAUSTED (`event: end`, code 8) before any event.
  {
    ++cases_;
    Outcome outcome = Exchange(Post(
        absl::StrCat(R"({"to":")", std::string(70000, 'x'), R"(","count":2,"intervalMs":1})")));
    Check("an event over max_event_bytes", outcome,
          {k200, 8,
           "a message of 70022 bytes is over the bridge's bound of 65536 bytes per event "
           "(--max_event_bytes)"});
    if (!Discovering()) {
      EXPECT_FALSE(absl::StrContains(outcome.body, "Sending ping")) << outcome.body.substr(0, 400);
    }
  }

  // ---- Cross-site forms: bodies a browser sends from any site without a
  // preflight are never parsed as JSON, and a unary call from a foreign
  // origin never reaches the backend.
  auto echo = [](const std::string& headers, const std::string& body) {
    return absl::StrCat("POST /streaming.v1.Streaming/Echo HTTP/1.1\r\nHost: x\r\n", headers,
                        "Content-Length: ", body.size(), "\r\n\r\n", body);
  };
  const std::string not_json = "a POST body must be Content-Type: application/json";
  Run("a text/plain POST", echo("Content-Type: text/plain\r\n", R"({"text":"x"})"),
      {k415, 3, not_json});
  Run("a form POST", echo("Content-Type: application/x-www-form-urlencoded\r\n", "text=x"),
      {k415, 3, not_json});
  Run("a multipart POST",
      echo("Content-Type: multipart/form-data; boundary=b\r\n",
           "--b\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nx\r\n--b--\r\n"),
      {k415, 3, not_json});
  Run("a POST with no Content-Type", echo("", R"({"text":"x"})"), {k415, 3, not_json});
  Run("a text/plain POST to a stream",
      "POST /streaming.v1.Streaming/Ping HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
      "Content-Length: 2\r\n\r\n{}",
      {k415, 3, not_json});
  Run("a JSON POST from another site",
      echo("Content-Type: application/json\r\nOrigin: https://evil.example\r\n", R"({"text":"x"})"),
      {k403, 7, "a call from origin \\\"https://evil.example\\\" is not allowed"});
  {
    ++cases_;
    Outcome allowed = Exchange(echo(
        "Content-Type: application/json\r\nOrigin: https://app.example\r\n", R"({"text":"x"})"));
    if (!Discovering()) {
      EXPECT_EQ(allowed.status_line, k200);
      EXPECT_EQ(allowed.body, "{\"text\":\"x\"}\n");
    }
  }
  // A head that came and a body that did not: 408 (after header_timeout, 300 ms).
  Run("a body that never comes",
      "POST /streaming.v1.Streaming/Echo HTTP/1.1\r\nHost: x\r\n"
      "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"te",
      {k408, 3, "the request body did not arrive within 300ms", kCloses});

  // ---- Last-Event-ID. CR LF cannot be sent raw in a header: folded, it
  // becomes a space; in ?lastEventId it is refused as metadata.
  const std::string not_metadata = "a forwarded header holds characters gRPC metadata cannot carry";
  Run("a Last-Event-ID folded over two lines", Get(kPing, "Last-Event-ID: 1\r\n 2\r\n"),
      {k400, 3, R"(last-event-id must be a seq number, got \"1 2\")"});
  Run("a CR LF in ?lastEventId", Get(Ping("count=1&lastEventId=1%0d%0aX-Evil:%201")),
      {k400, 3, not_metadata});
  Run("a NUL in Last-Event-ID", Get(kPing, std::string("Last-Event-ID: 1\0\r\n", 18)),
      {k400, 3, "malformed HTTP request: bad value", kCloses});
  Run("a NUL in ?lastEventId", Get(Ping("count=1&lastEventId=1%00")), {k400, 3, not_metadata});
  Run("15,000 digits of Last-Event-ID",
      Get(kPing, "Last-Event-ID: " + std::string(15000, '7') + "\r\n"),
      {k431, 3, "take 15045 bytes; the bridge forwards at most 6144", kCloses});

  // ---- Authorization, against the guarded StreamUsers.
  const std::string token = testing::kAdminToken;
  const std::string missing = "missing authorization: Bearer <token>";
  const std::string invalid = "invalid token";
  Run("the right token (control)", Get(kUsers, "Authorization: Bearer " + token + "\r\n"),
      {k200, 0, "event: end"});
  // Two Authorization headers: refused, whichever comes first.
  Run("two Authorization headers, wrong then right",
      Get(kUsers, "Authorization: Bearer wrong\r\nAuthorization: Bearer " + token + "\r\n"),
      {k400, 3, "Authorization given more than once"});
  Run("two Authorization headers, right then wrong",
      Get(kUsers, "Authorization: Bearer " + token + "\r\nAuthorization: Bearer wrong\r\n"),
      {k400, 3, "Authorization given more than once"});
  Run("the Basic scheme", Get(kUsers, "Authorization: Basic YWRtaW46YWRtaW4tdG9rZW4=\r\n"),
      {k401, 16, missing});
  Run("two spaces after Bearer", Get(kUsers, "Authorization: Bearer  " + token + "\r\n"),
      {k401, 16, invalid});
  Run("a tab after Bearer", Get(kUsers, "Authorization: Bearer\t" + token + "\r\n"),
      {k400, 3, not_metadata});
  Run("an empty Bearer", Get(kUsers, "Authorization: Bearer \r\n"), {k401, 16, missing});
  Run("Bearer alone", Get(kUsers, "Authorization: Bearer\r\n"), {k401, 16, missing});
  Run("a token with a suffix", Get(kUsers, "Authorization: Bearer " + token + "x\r\n"),
      {k401, 16, invalid});
  Run("a token prefix", Get(kUsers, "Authorization: Bearer " + token.substr(1) + "\r\n"),
      {k401, 16, invalid});
  Run("a wrong header with the right ?access_token",
      Get(absl::StrCat(kUsers, "&access_token=", token), "Authorization: Bearer wrong\r\n"),
      {k401, 16, invalid});

  // ---- CORS (allowlist: https://app.example).
  auto cors = [&](const std::string& name, const std::string& origins, const std::string& allowed) {
    ++cases_;
    Outcome outcome = Exchange(Get(kPing, origins));
    Check(name, outcome, {k200, 0, "event: end"});
    if (Discovering()) return;
    const std::string header = "Access-Control-Allow-Origin: ";
    if (allowed.empty()) {
      EXPECT_FALSE(absl::StrContains(outcome.head, header)) << name << "\n" << outcome.head;
      EXPECT_FALSE(absl::StrContains(outcome.head, "Access-Control-Allow-Credentials"))
          << name << "\n"
          << outcome.head;
    } else {
      EXPECT_TRUE(absl::StrContains(outcome.head, header + allowed + "\r\n")) << name << "\n"
                                                                              << outcome.head;
    }
  };
  cors("Origin null", "Origin: null\r\n", "");
  cors("a suffixed origin", "Origin: https://app.example.evil\r\n", "");
  cors("a prefixed origin", "Origin: https://evil-app.example\r\n", "");
  cors("the origin with a path", "Origin: https://app.example/\r\n", "");
  cors("the origin in upper case", "Origin: HTTPS://APP.EXAMPLE\r\n", "");
  // Two Origin fields: the first counts.
  cors("two Origins, allowed first",
       "Origin: https://app.example\r\nOrigin: https://evil.example\r\n", "https://app.example");
  cors("two Origins, allowed last",
       "Origin: https://evil.example\r\nOrigin: https://app.example\r\n", "");

  // (Expect: 100-continue has its own test in bridge_test.cc: an interim
  // 100 comes before the response.)

  // ---- shutdown(SHUT_WR) right after a request: the bridge takes the half
  // close for the client leaving and cuts the stream at once (with or without
  // its head, by how fast the backend accepted); never a complete stream.
  {
    ++cases_;
    const int fd = Connect(port_);
    ASSERT_GE(fd, 0);
    const std::string request = Get(Ping("count=1&interval_ms=3000"));
    ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
    const absl::Time began = absl::Now();
    ::shutdown(fd, SHUT_WR);
    std::string seen;
    const bool closed = ReadFdToClose(fd, &seen);
    const absl::Duration took = absl::Now() - began;
    ::close(fd);
    if (Discovering()) {
      std::cout << "CASE SHUT_WR closed=" << closed << " took=" << took << "\n  seen=" << seen
                << "\n";
    }
    EXPECT_TRUE(closed);
    EXPECT_LT(took, absl::Seconds(2));
    EXPECT_TRUE(seen.empty() || absl::StartsWith(seen, k200 + "\r\n")) << seen;
    EXPECT_FALSE(absl::StrContains(seen, "data:")) << seen;
  }

  // ---- Slowloris: the head a byte at a time, every 20 ms, past
  // header_timeout (300 ms). The bridge closes the connection, answering
  // nothing.
  {
    ++cases_;
    const int fd = Connect(port_);
    ASSERT_GE(fd, 0);
    const std::string request = Get(kPing, "X-Slow: " + std::string(200, 's') + "\r\n");
    const absl::Time began = absl::Now();
    absl::Duration cut_after = absl::InfiniteDuration();
    std::string seen;
    for (char c : request) {
      if (::send(fd, &c, 1, MSG_NOSIGNAL) != 1) {
        cut_after = absl::Now() - began;
        break;
      }
      absl::SleepFor(absl::Milliseconds(20));
      char byte;
      const ssize_t n = ::recv(fd, &byte, 1, MSG_DONTWAIT);
      if (n > 0) seen.push_back(byte);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        cut_after = absl::Now() - began;
        break;
      }
    }
    ::close(fd);
    if (Discovering())
      std::cout << "CASE slowloris cut_after=" << cut_after << " seen=" << seen << "\n";
    EXPECT_EQ(seen, "");
    EXPECT_GE(cut_after, absl::Milliseconds(300));
    EXPECT_LT(cut_after, absl::Seconds(testing::kSanitizedBuild ? 3 : 1.5));
  }

  // ---- A client that never reads: a stream of 100,000 fat events left
  // unread (it stalls at its bound); the bridge answers others meanwhile and
  // the canaries are checked at the end.
  {
    ++cases_;
    HttpConnection stalled(port_, kReadTimeoutMs);
    stalled.SendRaw(Get(Ping("to=" + std::string(2000, 'z') + "&count=100000&interval_ms=1")));
    absl::SleepFor(absl::Milliseconds(500));  // it fills every buffer on the way
    EXPECT_TRUE(Healthy());
    Outcome other = Exchange(Get(kPing));
    Check("a stream beside the stalled one", other, {k200, 0, "event: end"});
    stalled.Close();
  }

  // ---- 3,000 idle connections: each closed after header_timeout, with no
  // response; /healthz still answers.
  {
    ++cases_;
    std::vector<int> idle;
    for (int i = 0; i < 3000; ++i) {
      const int fd = Connect(port_);
      if (fd < 0) break;
      idle.push_back(fd);
    }
    EXPECT_EQ(idle.size(), 3000u);
    int closed = 0;
    int silent = 0;
    for (int fd : idle) {
      std::string seen;
      if (ReadFdToClose(fd, &seen)) ++closed;
      if (seen.empty()) ++silent;
      ::close(fd);
    }
    EXPECT_EQ(closed, 3000);
    EXPECT_EQ(silent, 3000);
    EXPECT_TRUE(Healthy());
  }

  // ---- 1,000 connect-and-close.
  {
    ++cases_;
    int made = 0;
    for (int i = 0; i < 1000; ++i) {
      const int fd = Connect(port_);
      if (fd < 0) continue;
      ++made;
      ::close(fd);
    }
    EXPECT_EQ(made, 1000);
    EXPECT_TRUE(Healthy());
  }

  const absl::Duration cases_took = absl::Now() - start;
  std::cout << cases_ << " cases in " << cases_took << "\n";
  // Every case ran while every canary was streaming.
  for (int i = 0; i < kCanaries; ++i) EXPECT_FALSE(canary_done[i]) << "canary " << i;

  // ---- The canaries: every event once, in order, then a clean end.
  for (auto& reader : canary_readers) reader.join();
  for (int i = 0; i < kCanaries; ++i) {
    SCOPED_TRACE(absl::StrCat("canary ", i));
    const std::string& raw = canary_raw[i];
    ASSERT_TRUE(canary_done[i]) << raw.substr(raw.size() > 500 ? raw.size() - 500 : 0);
    const size_t head_end = raw.find("\r\n\r\n");
    ASSERT_NE(head_end, std::string::npos);
    EXPECT_TRUE(absl::StartsWith(raw, k200 + "\r\n"));
    std::string body;
    ASSERT_TRUE(Dechunk(raw.substr(head_end + 4), &body));
    auto events = ParseSse(body);
    ASSERT_EQ(events.size(), static_cast<size_t>(kCanaryEvents + 1));
    for (int seq = 1; seq <= kCanaryEvents; ++seq) {
      const SseEvent& event = events[seq - 1];
      ASSERT_EQ(event.event, "");
      ASSERT_EQ(event.id, std::to_string(seq));
      ASSERT_EQ(event.data,
                absl::StrCat("{\"message\":\"Sending ping to canary\",\"seq\":\"", seq, "\"}"));
    }
    EXPECT_EQ(events.back().event, "end");
    EXPECT_EQ(events.back().data, "{\"code\":0,\"message\":\"\",\"details\":[]}");
  }
  std::cout << "canaries done after " << absl::Now() - start << "\n";
}

}  // namespace
}  // namespace gravity::bridge
