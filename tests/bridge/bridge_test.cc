// The SSE wire contract (docs/wire-contract.md), rule by rule, through bridge/bridge.h
// against the example service.
#include "bridge/bridge.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "examples/streaming/streaming_service.h"
#include "google/protobuf/any.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "server/service.h"
#include "server/unary.h"
#include "streaming/v1/streaming.pb.h"
#include "tests/bridge/gunzip.h"
#include "tests/bridge/http2_test_client.h"
#include "tests/bridge/http_test_client.h"
#include "tests/bridge/test_certificate.h"
#include "tests/examples/example_server.h"
#include "tests/server/test_server.h"
#include "tests/testing/sanitizers.h"
#include "tests/testing/wait_for.h"

namespace gravity::bridge {
namespace {

using testing::HttpConnection;
using testing::HttpRequest;
using testing::HttpResponse;
using testing::ParseSse;
using testing::Wire;

using testing::kAdminToken;
constexpr char kPing[] = "/streaming.v1.Streaming/Ping";
constexpr char kFastPing[] = "/streaming.v1.Streaming/Ping?to=bob&count=3&interval_ms=10";

class BridgeTest : public testing::ExampleServerTest {
 protected:
  // `exact_retry`: retry: hints and Retry-After are exactly --retry (no
  // jitter), so that tests can compare them.
  void StartBridge(BridgeOptions options = {}, bool exact_retry = true) {
    options.listen = "127.0.0.1:0";
    if (exact_retry) options.retry_jitter = 0;
    options.threads = 2;
    auto descriptors = DescriptorsOfLinkedServices({"streaming.v1.Streaming"});
    ASSERT_TRUE(descriptors.ok()) << descriptors.status();
    auto bridge = Bridge::Start(options, channel_, *descriptors);
    ASSERT_TRUE(bridge.ok()) << bridge.status();
    bridge_ = std::move(*bridge);
  }

  HttpResponse Get(const std::string& target,
                   const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return HttpRequest(bridge_->port(), "GET", target, headers);
  }

  std::unique_ptr<Bridge> bridge_;
};

// The contract over each wire a client may use: HTTP/1.1, HTTP/2 in cleartext
// (prior knowledge) and HTTP/2 over TLS (ALPN h2). The same requests, the
// same expectations.
class BridgeWireTest : public BridgeTest, public ::testing::WithParamInterface<Wire> {
 protected:
  static void SetUpTestSuite() { certificate_ = testing::MakeTestCertificate(); }

  void StartBridge(BridgeOptions options = {}) {
    if (GetParam() == Wire::kH2) {
      ASSERT_TRUE(certificate_.ok()) << certificate_.status();
      options.tls_cert = certificate_->cert;
      options.tls_key = certificate_->key;
    }
    BridgeTest::StartBridge(std::move(options));
  }

  HttpResponse Request(const std::string& method, const std::string& target,
                       const std::vector<std::pair<std::string, std::string>>& headers = {},
                       const std::string& body = "") {
    if (GetParam() == Wire::kHttp1)
      return HttpRequest(bridge_->port(), method, target, headers, body);
    return testing::Http2Request(bridge_->port(), GetParam() == Wire::kH2, method, target, headers,
                                 body);
  }
  HttpResponse Get(const std::string& target,
                   const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return Request("GET", target, headers);
  }

  static absl::StatusOr<testing::TestCertificate> certificate_;
};

absl::StatusOr<testing::TestCertificate> BridgeWireTest::certificate_;

INSTANTIATE_TEST_SUITE_P(Wires, BridgeWireTest,
                         ::testing::Values(Wire::kHttp1, Wire::kH2c, Wire::kH2),
                         [](const auto& info) { return testing::WireName(info.param); });

TEST_P(BridgeWireTest, StreamHasTheContractHeaders) {
  StartBridge();
  HttpResponse response = Get(kFastPing);
  EXPECT_EQ(response.status, 200) << response.error;
  EXPECT_EQ(response.header("content-type"), "text/event-stream; charset=utf-8");
  EXPECT_EQ(response.header("cache-control"), "no-cache, no-transform");
  EXPECT_EQ(response.header("x-accel-buffering"), "no");
  // The reconnection delay comes first, so a browser whose bridge dies
  // reconnects after --retry (2 s), not after its own default.
  EXPECT_TRUE(absl::StartsWith(response.body, "retry: 2000\n\nid: 1\n")) << response.body;
  // NDJSON has no such field.
  HttpResponse ndjson = Get(kFastPing, {{"Accept", "application/x-ndjson"}});
  EXPECT_TRUE(absl::StartsWith(ndjson.body, "{\"result\":")) << ndjson.body;
}

TEST_F(BridgeTest, HeadersGoOutWhenTheBackendAcceptsBeforeTheFirstMessage) {
  StartBridge();
  HttpConnection connection(bridge_->port());
  const absl::Time start = absl::Now();
  connection.SendRequest("GET", "/streaming.v1.Streaming/Ping?count=1&interval_ms=3000");
  std::string seen;
  ASSERT_TRUE(connection.ReadUntil("\r\n\r\n", &seen)) << seen;
  // Well before the first message, due after 3 s.
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_TRUE(absl::StartsWith(seen, "HTTP/1.1 200 OK")) << seen;
  EXPECT_FALSE(absl::StrContains(seen, "data:")) << seen;
}

TEST_P(BridgeWireTest, EachMessageIsOneEventWithSeqAsItsId) {
  StartBridge();
  auto events = ParseSse(Get(kFastPing).body);
  ASSERT_EQ(events.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(events[i].event, "");
    EXPECT_EQ(events[i].id, std::to_string(i + 1));
    EXPECT_EQ(events[i].data,
              "{\"message\":\"Sending ping to bob\",\"seq\":\"" + std::to_string(i + 1) + "\"}");
  }
}

TEST_P(BridgeWireTest, AStreamEndsWithAnEndEventCarryingCodeZero) {
  StartBridge();
  auto events = ParseSse(Get(kFastPing).body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().event, "end");
  EXPECT_EQ(events.back().data, "{\"code\":0,\"message\":\"\",\"details\":[]}");
}

TEST_P(BridgeWireTest, AnErrorMidStreamEndsWithItsStatus) {
  StartBridge();
  auto events = ParseSse(Get(std::string(kFastPing) + "&fail_code=9").body);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events.back().event, "end");
  EXPECT_TRUE(absl::StartsWith(events.back().data, "{\"code\":9,\"message\":\"ping failed"))
      << events.back().data;
}

TEST_P(BridgeWireTest, AGuardedStreamWithoutTokenIs401BeforeAnyEvent) {
  StartBridge();
  HttpResponse response = Get("/streaming.v1.Streaming/StreamUsers?count=2&interval_ms=10");
  EXPECT_EQ(response.status, 401);
  EXPECT_EQ(response.header("content-type"), "application/json");
  EXPECT_TRUE(absl::StartsWith(response.body, "{\"code\":16,")) << response.body;
}

TEST_P(BridgeWireTest, AGuardedStreamAcceptsAHeaderToken) {
  StartBridge();
  HttpResponse response = Get("/streaming.v1.Streaming/StreamUsers?count=2&interval_ms=10",
                              {{"Authorization", std::string("Bearer ") + kAdminToken}});
  EXPECT_EQ(response.status, 200);
  auto events = ParseSse(response.body);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_TRUE(absl::StartsWith(events[0].data, "{\"id\":\"")) << events[0].data;
}

TEST_P(BridgeWireTest, AGuardedStreamAcceptsAnAccessTokenParameter) {
  StartBridge();
  HttpResponse response =
      Get(std::string("/streaming.v1.Streaming/StreamUsers?count=2&interval_ms=10&access_token=") +
          kAdminToken);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(ParseSse(response.body).size(), 3u);
}

TEST_P(BridgeWireTest, UnknownPathIs404) {
  StartBridge();
  HttpResponse response = Get("/streaming.v1.Streaming/Nope");
  EXPECT_EQ(response.status, 404);
  EXPECT_TRUE(absl::StartsWith(response.body, "{\"code\":5,")) << response.body;
}

TEST_P(BridgeWireTest, WrongMethodIs405) {
  StartBridge();
  HttpResponse response = Request("DELETE", kPing);
  EXPECT_EQ(response.status, 405);
  EXPECT_EQ(response.header("allow"), "GET, POST, OPTIONS");
}

TEST_P(BridgeWireTest, ABadValueIs400NamingTheField) {
  StartBridge();
  HttpResponse response = Get("/streaming.v1.Streaming/Ping?count=many");
  EXPECT_EQ(response.status, 400);
  EXPECT_TRUE(absl::StrContains(response.body, "count")) << response.body;
}

TEST_P(BridgeWireTest, AnUnknownParameterIs400) {
  StartBridge();
  HttpResponse response = Get("/streaming.v1.Streaming/Ping?cuont=3");
  EXPECT_EQ(response.status, 400);
  EXPECT_TRUE(absl::StrContains(response.body, "cuont")) << response.body;
}

TEST_P(BridgeWireTest, PostWithAJsonBodyStreams) {
  StartBridge();
  HttpResponse response = Request("POST", kPing, {{"Content-Type", "application/json"}},
                                  R"({"to":"ann","count":2,"intervalMs":10})");
  EXPECT_EQ(response.status, 200);
  auto events = ParseSse(response.body);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_TRUE(absl::StrContains(events[0].data, "Sending ping to ann"));
}

TEST_P(BridgeWireTest, ResumeWithTheLastEventIdHeader) {
  StartBridge();
  auto events = ParseSse(
      Get("/streaming.v1.Streaming/Ping?to=bob&count=5&interval_ms=10", {{"Last-Event-ID", "3"}})
          .body);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].id, "4");
  EXPECT_EQ(events[1].id, "5");
}

