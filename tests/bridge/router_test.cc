// The Router (bridge/internal/router.h) without sockets: request in, a plain
// response or a stream plan out.
#include "bridge/internal/router.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "bridge/internal/request_mapping.h"
#include "bridge/internal/trace_context.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "gtest/gtest.h"
#include "shapes.pb.h"
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
    request.set(http::field::host, "bridge.test");
    // What every client of a POST sends (a body not declared JSON is 415).
    if (verb == http::verb::post) request.set(http::field::content_type, "application/json");
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

  // What Beast's request parser, with the session's limits, makes of `raw`:
  // the request, or nullopt when it refuses the bytes itself (the session
  // then answers 400 "malformed HTTP request" and closes).
  std::optional<HttpRequest> Parse(const std::string& raw) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<uint32_t>(state_.options.max_header_bytes));
    parser.body_limit(state_.options.max_body_bytes);
    parser.eager(true);
    boost::system::error_code ec;
    parser.put(boost::asio::buffer(raw), ec);
    if (ec || !parser.is_done()) return std::nullopt;
    return parser.release();
  }

  // The format and wants_event_stream of a stream requested with `accept`.
  std::pair<StreamFormat, bool> Negotiated(const std::string& accept) {
    StreamPlan plan =
        Plan(Request(http::verb::get, "/streaming.v1.Streaming/Ping", {{"Accept", accept}}));
    return {plan.format, plan.wants_event_stream};
  }

  BridgeState state_;
};

// `metadata` without its traceparent, which must be there and valid (the
// bridge starts one when the client sent none).
Headers WithoutTraceparent(Headers metadata) {
  const auto at = std::find_if(metadata.begin(), metadata.end(),
                               [](const auto& entry) { return entry.first == "traceparent"; });
  EXPECT_NE(at, metadata.end());
  if (at == metadata.end()) return metadata;
  EXPECT_TRUE(IsValidTraceparent(at->second)) << at->second;
  metadata.erase(at);
  return metadata;
}

constexpr auto kSse = StreamFormat::kSse;
constexpr auto kNdjson = StreamFormat::kNdjson;

TEST_F(RouterTest, AGetOnTheGrpcPathPlansThatMethodWithTheQueryAsRequest) {
  StreamPlan plan = Plan(Request(http::verb::get, "/streaming.v1.Streaming/Ping?to=bob&count=3"));
  ASSERT_NE(plan.method, nullptr);
  EXPECT_EQ(plan.method->grpc_path, "/streaming.v1.Streaming/Ping");
  streaming::v1::PingRequest request;
  ASSERT_TRUE(request.ParseFromString(plan.request_bytes));
  EXPECT_EQ(request.to(), "bob");
  EXPECT_EQ(request.count(), 3);
  EXPECT_EQ(plan.format, StreamFormat::kSse);
  EXPECT_TRUE(WithoutTraceparent(plan.metadata).empty());  // only the bridge's traceparent
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
  EXPECT_EQ(WithoutTraceparent(plan.metadata), expected);
}

// W3C Trace Context: a valid traceparent (with its tracestate) goes upstream
// unchanged; none, an invalid one or two of them get a fresh one instead.
TEST_F(RouterTest, EveryCallCarriesATraceparentTheClientsWhenValid) {
  const std::string traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  StreamPlan kept = Plan(Request(http::verb::get, "/streaming.v1.Streaming/Ping",
                                 {{"traceparent", traceparent}, {"tracestate", "v=1"}}));
  EXPECT_EQ(kept.metadata, (Headers{{"traceparent", traceparent}, {"tracestate", "v=1"}}));
  for (const char* bad : {"", "00-zz", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}) {
    StreamPlan fresh = Plan(Request(http::verb::get, "/streaming.v1.Streaming/Ping",
                                    {{"traceparent", bad}, {"tracestate", "v=1"}}));
    // A tracestate without its traceparent means nothing: dropped.
    EXPECT_EQ(WithoutTraceparent(fresh.metadata), Headers{}) << bad;
  }
  // With --start_traces=false only a client's traceparent goes.
  state_.options.start_traces = false;
  EXPECT_TRUE(Plan(Request(http::verb::get, "/streaming.v1.Streaming/Ping")).metadata.empty());
  EXPECT_EQ(kept.metadata.size(), 2u);
  state_.options.start_traces = true;
  HttpRequest twice = Request(http::verb::get, "/streaming.v1.Streaming/Ping");
  twice.insert("traceparent", traceparent);
  twice.insert("traceparent", "00-11111111111111111111111111111111-00f067aa0ba902b7-01");
  StreamPlan replaced = Plan(twice);
  ASSERT_EQ(replaced.metadata.size(), 1u);
  EXPECT_NE(replaced.metadata[0].second, traceparent);
  EXPECT_TRUE(IsValidTraceparent(replaced.metadata[0].second));
}

