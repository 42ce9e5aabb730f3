// The Router (bridge/internal/router.h) without sockets: request in, a plain
// response or a stream plan out.
#include "bridge/internal/router.h"

#include <memory>
#include <string>
#include <variant>

#include "absl/strings/match.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "gtest/gtest.h"
#include "streaming/v1/streaming.pb.h"

namespace gravity::bridge::internal {
namespace {

namespace http = boost::beast::http;

class RouterTest : public ::testing::Test {
 protected:
  RouterTest() : state_(BridgeOptions{}) {
    const auto* pool = google::protobuf::DescriptorPool::generated_pool();
    streaming::v1::PingReply::descriptor();  // links the generated file
    state_.routes = std::make_unique<RouteTable>(
        *pool, std::vector<std::string>{"streaming.v1.Streaming"}, &state_.warnings);
    state_.factory = std::make_unique<google::protobuf::DynamicMessageFactory>(pool);
    state_.json = std::make_unique<JsonEncoder>(pool);
  }

  static HttpRequest Request(http::verb verb, const std::string& target,
                             std::vector<std::pair<std::string, std::string>> headers = {},
                             std::string body = "") {
    HttpRequest request(verb, target, 11);
    for (auto& [name, value] : headers) request.set(name, value);
    request.body() = std::move(body);
    request.prepare_payload();
    return request;
  }

  PlainResponse Plain(const HttpRequest& request) {
    Routed routed = Route(request, state_);
    EXPECT_TRUE(std::holds_alternative<PlainResponse>(routed));
    return std::holds_alternative<PlainResponse>(routed) ? std::get<PlainResponse>(routed)
                                                         : PlainResponse(http::status::ok);
  }

  StreamPlan Plan(const HttpRequest& request) {
    Routed routed = Route(request, state_);
    EXPECT_TRUE(std::holds_alternative<StreamPlan>(routed))
        << (std::holds_alternative<PlainResponse>(routed) ? std::get<PlainResponse>(routed).body
                                                          : "");
    return std::holds_alternative<StreamPlan>(routed) ? std::get<StreamPlan>(routed) : StreamPlan();
  }

  BridgeState state_;
};

TEST_F(RouterTest, AGetOnTheGrpcPathPlansThatMethodWithTheQueryAsRequest) {
  StreamPlan plan = Plan(Request(http::verb::get, "/streaming.v1.Streaming/Ping?to=bob&count=3"));
  ASSERT_NE(plan.method, nullptr);
  EXPECT_EQ(plan.method->grpc_path, "/streaming.v1.Streaming/Ping");
  streaming::v1::PingRequest request;
  ASSERT_TRUE(request.ParseFromString(plan.request_bytes));
  EXPECT_EQ(request.to(), "bob");
  EXPECT_EQ(request.count(), 3);
  EXPECT_EQ(plan.format, StreamFormat::kSse);
  EXPECT_TRUE(plan.metadata.empty());
}

TEST_F(RouterTest, TheHttpAnnotationPathAndAPostBodyPlanTheSameMethod) {
  StreamPlan plan = Plan(Request(http::verb::post, "/api/streaming/ping",
                                 {{"Content-Type", "application/json"}}, R"({"to":"ann"})"));
  ASSERT_NE(plan.method, nullptr);
  EXPECT_EQ(plan.method->grpc_path, "/streaming.v1.Streaming/Ping");
  streaming::v1::PingRequest request;
  ASSERT_TRUE(request.ParseFromString(plan.request_bytes));
  EXPECT_EQ(request.to(), "ann");
}

TEST_F(RouterTest, ForwardedMetadataComesFromHeadersAndTheBridgesParameters) {
  StreamPlan plan =
      Plan(Request(http::verb::get, "/streaming.v1.Streaming/Ping?access_token=t0k&lastEventId=7",
                   {{"Cookie", "a=b"}, {"Accept", "application/x-ndjson"}}));
  EXPECT_EQ(plan.format, StreamFormat::kNdjson);
  EXPECT_FALSE(plan.wants_event_stream);
  const Headers expected = {
      {"authorization", "Bearer t0k"}, {"cookie", "a=b"}, {"last-event-id", "7"}};
  EXPECT_EQ(plan.metadata, expected);
}

TEST_F(RouterTest, OversizedForwardedMetadataIs431AndClosesTheConnection) {
  state_.options.max_metadata_bytes = 100;
  PlainResponse response = Plain(
      Request(http::verb::get, "/streaming.v1.Streaming/Ping", {{"Cookie", std::string(69, 'c')}}));
  EXPECT_EQ(response.status, http::status::request_header_fields_too_large);
  EXPECT_TRUE(response.close);
  EXPECT_TRUE(absl::StrContains(response.body, "take 107 bytes")) << response.body;
  // 6 + 62 + 32 = 100 bytes: exactly at the bound is forwarded.
  EXPECT_EQ(Plan(Request(http::verb::get, "/streaming.v1.Streaming/Ping",
                         {{"Cookie", std::string(62, 'c')}}))
                .metadata.size(),
            1u);
}

TEST_F(RouterTest, PlainAnswers) {
  EXPECT_EQ(Plain(Request(http::verb::get, "/nope")).status, http::status::not_found);
  PlainResponse wrong = Plain(Request(http::verb::delete_, "/streaming.v1.Streaming/Ping"));
  EXPECT_EQ(wrong.status, http::status::method_not_allowed);
  EXPECT_EQ(Plain(Request(http::verb::get, "/streaming.v1.Streaming/Ping?count=x")).status,
            http::status::bad_request);
  PlainResponse health = Plain(Request(http::verb::get, "/healthz"));
  EXPECT_EQ(health.body, "{\"status\":\"SERVING\"}\n");
  state_.draining = true;
  EXPECT_EQ(Plain(Request(http::verb::get, "/healthz")).status, http::status::service_unavailable);
  EXPECT_EQ(Plain(Request(http::verb::get, "/streaming.v1.Streaming/Ping")).status,
            http::status::service_unavailable);
}

TEST_F(RouterTest, AStreamOverTheStreamLimitIs503) {
  state_.options.max_streams = 1;
  state_.metrics.active_streams = 1;
  PlainResponse response = Plain(Request(http::verb::get, "/streaming.v1.Streaming/Ping"));
  EXPECT_EQ(response.status, http::status::service_unavailable);
  EXPECT_TRUE(absl::StartsWith(response.body, "{\"code\":14,")) << response.body;
}

TEST_F(RouterTest, CorsPreflightOnlyForAllowlistedOrigins) {
  state_.options.cors_origins = {"https://app.example"};
  PlainResponse allowed = Plain(Request(
      http::verb::options, "/streaming.v1.Streaming/Ping",
      {{"Origin", "https://app.example"}, {"Access-Control-Request-Headers", "authorization"}}));
  EXPECT_EQ(allowed.status, http::status::no_content);
  EXPECT_FALSE(allowed.headers.empty());
  PlainResponse other = Plain(Request(http::verb::options, "/streaming.v1.Streaming/Ping",
                                      {{"Origin", "https://app.example.evil"}}));
  EXPECT_TRUE(other.headers.empty());
  EXPECT_TRUE(CorsHeaders("https://app.example.evil", state_.options).empty());
}

}  // namespace
}  // namespace gravity::bridge::internal