TEST_P(BridgeWireTest, ResumeWithTheLastEventIdParameter) {
  StartBridge();
  auto events = ParseSse(
      Get("/streaming.v1.Streaming/Ping?to=bob&count=5&interval_ms=10&lastEventId=3").body);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].id, "4");
}

TEST_P(BridgeWireTest, IdleStreamsGetKeepAliveComments) {
  BridgeOptions options;
  options.keepalive = absl::Milliseconds(50);
  StartBridge(options);
  HttpResponse response = Get("/streaming.v1.Streaming/Ping?to=bob&count=2&interval_ms=400");
  EXPECT_EQ(response.status, 200);
  EXPECT_TRUE(absl::StrContains(response.body, ": keep-alive\n\n")) << response.body;
  EXPECT_EQ(ParseSse(response.body).size(), 3u);
}

TEST_P(BridgeWireTest, NdjsonWhenAsked) {
  StartBridge();
  HttpResponse response =
      Get(std::string(kFastPing) + "&fail_code=9", {{"Accept", "application/x-ndjson"}});
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.header("content-type"), "application/x-ndjson");
  EXPECT_TRUE(absl::StartsWith(
      response.body, "{\"result\":{\"message\":\"Sending ping to bob\",\"seq\":\"1\"}}\n"))
      << response.body;
  EXPECT_TRUE(absl::StrContains(response.body, "{\"error\":{\"code\":9,")) << response.body;
}

TEST_P(BridgeWireTest, CorsAllowsAnAllowlistedOriginWithCredentials) {
  BridgeOptions options;
  options.cors_origins = {"http://app.example"};
  StartBridge(options);
  HttpResponse response = Get(kFastPing, {{"Origin", "http://app.example"}});
  EXPECT_EQ(response.header("access-control-allow-origin"), "http://app.example");
  EXPECT_EQ(response.header("access-control-allow-credentials"), "true");
  HttpResponse preflight =
      Request("OPTIONS", kPing,
              {{"Origin", "http://app.example"},
               {"Access-Control-Request-Method", "GET"},
               {"Access-Control-Request-Headers", "authorization, last-event-id"}});
  EXPECT_EQ(preflight.status, 204);
  EXPECT_EQ(preflight.header("access-control-allow-origin"), "http://app.example");
  EXPECT_EQ(preflight.header("access-control-allow-headers"), "authorization, last-event-id");
  // A 204 carries no Content-Length (RFC 9110 §8.6).
  EXPECT_EQ(preflight.header("content-length"), "");
}

TEST_P(BridgeWireTest, CorsGivesOtherOriginsNoHeaders) {
  BridgeOptions options;
  options.cors_origins = {"http://app.example"};
  StartBridge(options);
  HttpResponse response = Get(kFastPing, {{"Origin", "http://evil.example"}});
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.header("access-control-allow-origin"), "");
  EXPECT_EQ(response.header("access-control-allow-credentials"), "");
}

TEST_P(BridgeWireTest, CorsWildcardNeverComesWithCredentials) {
  BridgeOptions options;
  options.cors_origins = {"*"};
  StartBridge(options);
  HttpResponse response = Get(kFastPing, {{"Origin", "http://any.example"}});
  EXPECT_EQ(response.header("access-control-allow-origin"), "*");
  EXPECT_EQ(response.header("access-control-allow-credentials"), "");
}

TEST_P(BridgeWireTest, TheGoogleApiHttpRouteServesPing) {
  StartBridge();
  auto events = ParseSse(Get("/api/streaming/ping?to=eve&count=2&interval_ms=10").body);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_TRUE(absl::StrContains(events[0].data, "Sending ping to eve"));
}