TEST_F(RouterTest, OversizedForwardedMetadataIs431AndClosesTheConnection) {
  state_.options.max_metadata_bytes = 100;
  PlainResponse response = Plain(
      Request(http::verb::get, "/streaming.v1.Streaming/Ping", {{"Cookie", std::string(69, 'c')}}));
  EXPECT_EQ(response.status, http::status::request_header_fields_too_large);
  EXPECT_TRUE(response.close);
  EXPECT_TRUE(absl::StrContains(response.body, "take 107 bytes")) << response.body;
  // 6 + 62 + 32 = 100 bytes: exactly at the bound is forwarded (with the
  // bridge's own traceparent, which the client's bound does not count).
  EXPECT_EQ(WithoutTraceparent(Plan(Request(http::verb::get, "/streaming.v1.Streaming/Ping",
                                            {{"Cookie", std::string(62, 'c')}}))
                                   .metadata)
                .size(),
            1u);
}

TEST_F(RouterTest, APostToAUnaryMethodPlansOneCallWithTheBodyAsRequest) {
  const auto metadata_headers = std::vector<std::pair<std::string, std::string>>{
      {"Authorization", "Bearer t"}, {"Content-Type", "application/json"}};
  for (const char* target : {"/streaming.v1.Streaming/Echo", "/api/streaming/echo"}) {
    Routed routed =
        Route(Request(http::verb::post, target, metadata_headers, R"({"text":"hi","failCode":3})"),
              state_);
    ASSERT_TRUE(std::holds_alternative<UnaryPlan>(routed)) << target;
    const UnaryPlan& plan = std::get<UnaryPlan>(routed);
    EXPECT_EQ(plan.method->grpc_path, "/streaming.v1.Streaming/Echo");
    EXPECT_TRUE(plan.method->unary);
    streaming::v1::EchoRequest request;
    ASSERT_TRUE(request.ParseFromString(plan.request_bytes));
    EXPECT_EQ(request.text(), "hi");
    EXPECT_EQ(request.fail_code(), 3);
    EXPECT_EQ(WithoutTraceparent(plan.metadata), (Headers{{"authorization", "Bearer t"}}));
  }
}

TEST_F(RouterTest, AUnaryMethodTakesOnlyPost) {
  for (http::verb verb : {http::verb::get, http::verb::head, http::verb::put}) {
    PlainResponse response = Plain(Request(verb, "/streaming.v1.Streaming/Echo?text=x"));
    EXPECT_EQ(response.status, http::status::method_not_allowed);
    EXPECT_EQ(response.headers, (Headers{{"Allow", "POST, OPTIONS"}}));
    EXPECT_TRUE(absl::StartsWith(response.body, R"({"code":12,)")) << response.body;
  }
  // Streams still take both.
  EXPECT_EQ(Plain(Request(http::verb::put, "/streaming.v1.Streaming/Ping")).headers,
            (Headers{{"Allow", "GET, POST, OPTIONS"}}));
}