TEST_P(BridgeWireTest, MetricsShowActiveStreamsAndEvents) {
  StartBridge();
  Get(kFastPing);
  // The stream is counted until its last chunk has been written: poll.
  HttpResponse metrics;
  for (int i = 0; i < 100; ++i) {
    metrics = Get("/metrics");
    if (absl::StrContains(metrics.body, "gravity_bridge_active_streams 0\n")) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(metrics.status, 200);
  EXPECT_TRUE(absl::StrContains(metrics.body, "gravity_bridge_active_streams 0\n"));
  EXPECT_TRUE(absl::StrContains(metrics.body, "gravity_bridge_events_sent_total 3\n"));
}

TEST_P(BridgeWireTest, MetricsCountEndsByCodeRejectionsByStatusAndTimeToFirstEvent) {
  StartBridge();
  Get(kFastPing);
  Get(std::string(kFastPing) + "&fail_code=9");
  Get("/nope");
  Get("/streaming.v1.Streaming/Ping?count=x");
  HttpResponse metrics;
  for (int i = 0; i < 100; ++i) {
    metrics = Get("/metrics");
    if (absl::StrContains(metrics.body, "gravity_bridge_active_streams 0\n")) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  for (const char* line : {
           "gravity_bridge_streams_ended_total{code=\"OK\"} 1\n",
           "gravity_bridge_streams_ended_total{code=\"FAILED_PRECONDITION\"} 1\n",
           "gravity_bridge_streams_ended_total{code=\"CANCELLED\"} 0\n",
           "gravity_bridge_rejections_total{status=\"404\"} 1\n",
           "gravity_bridge_rejections_total{status=\"400\"} 1\n",
           "gravity_bridge_time_to_first_event_seconds_count 2\n",
           "gravity_bridge_time_to_first_event_seconds_bucket{le=\"+Inf\"} 2\n",
       }) {
    EXPECT_TRUE(absl::StrContains(metrics.body, line)) << line << metrics.body;
  }
}

TEST_P(BridgeWireTest, TheAccessLogHasALinePerStreamEndAndNoSecrets) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/access.log");
  std::remove(path.c_str());
  BridgeOptions options;
  options.access_log = path;
  StartBridge(options);
  Get("/streaming.v1.Streaming/StreamUsers?count=2&interval_ms=10&access_token=" +
      std::string(testing::kAdminToken));
  Get("/streaming.v1.Streaming/StreamUsers?count=1&interval_ms=10",
      {{"Authorization", std::string("Bearer ") + testing::kAdminToken},
       {"Cookie", "session=cookie-gv5ecret"},
       {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}});
  Get("/streaming.v1.Streaming/StreamUsers?count=1");  // 401
  Request("POST", "/streaming.v1.Streaming/Echo",
          {{"Authorization", std::string("Bearer ") + testing::kAdminToken}}, "{}");
  bridge_.reset();  // writes out the log
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_TRUE(absl::StrContains(lines[0], "\"route\":\"/streaming.v1.Streaming/StreamUsers\""))
      << lines[0];
  EXPECT_TRUE(absl::StrContains(lines[0], "\"status\":200,\"code\":0,\"events\":2,")) << lines[0];
  EXPECT_TRUE(absl::StrContains(lines[2], "\"status\":401,\"code\":16,\"events\":0,")) << lines[2];
  EXPECT_TRUE(absl::StrContains(
      lines[3], "\"route\":\"/streaming.v1.Streaming/Echo\",\"status\":200,\"code\":0,"))
      << lines[3];
  // The client's trace id when it sent one; else the one the bridge started.
  EXPECT_TRUE(absl::StrContains(lines[1], "\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\""))
      << lines[1];
  for (const std::string& line : lines) {
    EXPECT_TRUE(absl::StrContains(line, "\"client\":\"127.0.0.1\"")) << line;
    const size_t at = line.find("\"trace_id\":\"");
    ASSERT_NE(at, std::string::npos) << line;
    EXPECT_EQ(line.find('"', at + 12) - (at + 12), 32u) << line;
    EXPECT_FALSE(absl::StrContains(line, testing::kAdminToken)) << line;
    EXPECT_FALSE(absl::StrContains(line, "cookie-gv5ecret")) << line;
  }
}

TEST_F(BridgeTest, KeepAliveConnectionServesSeveralStreams) {
  StartBridge();
  HttpConnection connection(bridge_->port());
  for (int i = 0; i < 3; ++i) {
    connection.SendRequest("GET", kFastPing);
    HttpResponse response = connection.ReadResponse();
    EXPECT_EQ(response.status, 200) << response.error;
    EXPECT_EQ(ParseSse(response.body).size(), 4u);
  }
}

TEST_F(BridgeTest, FiveHundredConcurrentStreamsAllComplete) {
  StartBridge();
  constexpr int kStreams = 500;
  std::vector<std::unique_ptr<HttpConnection>> connections;
  for (int i = 0; i < kStreams; ++i) {
    connections.push_back(std::make_unique<HttpConnection>(bridge_->port()));
    connections.back()->SendRequest("GET", "/streaming.v1.Streaming/Ping?count=3&interval_ms=200");
  }
  int complete = 0;
  for (auto& connection : connections) {
    HttpResponse response = connection->ReadResponse();
    auto events = ParseSse(response.body);
    if (response.status == 200 && events.size() == 4 && events.back().event == "end") ++complete;
  }
  EXPECT_EQ(complete, kStreams);
}

// Events leave either directly from the gRPC thread or batched through the
// connection's write queue; whichever way, every stream sees every id once,
// in order.
TEST_F(BridgeTest, ManyStreamsAt1msKeepEveryEventInOrder) {
  StartBridge();
  constexpr int kStreams = 30;
  constexpr int kCount = 300;
  std::vector<std::unique_ptr<HttpConnection>> connections;
  for (int i = 0; i < kStreams; ++i) {
    connections.push_back(std::make_unique<HttpConnection>(bridge_->port()));
    connections.back()->SendRequest(
        "GET", absl::StrCat("/streaming.v1.Streaming/Ping?to=o&interval_ms=1&count=", kCount));
  }
  for (auto& connection : connections) {
    HttpResponse response = connection->ReadResponse();
    ASSERT_EQ(response.status, 200) << response.error;
    auto events = ParseSse(response.body);
    ASSERT_EQ(events.size(), static_cast<size_t>(kCount + 1));
    for (int i = 0; i < kCount; ++i) ASSERT_EQ(events[i].id, std::to_string(i + 1));
    EXPECT_EQ(events.back().event, "end");
  }
}

TEST_F(BridgeTest, ABackendGoingAwayMidStreamSendsRetryAndNoEnd) {
  StartBridge();
  HttpConnection connection(bridge_->port());
  connection.SendRequest("GET", "/streaming.v1.Streaming/Ping?count=100&interval_ms=20");
  std::string seen;
  ASSERT_TRUE(connection.ReadUntil("id: 2\n", &seen)) << seen;
  std::thread stop([&] { server_->Shutdown(); });
  ASSERT_TRUE(connection.ReadUntil("0\r\n\r\n", &seen)) << seen;  // the last chunk
  stop.join();
  EXPECT_TRUE(absl::StrContains(seen, "retry: 2000\n\n")) << seen;
  EXPECT_FALSE(absl::StrContains(seen, "event: end")) << seen;
}

TEST_P(BridgeWireTest, BridgeShutdownCutsStreamsWithARetryHint) {
  StartBridge();
  const std::string target = "/streaming.v1.Streaming/Ping?count=100&interval_ms=20";
  absl::Notification first_event;
  auto go_on = [&](const std::string& body) {
    if (absl::StrContains(body, "id: 1\n") && !first_event.HasBeenNotified()) first_event.Notify();
    return true;
  };
  HttpResponse response;
  std::thread reader([&] {
    if (GetParam() == Wire::kHttp1) {
      HttpConnection connection(bridge_->port());
      connection.SendRequest("GET", target);
      response = connection.ReadResponse(go_on);
    } else {
      response = testing::Http2Request(bridge_->port(), GetParam() == Wire::kH2, "GET", target, {},
                                       "", 20000, go_on);
    }
  });
  EXPECT_TRUE(first_event.WaitForNotificationWithTimeout(absl::Seconds(10)));
  const absl::Time start = absl::Now();
  bridge_->Shutdown();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  reader.join();
  // A clean end (the last chunk; END_STREAM), after the retry: hint and no `end`.
  EXPECT_EQ(response.error, "");
  EXPECT_TRUE(absl::EndsWith(response.body, "retry: 2000\n\n")) << response.body;
  EXPECT_FALSE(absl::StrContains(response.body, "event: end")) << response.body;
}

// HTTP/2: a body over --max_body_bytes is answered 413 at once and the
// client is asked to stop sending it (RST_STREAM NO_ERROR after the answer),
// and the bridge goes on serving. (HTTP/1.1's is
// ABodyOverMaxBodyBytesIs413AndCloses.)
TEST_P(BridgeWireTest, AnHttp2BodyOverTheBoundIs413ThenResetWithNoError) {
  if (GetParam() == Wire::kHttp1) GTEST_SKIP() << "HTTP/1.1 closes instead; tested on its own";
  BridgeOptions options;
  options.max_body_bytes = 64 * 1024;
  StartBridge(options);
  const std::string body = "{\"text\":\"" + std::string(512 * 1024, 'x') + "\"}";
  HttpResponse response = Request("POST", "/streaming.v1.Streaming/Echo", {}, body);
  EXPECT_EQ(response.status, 413) << response.error;
  EXPECT_EQ(response.error, "");  // ended with NO_ERROR, not a reset by fault
  EXPECT_TRUE(absl::StartsWith(response.body, "{\"code\":3,\"message\":\"request body too large"))
      << response.body;
  EXPECT_EQ(Request("POST", "/streaming.v1.Streaming/Echo", {}, R"({"text":"ok"})").body,
            "{\"text\":\"ok\"}\n");
}

// Issue 20: a client that accepts gzip gets the stream compressed, and each
// event can be decoded when it arrives (a missing flush would hold the first
// back until the second); the whole decodes to the uncompressed stream.
TEST_P(BridgeWireTest, AGzipStreamDecodesEachEventAsItArrives) {
  StartBridge();
  const std::string target = "/streaming.v1.Streaming/Ping?to=z&count=3&interval_ms=300";
  HttpResponse plain = Get(target);
  bool first_alone = false;
  auto go_on = [&](const std::string& body) {
    const std::string decoded = testing::Gunzipped(body);
    if (absl::StrContains(decoded, "id: 1\n") && !absl::StrContains(decoded, "id: 2\n")) {
      first_alone = true;
    }
    return true;
  };
  HttpResponse compressed;
  const std::vector<std::pair<std::string, std::string>> gzip = {{"Accept-Encoding", "gzip"}};
  if (GetParam() == Wire::kHttp1) {
    HttpConnection connection(bridge_->port());
    connection.SendRequest("GET", target, gzip);
    compressed = connection.ReadResponse(go_on);
  } else {
    compressed = testing::Http2Request(bridge_->port(), GetParam() == Wire::kH2, "GET", target,
                                       gzip, "", 20000, go_on);
  }
  EXPECT_EQ(compressed.status, 200) << compressed.error;
  EXPECT_EQ(compressed.header("content-encoding"), "gzip");
  EXPECT_EQ(compressed.header("vary"), "Accept-Encoding");
  EXPECT_TRUE(first_alone) << "the first event was not decodable before the second came";
  EXPECT_EQ(testing::Gunzipped(compressed.body), plain.body);
  // A plain answer of 1 KiB or more is compressed too (/metrics); a small
  // one is not.
  HttpResponse metrics = Request("GET", "/metrics", gzip);
  EXPECT_EQ(metrics.header("content-encoding"), "gzip");
  EXPECT_TRUE(absl::StartsWith(testing::Gunzipped(metrics.body), "# HELP gravity_bridge_"))
      << metrics.body;
  EXPECT_EQ(Request("GET", "/healthz", gzip).header("content-encoding"), "");
}

// Issue 20: keep-alive comments of a compressed stream still reach the
// client (through the compressor, flushed like events).
TEST_P(BridgeWireTest, AGzipStreamStillCarriesKeepAlives) {
  BridgeOptions options;
  options.keepalive = absl::Milliseconds(50);
  StartBridge(options);
  HttpResponse response = Get("/streaming.v1.Streaming/Ping?to=bob&count=2&interval_ms=400",
                              {{"Accept-Encoding", "gzip"}});
  EXPECT_EQ(response.header("content-encoding"), "gzip");
  const std::string decoded = testing::Gunzipped(response.body);
  EXPECT_TRUE(absl::StrContains(decoded, ": keep-alive\n\n")) << decoded;
  EXPECT_EQ(ParseSse(decoded).size(), 3u) << decoded;
}

// Issue 19: past --max_stream_starts_per_second an EventSource is told to
// come back later (a 200 that is only a retry: hint: EventSource gives up on
// a 503) and other clients get 503 with Retry-After.
TEST_F(BridgeTest, StreamsOverTheStartBudgetAreToldToComeBackLater) {
  BridgeOptions options;
  options.max_stream_starts_per_second = 2;
  StartBridge(options);
  const std::vector<std::pair<std::string, std::string>> event_stream = {
      {"Accept", "text/event-stream"}};
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(ParseSse(Get(kFastPing, event_stream).body).back().event, "end") << i;
  }
  HttpResponse later = Get(kFastPing, event_stream);
  EXPECT_EQ(later.status, 200);
  EXPECT_EQ(later.header("content-type"), "text/event-stream; charset=utf-8");
  EXPECT_EQ(later.body, "retry: 2000\n\n");
  HttpResponse refused = Get(kFastPing);
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(refused.header("retry-after"), "2");
  EXPECT_TRUE(absl::StartsWith(refused.body, "{\"code\":14,")) << refused.body;
  HttpResponse metrics = Get("/metrics");
  EXPECT_TRUE(absl::StrContains(metrics.body, "gravity_bridge_starts_over_budget_total 2\n"))
      << metrics.body;
}

// Issue 19: a drain spreads its cuts (here 200 connections: over 100 ms at
// 2,000 a second) instead of cutting everyone in the same instant.
TEST_F(BridgeTest, ShutdownSpreadsItsCuts) {
  BridgeOptions options;
  options.drain_timeout = absl::Seconds(2);
  StartBridge(options);
  constexpr int kStreams = 200;
  std::vector<std::unique_ptr<HttpConnection>> connections;
  for (int i = 0; i < kStreams; ++i) {
    connections.push_back(std::make_unique<HttpConnection>(bridge_->port()));
    connections.back()->SendRequest("GET",
                                    "/streaming.v1.Streaming/Ping?count=1000&interval_ms=1000");
  }
  for (auto& connection : connections) {
    std::string seen;
    ASSERT_TRUE(connection->ReadUntil("id: 1\n", &seen)) << seen;
  }
  std::vector<absl::Time> cut_at(kStreams);
  std::vector<std::thread> readers;
  for (int i = 0; i < kStreams; ++i) {
    readers.emplace_back([&, i] {
      std::string seen;
      connections[i]->ReadUntil("0\r\n\r\n", &seen);
      cut_at[i] = absl::Now();
    });
  }
  const absl::Time start = absl::Now();
  bridge_->Shutdown();
  for (auto& reader : readers) reader.join();
  const auto [first, last] = std::minmax_element(cut_at.begin(), cut_at.end());
  EXPECT_GT(*last - *first, absl::Milliseconds(50));  // spread, not one burst
  EXPECT_LT(*last - start, options.drain_timeout);    // and within the drain
}

// Issue 19: each stream's retry: hint is --retry jittered by ±retry_jitter,
// so the clients of a bridge that dies come back spread out.
TEST_F(BridgeTest, EachStreamsRetryHintIsJitteredWithinItsBounds) {
  BridgeOptions options;
  options.retry = absl::Seconds(2);
  options.retry_jitter = 0.5;
  StartBridge(options, /*exact_retry=*/false);
  std::set<int> hints;
  for (int i = 0; i < 20; ++i) {
    HttpResponse response = Get("/streaming.v1.Streaming/Ping?count=1&interval_ms=1");
    ASSERT_TRUE(absl::StartsWith(response.body, "retry: ")) << response.body;
    const int ms = std::atoi(response.body.c_str() + std::strlen("retry: "));
    EXPECT_GE(ms, 1000);
    EXPECT_LE(ms, 3000);
    hints.insert(ms);
  }
  // 20 draws from 2,001 values: all equal only if the jitter is not there.
  EXPECT_GT(hints.size(), 5u);
}

TEST_P(BridgeWireTest, AStreamOlderThanTheLimitIsCutWithARetryHint) {
  BridgeOptions options;
  options.max_stream_duration = absl::Milliseconds(100);
  StartBridge(options);
  HttpResponse response = Get("/streaming.v1.Streaming/Ping?count=100&interval_ms=20");
  EXPECT_EQ(response.status, 200);
  EXPECT_TRUE(absl::EndsWith(response.body, "retry: 2000\n\n")) << response.body;
  EXPECT_FALSE(absl::StrContains(response.body, "event: end"));
}

TEST_F(BridgeTest, StreamsPerClientAreLimited) {
  BridgeOptions options;
  options.max_streams_per_client = 1;
  StartBridge(options);
  HttpConnection first(bridge_->port());
  first.SendRequest("GET", "/streaming.v1.Streaming/Ping?count=100&interval_ms=20");
  std::string seen;
  ASSERT_TRUE(first.ReadUntil("id: 1\n", &seen));
  HttpResponse second = Get(kFastPing);
  EXPECT_EQ(second.status, 429);
  first.Close();
  // Once the first stream is gone, the client may open another.
  testing::WaitFor([&] { return bridge_->active_streams() == 0; }, absl::Seconds(1));
  EXPECT_EQ(Get(kFastPing).status, 200);
}

TEST_F(BridgeTest, EmbeddedOnTheServersInProcessChannelItServesTheSameStream) {
  auto descriptors = DescriptorsOfLinkedServices({service_->full_name()});
  ASSERT_TRUE(descriptors.ok()) << descriptors.status();
  BridgeOptions options;
  options.listen = "127.0.0.1:0";
  options.retry_jitter = 0;  // exact retry: hints
  auto embedded = Bridge::Start(options, server_->InProcessChannel(), *descriptors);
  ASSERT_TRUE(embedded.ok()) << embedded.status();
  auto events = ParseSse(HttpRequest((*embedded)->port(), "GET", kFastPing).body);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[2].id, "3");
  EXPECT_EQ(events[3].event, "end");
}