TEST_F(RouterTest, AUnaryCallWithABadBodyOrWhileDrainingIsRefusedBeforeAnyCall) {
  PlainResponse bad =
      Plain(Request(http::verb::post, "/streaming.v1.Streaming/Echo", {}, R"({"text":1,})"));
  EXPECT_EQ(bad.status, http::status::bad_request);
  EXPECT_TRUE(absl::StartsWith(bad.body, R"({"code":3,"message":"request body: )")) << bad.body;
  state_.draining = true;
  EXPECT_EQ(Plain(Request(http::verb::post, "/streaming.v1.Streaming/Echo", {}, "{}")).status,
            http::status::service_unavailable);
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

// Found by tests/fuzz/headers_fuzz: `Origin: *` matched the "*" entry as an
// allowlisted origin and got "*" with credentials.
TEST_F(RouterTest, CorsWildcardNeverComesWithCredentialsEvenForOriginStar) {
  state_.options.cors_origins = {"https://app.example", "*"};
  const Headers expected = {{"Access-Control-Allow-Origin", "*"}};
  EXPECT_EQ(CorsHeaders("*", state_.options), expected);
  EXPECT_EQ(CorsHeaders("https://other.example", state_.options), expected);
  EXPECT_EQ(CorsHeaders("https://app.example", state_.options).size(), 3u);
}

TEST_F(RouterTest, AcceptWeightsChooseTheFormatAndQZeroIsNotAcceptable) {
  using Result = std::pair<StreamFormat, bool>;
  EXPECT_EQ(Negotiated("application/x-ndjson"), Result(kNdjson, false));
  EXPECT_EQ(Negotiated("text/event-stream"), Result(kSse, true));
  EXPECT_EQ(Negotiated("*/*"), Result(kSse, false));
  // q=0 means "not acceptable".
  EXPECT_EQ(Negotiated("application/x-ndjson;q=0"), Result(kSse, false));
  EXPECT_EQ(Negotiated("application/x-ndjson; q=0.000, */*"), Result(kSse, false));
  EXPECT_EQ(Negotiated("text/event-stream;q=0"), Result(kSse, false));
  EXPECT_EQ(Negotiated("text/event-stream; Q=0, */*;q=0.5"), Result(kSse, false));
  // The more preferred wins; a tie goes to NDJSON, named explicitly.
  EXPECT_EQ(Negotiated("text/event-stream;q=0.5, application/x-ndjson;q=0.4"), Result(kSse, true));
  EXPECT_EQ(Negotiated("text/event-stream;q=0.5, application/x-ndjson;q=0.9"),
            Result(kNdjson, true));
  EXPECT_EQ(Negotiated("text/event-stream, application/x-ndjson"), Result(kNdjson, true));
  EXPECT_EQ(Negotiated("application/x-ndjson;q=0.5, */*"), Result(kSse, false));
  EXPECT_EQ(Negotiated("application/x-ndjson;q=0.5, text/*;q=0.4, */*"), Result(kNdjson, false));
  EXPECT_EQ(Negotiated("Application/X-NDJSON;charset=utf-8;q=1.000"), Result(kNdjson, false));
  // Whole media ranges, not substrings; a malformed range or q counts for nothing.
  EXPECT_EQ(Negotiated("application/x-ndjson-seq, text/event-streams"), Result(kSse, false));
  EXPECT_EQ(Negotiated("text/plain;x=\"application/x-ndjson,text/event-stream\""),
            Result(kSse, false));
  EXPECT_EQ(Negotiated("application/x-ndjson;q=2"), Result(kSse, false));
  EXPECT_EQ(Negotiated("application/x-ndjson;q=0.0001"), Result(kSse, false));
  EXPECT_EQ(Negotiated("application/x-ndjson;q"), Result(kSse, false));
  EXPECT_EQ(Negotiated("application/x-ndjson;q=0.001"), Result(kNdjson, false));
  // Several Accept fields are one list.
  HttpRequest two = Request(http::verb::get, "/streaming.v1.Streaming/Ping");
  two.insert(http::field::accept, "text/event-stream;q=0.1");
  two.insert(http::field::accept, "application/x-ndjson;q=0.2");
  StreamPlan plan = Plan(two);
  EXPECT_EQ(plan.format, kNdjson);
  EXPECT_TRUE(plan.wants_event_stream);
}

// The framing cases, from raw bytes through Beast's parser: those it refuses
// itself never reach the router; the rest must be refused by the router, and
// the connection closed (where the next request starts is unknown).
TEST_F(RouterTest, TransferEncodingOtherThanChunkedIs501AndCloses) {
  for (const std::string coding :
       {"xchunked", "identity", "gzip", "chunked, identity", "gzip, chunked", "chunked;x=1", ""}) {
    SCOPED_TRACE(coding);
    std::optional<HttpRequest> request = Parse(
        "POST /streaming.v1.Streaming/Ping HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: " + coding +
        "\r\n\r\n" + (absl::StrContains(coding, "chunked") ? "0\r\n\r\n" : ""));
    ASSERT_TRUE(request.has_value());  // Beast lets each through
    PlainResponse response = Plain(*request);
    EXPECT_EQ(response.status, http::status::not_implemented);
    EXPECT_EQ(response.content_type, "application/json");
    EXPECT_TRUE(absl::StartsWith(
        response.body,
        "{\"code\":12,\"message\":\"Transfer-Encoding \\\"" + coding + "\\\" is not implemented"))
        << response.body;
    EXPECT_TRUE(response.close);
  }
  // Two fields are one list: "gzip, chunked".
  std::optional<HttpRequest> two = Parse(
      "POST /streaming.v1.Streaming/Ping HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: gzip\r\n"
      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  ASSERT_TRUE(two.has_value());
  EXPECT_EQ(Plain(*two).status, http::status::not_implemented);
  // Exactly "chunked", in any case, is fine.
  std::optional<HttpRequest> chunked = Parse(
      "POST /streaming.v1.Streaming/Ping HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: Chunked\r\n"
      "Content-Type: application/json\r\n\r\nc\r\n{\"to\":\"ann\"}\r\n0\r\n\r\n");
  ASSERT_TRUE(chunked.has_value());
  streaming::v1::PingRequest message;
  ASSERT_TRUE(message.ParseFromString(Plan(*chunked).request_bytes));
  EXPECT_EQ(message.to(), "ann");
  // Beast refuses these itself.
  EXPECT_FALSE(
      Parse("POST / HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n"
            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"));
}

TEST_F(RouterTest, TransferEncodingWithContentLengthOrTwoContentLengthsIs400AndCloses) {
  const std::string head = "POST /streaming.v1.Streaming/Ping HTTP/1.1\r\nHost: b\r\n";
  // Transfer-Encoding first and not chunked: Beast takes the Content-Length.
  std::optional<HttpRequest> both =
      Parse(head + "Transfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}");
  ASSERT_TRUE(both.has_value());
  PlainResponse response = Plain(*both);
  EXPECT_EQ(response.status, http::status::bad_request);
  EXPECT_TRUE(absl::StartsWith(response.body, "{\"code\":3,")) << response.body;
  EXPECT_TRUE(response.close);
  // Beast refuses the other orders.
  EXPECT_FALSE(Parse(head + "Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n0\r\n\r\n"));
  EXPECT_FALSE(Parse(head + "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"));
  EXPECT_FALSE(Parse(head + "Content-Length: 2\r\nTransfer-Encoding: gzip\r\n\r\n{}"));
  // Transfer-Encoding on HTTP/1.0 is faulty framing (RFC 9112 §6.1).
  std::optional<HttpRequest> http10 = Parse(
      "POST /streaming.v1.Streaming/Ping HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\n");
  ASSERT_TRUE(http10.has_value());
  EXPECT_EQ(Plain(*http10).status, http::status::bad_request);
  EXPECT_TRUE(Plain(*http10).close);
  // Two Content-Lengths: Beast refuses different values, takes equal ones.
  EXPECT_FALSE(Parse(head + "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}"));
  for (const std::string lengths :
       {"Content-Length: 2\r\nContent-Length: 2\r\n", "Content-Length: 2, 2\r\n"}) {
    SCOPED_TRACE(lengths);
    std::optional<HttpRequest> twice = Parse(head + lengths + "\r\n{}");
    ASSERT_TRUE(twice.has_value());
    PlainResponse refused = Plain(*twice);
    EXPECT_EQ(refused.status, http::status::bad_request);
    EXPECT_TRUE(absl::StrContains(refused.body, "more than one Content-Length")) << refused.body;
    EXPECT_TRUE(refused.close);
  }
  std::optional<HttpRequest> once =
      Parse(head + "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
  ASSERT_TRUE(once.has_value());
  EXPECT_NE(Plan(*once).method, nullptr);
}

TEST_F(RouterTest, AnHttp11RequestWithoutHostIs400) {
  HttpRequest request = Request(http::verb::get, "/streaming.v1.Streaming/Ping");
  request.erase(http::field::host);
  PlainResponse response = Plain(request);
  EXPECT_EQ(response.status, http::status::bad_request);
  EXPECT_EQ(response.content_type, "application/json");
  EXPECT_TRUE(absl::StartsWith(response.body, "{\"code\":3,")) << response.body;
  EXPECT_EQ(Plain(*Parse("GET /healthz HTTP/1.1\r\n\r\n")).status, http::status::bad_request);
  // Two Host fields are 400 too, whatever the version.
  request.insert(http::field::host, "a");
  request.insert(http::field::host, "b");
  EXPECT_EQ(Plain(request).status, http::status::bad_request);
  // HTTP/1.0 may omit it.
  request.erase(http::field::host);
  request.version(10);
  EXPECT_NE(Plan(request).method, nullptr);
}

// No request message of the example service has a bytes field, so bytes query
// values are checked here, on tests/proto/shapes.proto's `by` and `rep_by`, as
// a DynamicMessage. Like grpc-gateway (runtime.Bytes: base64.StdEncoding, then
// base64.URLEncoding), both alphabets are accepted.
TEST(BytesQueryTest, BytesAreBase64InEitherAlphabetAndBadBase64NamesTheField) {
  const google::protobuf::Descriptor* type = gravity::test::shapes::Shapes::descriptor();
  google::protobuf::DynamicMessageFactory factory(
      google::protobuf::DescriptorPool::generated_pool());
  const google::protobuf::FieldDescriptor* by = type->FindFieldByName("by");
  ASSERT_NE(by, nullptr);
  ASSERT_EQ(by->type(), google::protobuf::FieldDescriptor::TYPE_BYTES);
  auto decoded = [&](const std::string& value) -> std::optional<std::string> {
    std::unique_ptr<google::protobuf::Message> message(factory.GetPrototype(type)->New());
    if (!ApplyQuery({{"by", value}}, message.get()).ok()) return std::nullopt;
    return message->GetReflection()->GetString(*message, by);
  };
  const std::string bytes("\xfb\xff\xbf\x00", 4);
  EXPECT_EQ(decoded("+/+/AA=="), bytes);  // standard, padded
  EXPECT_EQ(decoded("-_-_AA=="), bytes);  // URL-safe, padded
  // Unpadded forms are accepted too (grpc-gateway's padded decoders refuse them).
  EXPECT_EQ(decoded("+/+/AA"), bytes);
  EXPECT_EQ(decoded("-_-_AA"), bytes);
  EXPECT_EQ(decoded("aGk="), "hi");
  EXPECT_EQ(decoded("aGk"), "hi");
  EXPECT_EQ(decoded(""), "");

  // Through the query string: '+' must be sent as %2B ('+' is a space).
  std::unique_ptr<google::protobuf::Message> message(factory.GetPrototype(type)->New());
  auto params = ParseQuery("by=%2B%2F%2B%2FAA%3D%3D&rep_by=aGk%3D&repBy=-_-_AA");
  ASSERT_TRUE(params.ok()) << params.status();
  ASSERT_TRUE(ApplyQuery(*params, message.get()).ok());
  EXPECT_EQ(message->GetReflection()->GetString(*message, by), bytes);
  const google::protobuf::FieldDescriptor* rep_by = type->FindFieldByName("rep_by");
  ASSERT_EQ(message->GetReflection()->FieldSize(*message, rep_by), 2);
  EXPECT_EQ(message->GetReflection()->GetRepeatedString(*message, rep_by, 0), "hi");
  EXPECT_EQ(message->GetReflection()->GetRepeatedString(*message, rep_by, 1), bytes);

  // Not base64 in either alphabet: INVALID_ARGUMENT (the bridge's 400) naming the field.
  // "aG k=" and "a Gk=" (an unencoded '+' the query turned into a space):
  // Abseil's decoders would skip the space and give "hi".
  for (const std::string bad : {"!!!!", "aGk=x", "a", "+/-_AA==", "aG k=", "a Gk=", " aGk="}) {
    SCOPED_TRACE(bad);
    std::unique_ptr<google::protobuf::Message> refused(factory.GetPrototype(type)->New());
    absl::Status status = ApplyQuery({{"by", bad}}, refused.get());
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_TRUE(absl::StrContains(status.message(), "field \"by\"")) << status;
    EXPECT_TRUE(absl::StrContains(status.message(), "base64")) << status;
  }
}

// Browsers send text/plain, form and multipart bodies cross-site with no
// preflight: a POST body not declared JSON is never parsed (415).
TEST_F(RouterTest, APostBodyNotDeclaredJsonIs415) {
  for (const char* type : {"", "text/plain", "application/x-www-form-urlencoded",
                           "multipart/form-data; boundary=x", "application/jsonx"}) {
    for (const char* target : {"/streaming.v1.Streaming/Echo", "/streaming.v1.Streaming/Ping"}) {
      SCOPED_TRACE(absl::StrCat(target, " with \"", type, "\""));
      HttpRequest request = Request(http::verb::post, target, {}, R"({"text":"x"})");
      if (*type == '\0') {
        request.erase(http::field::content_type);
      } else {
        request.set(http::field::content_type, type);
      }
      PlainResponse response = Plain(request);
      EXPECT_EQ(response.status, http::status::unsupported_media_type);
      EXPECT_TRUE(absl::StartsWith(response.body, R"({"code":3,"message":"a POST body must be )"))
          << response.body;
      EXPECT_EQ(response.headers, (Headers{{"Accept-Post", "application/json"}}));
    }
  }
  // Parameters and case do not matter.
  EXPECT_TRUE(std::holds_alternative<UnaryPlan>(
      Route(Request(http::verb::post, "/streaming.v1.Streaming/Echo",
                    {{"Content-Type", "Application/JSON; charset=utf-8"}}, "{}"),
            state_)));
}

// A unary method may change state: a browser's cross-site call is refused
// unless its origin is the bridge's own or on the CORS allowlist.
TEST_F(RouterTest, AUnaryCallFromAnotherOriginIs403UnlessAllowed) {
  auto call = [&](const std::string& origin) {
    return Route(
        Request(http::verb::post, "/streaming.v1.Streaming/Echo", {{"Origin", origin}}, "{}"),
        state_);
  };
  for (const char* origin :
       {"https://evil.example", "null", "http://bridge.test.evil", "ftp://bridge.test"}) {
    SCOPED_TRACE(origin);
    Routed routed = call(origin);
    ASSERT_TRUE(std::holds_alternative<PlainResponse>(routed));
    EXPECT_EQ(std::get<PlainResponse>(routed).status, http::status::forbidden);
    EXPECT_TRUE(absl::StartsWith(std::get<PlainResponse>(routed).body, R"({"code":7,)"));
  }
  // The bridge's own origin (its Host), with either scheme.
  EXPECT_TRUE(std::holds_alternative<UnaryPlan>(call("http://bridge.test")));
  EXPECT_TRUE(std::holds_alternative<UnaryPlan>(call("https://bridge.test")));
  // No Origin: not a browser's cross-site request.
  EXPECT_TRUE(std::holds_alternative<UnaryPlan>(
      Route(Request(http::verb::post, "/streaming.v1.Streaming/Echo", {}, "{}"), state_)));
  // On the allowlist.
  state_.options.cors_origins = {"https://evil.example"};
  EXPECT_TRUE(std::holds_alternative<UnaryPlan>(call("https://evil.example")));
  state_.options.cors_origins = {"*"};
  EXPECT_TRUE(std::holds_alternative<UnaryPlan>(call("null")));
  // Streams are reads: any origin may open one (CORS decides what it sees).
  state_.options.cors_origins = {};
  EXPECT_TRUE(std::holds_alternative<StreamPlan>(
      Route(Request(http::verb::get, "/streaming.v1.Streaming/Ping",
                    {{"Origin", "https://evil.example"}}),
            state_)));
}

// Protobuf's JSON parser lets the last of two values win; a proxy that reads
// the first would see another request than the backend. Refused instead, as
// the query refuses repeats.
TEST_F(RouterTest, AFieldGivenTwiceInTheBodyOrInBodyAndQueryIs400) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"text":"a","text":"b"})", R"(field \"text\" given more than once)"},
      {R"({"failCode":1,"fail_code":2})",
       R"(field \"fail_code\" given more than once (as \"failCode\" and \"fail_code\"))"},
      {R"({"text":"a","te\u0078t":"b"})", R"(field \"text\" given more than once)"},
  };
  for (const auto& [body, message] : cases) {
    SCOPED_TRACE(body);
    PlainResponse refused =
        Plain(Request(http::verb::post, "/streaming.v1.Streaming/Echo", {}, body));
    EXPECT_EQ(refused.status, http::status::bad_request);
    EXPECT_TRUE(absl::StrContains(refused.body, message)) << refused.body;
  }
  PlainResponse both = Plain(
      Request(http::verb::post, "/streaming.v1.Streaming/Ping?to=bob", {}, R"({"to":"ann"})"));
  EXPECT_EQ(both.status, http::status::bad_request);
  EXPECT_TRUE(absl::StrContains(both.body, R"(field \"to\" given in both the body and the query)"))
      << both.body;
  // Different fields from each, and the bridge's own parameters, are fine.
  StreamPlan plan =
      Plan(Request(http::verb::post, "/streaming.v1.Streaming/Ping?count=2&lastEventId=1", {},
                   R"({"to":"ann","intervalMs":5})"));
  streaming::v1::PingRequest request;
  ASSERT_TRUE(request.ParseFromString(plan.request_bytes));
  EXPECT_EQ(request.to(), "ann");
  EXPECT_EQ(request.count(), 2);
}

}  // namespace
}  // namespace gravity::bridge::internal