TEST(BridgeUnavailableTest, AnUnreachableBackendGivesSseARetryAndOthers503) {
  auto descriptors = DescriptorsOfLinkedServices({"streaming.v1.Streaming"});
  ASSERT_TRUE(descriptors.ok());
  BridgeOptions options;
  options.listen = "127.0.0.1:0";
  options.retry_jitter = 0;  // exact retry: hints
  // Port 1 on loopback: nothing listens there.
  auto bridge =
      Bridge::Start(options, grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()),
                    *descriptors);
  ASSERT_TRUE(bridge.ok()) << bridge.status();
  HttpResponse sse =
      HttpRequest((*bridge)->port(), "GET", kPing, {{"Accept", "text/event-stream"}});
  EXPECT_EQ(sse.status, 200);
  EXPECT_EQ(sse.body, "retry: 2000\n\n");
  HttpResponse ndjson =
      HttpRequest((*bridge)->port(), "GET", kPing, {{"Accept", "application/x-ndjson"}});
  EXPECT_EQ(ndjson.status, 503);
  EXPECT_TRUE(absl::StartsWith(ndjson.body, "{\"code\":14,")) << ndjson.body;
  HttpResponse plain = HttpRequest((*bridge)->port(), "GET", kPing);  // e.g. curl
  EXPECT_EQ(plain.status, 503);
}

TEST(BridgeUnavailableTest, ABackendThatNeverAnswersGets504) {
  // Accepts TCP connections and never speaks: the call is neither accepted
  // nor refused.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor silent(
      io, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  auto descriptors = DescriptorsOfLinkedServices({"streaming.v1.Streaming"});
  ASSERT_TRUE(descriptors.ok());
  BridgeOptions options;
  options.listen = "127.0.0.1:0";
  options.retry_jitter = 0;  // exact retry: hints
  options.accept_timeout = absl::Milliseconds(300);
  auto bridge =
      Bridge::Start(options,
                    grpc::CreateChannel(absl::StrCat("127.0.0.1:", silent.local_endpoint().port()),
                                        grpc::InsecureChannelCredentials()),
                    *descriptors);
  ASSERT_TRUE(bridge.ok()) << bridge.status();
  const absl::Time start = absl::Now();
  HttpResponse response =
      HttpRequest((*bridge)->port(), "GET", kPing, {{"Accept", "text/event-stream"}});
  EXPECT_EQ(response.status, 504);
  EXPECT_TRUE(absl::StartsWith(response.body, "{\"code\":4,")) << response.body;
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(BridgeOptionsTest, AReservedForwardHeaderIsRefusedAtStart) {
  auto descriptors = DescriptorsOfLinkedServices({"streaming.v1.Streaming"});
  ASSERT_TRUE(descriptors.ok());
  for (const char* name : {"grpc-timeout", "x-token-bin", "bad header", "Content-Type"}) {
    BridgeOptions options;
    options.listen = "127.0.0.1:0";
    options.retry_jitter = 0;  // exact retry: hints
    options.forward_headers = {name};
    auto bridge = Bridge::Start(
        options, grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()),
        *descriptors);
    EXPECT_EQ(bridge.status().code(), absl::StatusCode::kInvalidArgument) << name;
  }
  BridgeOptions fine;
  fine.listen = "127.0.0.1:0";
  fine.forward_headers = {"X-Request-Id"};
  EXPECT_TRUE(Bridge::Start(fine,
                            grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()),
                            *descriptors)
                  .ok());
}

// Finding: one request whose forwarded metadata was over the backend's limit
// failed the shared HTTP/2 connection, and so every other stream, with `end`
// code 8. Such a request is now a 431 that never goes upstream.
TEST_F(BridgeTest, OversizedForwardedHeadersAre431AndOtherStreamsGoOn) {
  StartBridge();
  constexpr int kStreams = 3;
  std::vector<std::unique_ptr<HttpConnection>> streams;
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(std::make_unique<HttpConnection>(bridge_->port()));
    streams.back()->SendRequest("GET", "/streaming.v1.Streaming/Ping?count=6&interval_ms=100");
    std::string seen;
    ASSERT_TRUE(streams.back()->ReadUntil("id: 1\n", &seen)) << seen;
  }
  const std::string big(9000, 'a');
  const std::vector<std::pair<std::string, std::vector<std::pair<std::string, std::string>>>>
      oversized = {
          {kPing, {{"Cookie", "session=" + big}}},
          {kPing, {{"Last-Event-ID", std::string(9000, '7')}}},
          {std::string(kPing) + "?access_token=" + big, {}},
          {kPing, {{"Authorization", "Bearer " + big}}},
      };
  for (const auto& [target, headers] : oversized) {
    HttpResponse response = Get(target, headers);
    EXPECT_EQ(response.status, 431) << target;
    EXPECT_EQ(response.header("content-type"), "application/json");
    EXPECT_TRUE(absl::StartsWith(response.body, "{\"code\":3,")) << response.body;
    EXPECT_TRUE(absl::StrContains(response.body, "forwards at most 6144")) << response.body;
  }
  // Just under the bound is forwarded.
  EXPECT_EQ(Get(kFastPing, {{"Cookie", "session=" + std::string(4000, 'a')}}).status, 200);
  for (auto& stream : streams) {
    std::string seen;
    ASSERT_TRUE(stream->ReadUntil("0\r\n\r\n", &seen)) << seen;
    EXPECT_TRUE(absl::StrContains(seen, "id: 6\n")) << seen;
    EXPECT_TRUE(absl::StrContains(seen, "event: end\ndata: {\"code\":0,")) << seen;
  }
}

// Against a backend whose metadata limit is below the bridge's bound, an
// oversized call still fails the backend's connection (gRPC's doing). The
// oversized request gets 431; the streams that shared the connection are cut
// with `retry:` and no `end`, so browsers resume instead of stopping.
TEST(BridgeBackendLimitTest, ACallOverTheBackendsLimitEndsNoOtherStream) {
  auto service = examples::MakeStreamingService("token");
  ASSERT_TRUE(service.ok());
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, 1024);
  builder.RegisterService(service->get());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto descriptors = DescriptorsOfLinkedServices({"streaming.v1.Streaming"});
  ASSERT_TRUE(descriptors.ok());
  BridgeOptions options;
  options.listen = "127.0.0.1:0";
  options.retry_jitter = 0;  // exact retry: hints
  auto bridge = Bridge::Start(
      options,
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()),
      *descriptors);
  ASSERT_TRUE(bridge.ok()) << bridge.status();

  constexpr int kStreams = 3;
  std::vector<std::unique_ptr<HttpConnection>> streams;
  std::vector<std::string> seen(kStreams);
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(std::make_unique<HttpConnection>((*bridge)->port()));
    streams.back()->SendRequest("GET", "/streaming.v1.Streaming/Ping?count=50&interval_ms=50",
                                {{"Accept", "text/event-stream"}});
    ASSERT_TRUE(streams.back()->ReadUntil("id: 1\n", &seen[i])) << seen[i];
  }
  HttpResponse oversized = HttpRequest(
      (*bridge)->port(), "GET", kPing,
      {{"Accept", "text/event-stream"}, {"Cookie", "session=" + std::string(2000, 'a')}});
  EXPECT_EQ(oversized.status, 431);
  EXPECT_TRUE(absl::StartsWith(oversized.body, "{\"code\":8,")) << oversized.body;
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_TRUE(streams[i]->ReadUntil("0\r\n\r\n", &seen[i])) << seen[i];
    EXPECT_TRUE(absl::StrContains(seen[i], "retry: 2000\n\n")) << seen[i];
    EXPECT_FALSE(absl::StrContains(seen[i], "event: end")) << seen[i];
  }
  // The browser's reconnect resumes after its last id and ends normally. As
  // EventSource does, it retries while the bridge answers `retry:` alone (the
  // backend connection is being made again).
  std::vector<testing::SseEvent> events;
  for (int attempt = 0; attempt < 50 && events.empty(); ++attempt) {
    if (attempt > 0) absl::SleepFor(absl::Milliseconds(100));
    events = ParseSse(HttpRequest((*bridge)->port(), "GET",
                                  "/streaming.v1.Streaming/Ping?count=5&interval_ms=10",
                                  {{"Accept", "text/event-stream"}, {"Last-Event-ID", "3"}})
                          .body);
  }
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].id, "4");
  EXPECT_EQ(events.back().event, "end");
  EXPECT_TRUE(absl::StartsWith(events.back().data, "{\"code\":0,")) << events.back().data;
  (*bridge)->Shutdown();
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
}

// A browser that stops reading: the bridge reads ahead only its bound, so the
// backend's sends stall far below what it wanted to send (HTTP/2 flow control
// holds it back), while another stream of the same bridge flows.
TEST(BridgeReadAheadTest, AReaderThatStopsStopsTheUpstreamAndOthersFlow) {
  std::atomic<int> sent{0};
  server::Service service("streaming.v1.Streaming");
  ASSERT_TRUE((service.AddStream<streaming::v1::PingRequest, streaming::v1::PingReply>(
                   "Ping",
                   [&](const streaming::v1::PingRequest& request,
                       server::Stream<streaming::v1::PingReply> stream) {
                     const int count = request.count();
                     auto next = std::make_shared<int>(0);
                     stream.Every(
                         absl::Milliseconds(1),
                         [&sent, count, next](server::Stream<streaming::v1::PingReply>& s) {
                           streaming::v1::PingReply reply;
                           reply.set_message(std::string(1000, 'x'));
                           while (*next < count && !s.Backlogged()) {
                             reply.set_seq(++*next);
                             if (!s.Send(reply)) return;
                             if (count > 1000) ++sent;
                           }
                           if (*next == count) s.Close();
                         });
                   }))
                  .ok());
  auto server = gravity::testing::StartServer({&service});
  auto descriptors = DescriptorsOfLinkedServices({"streaming.v1.Streaming"});
  ASSERT_TRUE(descriptors.ok());
  BridgeOptions options;
  options.listen = "127.0.0.1:0";
  options.retry_jitter = 0;  // exact retry: hints
  auto bridge =
      Bridge::Start(options,
                    grpc::CreateCustomChannel(server->address(), grpc::InsecureChannelCredentials(),
                                              BackendChannelArguments()),
                    *descriptors);
  ASSERT_TRUE(bridge.ok()) << bridge.status();

  constexpr int kWanted = 50000;  // 50 MB: far more than every buffer on the way
  HttpConnection stalled((*bridge)->port());
  stalled.SendRequest("GET", absl::StrCat(kPing, "?count=", kWanted));
  // Wait until the backend's sends stop growing (bounded; a loaded machine
  // may pause a little, so it takes two quiet samples).
  int last = -1;
  int quiet = 0;
  for (int i = 0; i < 60 && quiet < 2; ++i) {
    absl::SleepFor(absl::Milliseconds(250));
    const int now = sent.load();
    quiet = now == last ? quiet + 1 : 0;
    last = now;
  }
  EXPECT_EQ(quiet, 2) << "the backend kept sending to a reader that stopped: " << last;
  EXPECT_GT(last, 0);
  // What every buffer on the way holds together (socket buffers, gRPC's
  // window, the read-ahead, the server's queue) is far below what was asked.
  EXPECT_LT(last, kWanted / 5);
  // Another stream of the same bridge (and backend connection) flows.
  auto events =
      ParseSse(HttpRequest((*bridge)->port(), "GET", std::string(kPing) + "?count=20").body);
  ASSERT_EQ(events.size(), 21u);
  EXPECT_EQ(events.back().event, "end");
  EXPECT_LT(sent.load(), kWanted / 5);
  stalled.Close();
}

// Security review findings on HTTP framing.
TEST_F(BridgeTest, AHeadResponseCarriesNoBodySoTheNextResponseParses) {
  StartBridge();
  HttpConnection connection(bridge_->port());
  connection.SendRaw(
      "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n"
      "Connection: close\r\n\r\n");
  const std::string seen = connection.ReadToClose();
  // The HEAD answer ends at its blank line; the GET answer follows at once.
  const size_t head_end = seen.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos) << seen;
  EXPECT_TRUE(absl::StartsWith(seen, "HTTP/1.1 200 OK\r\n")) << seen;
  EXPECT_TRUE(absl::StrContains(seen.substr(0, head_end), "Content-Length: 21")) << seen;
  EXPECT_TRUE(absl::StartsWith(seen.substr(head_end + 4), "HTTP/1.1 200 OK\r\n")) << seen;
  EXPECT_TRUE(absl::EndsWith(seen, "\r\n\r\n{\"status\":\"SERVING\"}\n")) << seen;
}

TEST_F(BridgeTest, ExpectContinueGetsAnInterim100BeforeTheBodyIsSent) {
  StartBridge();
  HttpConnection connection(bridge_->port());
  const std::string body = R"({"to":"ann","count":1,"intervalMs":1})";
  connection.SendRaw(absl::StrCat(
      "POST /streaming.v1.Streaming/Ping HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Expect: 100-continue\r\nConnection: close\r\nContent-Length: ",
      body.size(), "\r\n\r\n"));
  std::string seen;
  ASSERT_TRUE(connection.ReadUntil("\r\n\r\n", &seen)) << seen;
  EXPECT_EQ(seen, "HTTP/1.1 100 Continue\r\n\r\n");
  connection.SendRaw(body);
  seen += connection.ReadToClose();
  EXPECT_TRUE(absl::StrContains(seen, "\r\n\r\nHTTP/1.1 200 OK\r\n")) << seen;
  EXPECT_TRUE(absl::StrContains(seen, "Sending ping to ann")) << seen;
  EXPECT_TRUE(absl::StrContains(seen, "event: end")) << seen;
}

// Once a kept-alive connection's next request has begun, its head gets the
// header timeout, as on a new connection, not the idle timeout.
TEST_F(BridgeTest, ASlowHeadOnAKeptAliveConnectionGetsTheHeaderTimeout) {
  BridgeOptions options;
  options.header_timeout = absl::Milliseconds(300);
  options.idle_timeout = absl::Seconds(30);
  StartBridge(options);
  HttpConnection connection(bridge_->port());
  connection.SendRaw("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string seen;
  ASSERT_TRUE(connection.ReadUntil("SERVING\"}\n", &seen)) << seen;
  const absl::Time start = absl::Now();
  connection.SendRaw("GET /hea");  // and nothing more
  const std::string rest = connection.ReadToClose();
  EXPECT_EQ(rest, "");
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(BridgeTest, TwoAuthorizationHeadersAreRefused) {
  StartBridge();
  HttpResponse response = Get("/streaming.v1.Streaming/StreamUsers?count=1",
                              {{"Authorization", std::string("Bearer ") + testing::kAdminToken}});
  EXPECT_EQ(response.status, 200);
  HttpConnection connection(bridge_->port());
  connection.SendRaw(absl::StrCat(
      "GET /streaming.v1.Streaming/StreamUsers?count=1 HTTP/1.1\r\nHost: x\r\n"
      "Authorization: Bearer ",
      testing::kAdminToken, "\r\nAuthorization: Bearer other\r\nConnection: close\r\n\r\n"));
  const std::string seen = connection.ReadToClose();
  EXPECT_TRUE(absl::StartsWith(seen, "HTTP/1.1 400 Bad Request\r\n")) << seen;
  EXPECT_TRUE(absl::StrContains(seen, "Authorization given more than once")) << seen;
}

TEST_F(BridgeTest, FieldsInAChunkedRequestsTrailerAreRefused) {
  StartBridge();
  HttpConnection connection(bridge_->port());
  connection.SendRaw(
      "POST /streaming.v1.Streaming/StreamUsers HTTP/1.1\r\nHost: x\r\n"
      "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
      "2\r\n{}\r\n0\r\nAuthorization: Bearer " +
      std::string(testing::kAdminToken) + "\r\n\r\n");
  const std::string seen = connection.ReadToClose();
  EXPECT_TRUE(absl::StartsWith(seen, "HTTP/1.1 400 Bad Request\r\n")) << seen;
  EXPECT_TRUE(absl::StrContains(seen, "a request trailer is not accepted")) << seen;
}

TEST_F(BridgeTest, AnHttp10ClientGetsAnUnchunkedStreamThenTheClose) {
  StartBridge();
  HttpConnection connection(bridge_->port());
  connection.SendRaw(
      "GET /streaming.v1.Streaming/Ping?to=bob&count=2&interval_ms=10 HTTP/1.0\r\n\r\n");
  const std::string seen = connection.ReadToClose();
  const size_t head_end = seen.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos) << seen;
  EXPECT_FALSE(absl::StrContains(seen.substr(0, head_end), "Transfer-Encoding")) << seen;
  auto events = ParseSse(seen.substr(head_end + 4));
  ASSERT_EQ(events.size(), 3u) << seen;
  EXPECT_EQ(events[1].id, "2");
  EXPECT_EQ(events[2].event, "end");
}

// Three requests written in one send on one connection are answered in order,
// each response whole: a plain answer, a stream to its last chunk, a plain one.
TEST_F(BridgeTest, PipelinedRequestsAreAnsweredInOrderEachComplete) {
  StartBridge();
  HttpConnection connection(bridge_->port());
  connection.SendRaw(
      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /streaming.v1.Streaming/Ping?to=bob&count=2&interval_ms=10 HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  HttpResponse first = connection.ReadResponse();
  EXPECT_EQ(first.error, "");
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.body, "{\"status\":\"SERVING\"}\n");
  HttpResponse stream = connection.ReadResponse();
  EXPECT_EQ(stream.error, "");
  EXPECT_EQ(stream.status, 200);
  EXPECT_EQ(stream.header("content-type"), "text/event-stream; charset=utf-8");
  auto events = ParseSse(stream.body);
  ASSERT_EQ(events.size(), 3u) << stream.body;
  EXPECT_EQ(events[0].id, "1");
  EXPECT_EQ(events[1].id, "2");
  EXPECT_EQ(events[2].event, "end");
  EXPECT_EQ(events[2].data, "{\"code\":0,\"message\":\"\",\"details\":[]}");
  HttpResponse third = connection.ReadResponse();
  EXPECT_EQ(third.error, "");
  EXPECT_EQ(third.status, 200);
  EXPECT_EQ(third.body, "{\"status\":\"SERVING\"}\n");
}

TEST_F(BridgeTest, AStreamOverMaxStreamsIs503UntilOneCloses) {
  BridgeOptions options;
  options.max_streams = 1;
  StartBridge(options);
  auto open = std::make_unique<HttpConnection>(bridge_->port());
  open->SendRequest("GET", "/streaming.v1.Streaming/Ping?to=bob&count=1000&interval_ms=50");
  std::string seen;
  ASSERT_TRUE(open->ReadUntil("id: 1\n", &seen)) << seen;
  EXPECT_TRUE(absl::StartsWith(seen, "HTTP/1.1 200 OK\r\n")) << seen;

  HttpResponse refused = Get(kFastPing);
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(refused.header("content-type"), "application/json");
  EXPECT_TRUE(absl::StartsWith(refused.body, "{\"code\":14,")) << refused.body;
  // Plain answers are not streams: still served.
  EXPECT_EQ(Get("/healthz").status, 200);

  open->Close();
  open.reset();
  EXPECT_TRUE(testing::WaitFor([&] { return bridge_->active_streams() == 0; }, absl::Seconds(5)));
  HttpResponse again = Get(kFastPing);
  EXPECT_EQ(again.status, 200) << again.body;
  auto events = ParseSse(again.body);
  ASSERT_EQ(events.size(), 4u) << again.body;
  EXPECT_EQ(events.back().event, "end");
}

TEST_F(BridgeTest, ABodyOverMaxBodyBytesIs413AndCloses) {
  BridgeOptions options;
  options.max_body_bytes = 1024;
  StartBridge(options);
  const std::string prefix = R"({"to":")";
  const std::string suffix = R"("})";
  const std::string body = prefix + std::string(2000 - prefix.size() - suffix.size(), 'a') + suffix;
  ASSERT_EQ(body.size(), 2000u);
  HttpConnection connection(bridge_->port());
  const absl::Time start = absl::Now();
  connection.SendRaw(
      absl::StrCat("POST /streaming.v1.Streaming/Ping HTTP/1.1\r\nHost: x\r\n"
                   "Content-Type: application/json\r\nContent-Length: ",
                   body.size(), "\r\n\r\n", body));
  const std::string seen = connection.ReadToClose();
  // Closed by the bridge, not ended by the client's 20 s read timeout.
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_TRUE(absl::StartsWith(seen, "HTTP/1.1 413 Payload Too Large\r\n")) << seen;
  EXPECT_TRUE(absl::StrContains(seen, "{\"code\":3,")) << seen;
  EXPECT_TRUE(absl::StrContains(seen, "request body too large")) << seen;
  // A body under the limit streams.
  const std::string small = R"({"to":"ann","count":1,"intervalMs":1})";
  HttpResponse ok =
      HttpRequest(bridge_->port(), "POST", kPing, {{"Content-Type", "application/json"}}, small);
  EXPECT_EQ(ok.status, 200);
}

// google.rpc.Status details reach the browser, in the end event and in an
// error response.
TEST(BridgeStatusDetailsTest, DetailsOfTheStatusAreInTheStatusJson) {
  google::rpc::Status rich;
  rich.set_code(static_cast<int>(grpc::StatusCode::NOT_FOUND));
  rich.set_message("no such user");
  streaming::v1::User user;
  user.set_id("u1");
  rich.add_details()->PackFrom(user);
  google::protobuf::Any* unknown = rich.add_details();
  unknown->set_type_url("type.googleapis.com/acme.Unknown");
  unknown->set_value("\x08\x01");
  const grpc::Status failure(grpc::StatusCode::NOT_FOUND, "no such user", rich.SerializeAsString());

  server::Service service("streaming.v1.Streaming");
  ASSERT_TRUE((service.AddStream<streaming::v1::PingRequest, streaming::v1::PingReply>(
                   "Ping",
                   [&](const streaming::v1::PingRequest& request,
                       server::Stream<streaming::v1::PingReply> stream) -> grpc::Status {
                     if (request.count() == 0) return failure;  // rejected up front
                     streaming::v1::PingReply reply;
                     reply.set_seq(1);
                     stream.Send(reply);
                     stream.Close(failure);
                     return grpc::Status::OK;
                   }))
                  .ok());
  auto server = gravity::testing::StartServer({&service});
  auto descriptors = DescriptorsOfLinkedServices({"streaming.v1.Streaming"});
  ASSERT_TRUE(descriptors.ok());
  BridgeOptions options;
  options.listen = "127.0.0.1:0";
  options.retry_jitter = 0;  // exact retry: hints
  auto bridge = Bridge::Start(
      options, grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials()),
      *descriptors);
  ASSERT_TRUE(bridge.ok()) << bridge.status();

  const std::string expected = R"({"code":5,"message":"no such user","details":[)"
                               R"({"@type":"type.googleapis.com/streaming.v1.User","id":"u1"},)"
                               R"({"@type":"type.googleapis.com/acme.Unknown"}]})";
  auto events =
      ParseSse(HttpRequest((*bridge)->port(), "GET", std::string(kPing) + "?count=1").body);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].event, "end");
  EXPECT_EQ(events[1].data, expected);

  HttpResponse rejected = HttpRequest((*bridge)->port(), "GET", kPing);
  EXPECT_EQ(rejected.status, 404);
  EXPECT_EQ(rejected.body, expected + "\n");
}

// A service whose stream never ends and that records when its client leaves.
TEST(BridgeDisconnectTest, ABrowserDisconnectCancelsTheBackendWithin100ms) {
  absl::Notification cancelled;
  absl::Time cancelled_at;
  server::Service service("streaming.v1.Streaming");
  ASSERT_TRUE(
      (service.AddStream<streaming::v1::PingRequest, streaming::v1::PingReply>(
           "Ping",
           [&](const streaming::v1::PingRequest&, server::Stream<streaming::v1::PingReply> stream) {
             stream.OnCancel([&] {
               cancelled_at = absl::Now();
               cancelled.Notify();
             });
             streaming::v1::PingReply reply;
             reply.set_seq(1);
             stream.Send(reply);
           }))
          .ok());
  auto server = gravity::testing::StartServer({&service});
  auto descriptors = DescriptorsOfLinkedServices({"streaming.v1.Streaming"});
  ASSERT_TRUE(descriptors.ok());
  BridgeOptions options;
  options.listen = "127.0.0.1:0";
  options.retry_jitter = 0;  // exact retry: hints
  auto bridge = Bridge::Start(
      options, grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials()),
      *descriptors);
  ASSERT_TRUE(bridge.ok()) << bridge.status();

  HttpConnection connection((*bridge)->port());
  connection.SendRequest("GET", kPing);
  std::string seen;
  ASSERT_TRUE(connection.ReadUntil("id: 1\n", &seen)) << seen;
  const absl::Time closed_at = absl::Now();
  connection.Close();
  ASSERT_TRUE(cancelled.WaitForNotificationWithTimeout(absl::Seconds(5)));
  // Sanitizer builds run several times slower: there the bound is 500 ms.
  EXPECT_LT(cancelled_at - closed_at,
            testing::kSanitizedBuild ? absl::Milliseconds(500) : absl::Milliseconds(100));
  // The gauge comes back to zero.
  testing::WaitFor([&] { return (*bridge)->active_streams() == 0; }, absl::Seconds(1));
  EXPECT_EQ((*bridge)->active_streams(), 0);
}

TEST_P(BridgeWireTest, APathTemplateVariableFillsItsFieldPercentDecoded) {
  StartBridge();
  auto events = ParseSse(Get("/api/streaming/ping/b%C3%B6b%2F2?count=1&interval_ms=5").body);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].data,
            "{\"message\":\"Sending ping to b\xC3\xB6"
            "b/2\",\"seq\":\"1\"}");
  EXPECT_EQ(events[1].event, "end");
  // A variable segment never matches an empty segment or two segments.
  EXPECT_EQ(Get("/api/streaming/ping/").status, 404);
  EXPECT_EQ(Get("/api/streaming/ping/a/b").status, 404);
  // The path's value wins over the query's, as in grpc-gateway.
  events = ParseSse(Get("/api/streaming/ping/bob?to=ann&count=1&interval_ms=5").body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].data, "{\"message\":\"Sending ping to bob\",\"seq\":\"1\"}");
}

// ---- Unary methods ----------------------------------------------------------

TEST_P(BridgeWireTest, APostToAUnaryMethodAnswersWithTheRepliesJson) {
  BridgeOptions options;
  options.cors_origins = {"https://app.test"};
  StartBridge(options);
  for (const char* target : {"/streaming.v1.Streaming/Echo", "/api/streaming/echo"}) {
    HttpResponse response = Request(
        "POST", target, {{"Content-Type", "application/json"}, {"Origin", "https://app.test"}},
        R"({"text":"héllo"})");
    EXPECT_EQ(response.status, 200) << target << " " << response.body;
    EXPECT_EQ(response.header("content-type"), "application/json");
    EXPECT_EQ(response.header("access-control-allow-origin"), "https://app.test");
    EXPECT_EQ(response.body, "{\"text\":\"héllo\"}\n");
  }
  // An empty body is the empty request; proto3 JSON leaves out the empty text.
  EXPECT_EQ(Request("POST", "/streaming.v1.Streaming/Echo").body, "{}\n");
}

TEST_F(BridgeTest, AFailedUnaryCallIsItsMappedStatusWithTheStatusJson) {
  StartBridge();
  HttpResponse response = HttpRequest(bridge_->port(), "POST", "/streaming.v1.Streaming/Echo", {},
                                      R"({"text":"x","failCode":5})");
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.header("content-type"), "application/json");
  EXPECT_EQ(response.body,
            "{\"code\":5,\"message\":\"echo failed as asked (fail_code 5)\",\"details\":[]}\n");
  // The connection stays usable: keep-alive after an error reply.
  HttpConnection connection(bridge_->port());
  for (int i = 0; i < 2; ++i) {
    connection.SendRequest("POST", "/streaming.v1.Streaming/Echo", {},
                           absl::StrCat(R"({"failCode":)", i == 0 ? 16 : 0, "}"));
    HttpResponse answer = connection.ReadResponse();
    EXPECT_EQ(answer.status, i == 0 ? 401 : 200) << answer.body;
  }
}

// A unary backend that holds every call until the client leaves.
TEST(BridgeUnaryCancelTest, AClientThatLeavesCancelsTheBackendCall) {
  server::Service service("streaming.v1.Streaming");
  std::atomic<int> started{0};
  std::atomic<int> cancelled{0};
  std::mutex held_mu;
  std::vector<server::UnaryReply<streaming::v1::EchoReply>> held;
  ASSERT_TRUE((service.AddUnary<streaming::v1::EchoRequest, streaming::v1::EchoReply>(
                   "Echo",
                   [&](const streaming::v1::EchoRequest&,
                       server::UnaryReply<streaming::v1::EchoReply> reply) {
                     reply.OnCancel([&] { ++cancelled; });
                     std::lock_guard<std::mutex> lock(held_mu);
                     held.push_back(reply);
                     ++started;
                   }))
                  .ok());
  auto backend = testing::StartServer({&service});
  ASSERT_NE(backend, nullptr);
  auto descriptors = DescriptorsOfLinkedServices({"streaming.v1.Streaming"});
  ASSERT_TRUE(descriptors.ok());
  BridgeOptions options;
  options.listen = "127.0.0.1:0";
  options.retry_jitter = 0;  // exact retry: hints
  auto bridge = Bridge::Start(
      options, grpc::CreateChannel(backend->address(), grpc::InsecureChannelCredentials()),
      *descriptors);
  ASSERT_TRUE(bridge.ok()) << bridge.status();
  {
    HttpConnection connection((*bridge)->port());
    connection.SendRequest("POST", "/streaming.v1.Streaming/Echo", {}, "{}");
    ASSERT_TRUE(testing::WaitFor([&] { return started.load() == 1; }, absl::Seconds(10)));
  }  // the client leaves
  const absl::Duration bound =
      testing::kSanitizedBuild ? absl::Milliseconds(500) : absl::Milliseconds(100);
  const absl::Time left = absl::Now();
  EXPECT_TRUE(testing::WaitFor([&] { return cancelled.load() == 1; }, absl::Seconds(5)));
  EXPECT_LT(absl::Now() - left, bound);
  (*bridge)->Shutdown();
  std::lock_guard<std::mutex> lock(held_mu);
  held.clear();
}

// Bug: bytes queued behind a stalled write (a keep-alive comment each tick)
// pushed that write's deadline back, so a browser that stopped reading was
// never dropped: it kept its stream slot and its upstream call for ever.
TEST_F(BridgeTest, AClientThatStopsReadingIsDroppedAfterTheWriteTimeoutDespiteKeepAlives) {
  BridgeOptions options;
  options.keepalive = absl::Milliseconds(100);
  options.write_timeout = absl::Milliseconds(800);
  StartBridge(options);
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  const int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(bridge_->port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  const std::string request =
      absl::StrCat("GET ", kPing, "?count=1000000&interval_ms=1&to=", std::string(8000, 'z'),
                   " HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  ASSERT_TRUE(testing::WaitFor([&] { return bridge_->active_streams() == 1; }, absl::Seconds(5)));
  // Never read: the socket's buffers fill within a few seconds, then the
  // write stalls; 800 ms later the client is gone.
  EXPECT_TRUE(testing::WaitFor([&] { return bridge_->active_streams() == 0; }, absl::Seconds(20)));
  ::close(fd);
}

}  // namespace
}  // namespace gravity::bridge
