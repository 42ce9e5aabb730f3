// The bridge's pure parts: request mapping, the SSE/NDJSON encoders, status
// mapping (bridge/internal/).
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "bridge/internal/direct_writer.h"
#include "bridge/internal/gzip_stream.h"
#include "bridge/internal/json_text.h"
#include "bridge/internal/request_mapping.h"
#include "bridge/internal/status_mapping.h"
#include "bridge/internal/stream_format.h"
#include "bridge/internal/trace_context.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/wrappers.pb.h"
#include "gtest/gtest.h"
#include "streaming/v1/streaming.pb.h"
#include "tests/bridge/gunzip.h"

namespace gravity::bridge::internal {
namespace {

using google::protobuf::FieldDescriptorProto;
using google::protobuf::FileDescriptorProto;

absl::Status Apply(const std::string& query, google::protobuf::Message* message) {
  auto params = ParseQuery(query);
  if (!params.ok()) return params.status();
  return ApplyQuery(*params, message);
}

// Fails (with the query in the message) unless `query` is INVALID_ARGUMENT
// naming `field`.
void ExpectRejected(const std::string& query, google::protobuf::Message* message,
                    const std::string& field) {
  absl::Status status = Apply(query, message);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << query;
  EXPECT_TRUE(absl::StrContains(status.message(), "\"" + field + "\"")) << query << ": " << status;
}

TEST(RequestMappingTest, ScalarsByProtoOrJsonName) {
  streaming::v1::PingRequest request;
  ASSERT_TRUE(Apply("to=bob&count=3&interval_ms=10&failCode=9", &request).ok());
  EXPECT_EQ(request.to(), "bob");
  EXPECT_EQ(request.count(), 3);
  EXPECT_EQ(request.interval_ms(), 10);
  EXPECT_EQ(request.fail_code(), 9);
}

TEST(RequestMappingTest, NestedFieldsUseDots) {
  FileDescriptorProto file;
  ASSERT_TRUE(Apply("options.java_package=com.x&options.javaMultipleFiles=true", &file).ok());
  EXPECT_EQ(file.options().java_package(), "com.x");
  EXPECT_TRUE(file.options().java_multiple_files());
}

TEST(RequestMappingTest, RepeatedFieldsRepeat) {
  FileDescriptorProto file;
  ASSERT_TRUE(Apply("dependency=a.proto&dependency=b.proto&public_dependency=1", &file).ok());
  ASSERT_EQ(file.dependency_size(), 2);
  EXPECT_EQ(file.dependency(0), "a.proto");
  EXPECT_EQ(file.dependency(1), "b.proto");
  EXPECT_EQ(file.public_dependency(0), 1);
}

TEST(RequestMappingTest, EnumsByNameOrNumber) {
  FieldDescriptorProto field;
  ASSERT_TRUE(Apply("type=TYPE_STRING", &field).ok());
  EXPECT_EQ(field.type(), FieldDescriptorProto::TYPE_STRING);
  ASSERT_TRUE(Apply("type=5", &field).ok());
  EXPECT_EQ(field.type(), FieldDescriptorProto::TYPE_INT32);
  absl::Status bad = Apply("type=TYPE_NOPE", &field);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(bad.message(), "type"));
}

TEST(RequestMappingTest, BadValuesNameTheField) {
  streaming::v1::PingRequest request;
  absl::Status status = Apply("count=3x", &request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), "\"count\"")) << status.message();
  EXPECT_FALSE(Apply("count=99999999999", &request).ok());  // out of int32 range
  EXPECT_FALSE(Apply("nope=1", &request).ok());
  FileDescriptorProto file;
  EXPECT_FALSE(Apply("options.java_multiple_files=maybe", &file).ok());
  EXPECT_FALSE(Apply("options=1", &file).ok());  // a message needs a subfield
}

TEST(RequestMappingTest, PercentEncodingAndPlusAreDecoded) {
  streaming::v1::PingRequest request;
  ASSERT_TRUE(Apply("to=b%C3%B6b+and%20%26%3D%20co", &request).ok());
  EXPECT_EQ(request.to(),
            "b\xC3\xB6"
            "b and &= co");
  EXPECT_FALSE(Apply("to=%zz", &request).ok());
}

TEST(RequestMappingTest, StringsMustBeUtf8) {
  streaming::v1::PingRequest request;
  absl::Status status = Apply("to=%ff%fe", &request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), "\"to\"")) << status.message();
  EXPECT_TRUE(Apply("to=%E2%82%AC", &request).ok());  // U+20AC
  EXPECT_EQ(request.to(), "\xE2\x82\xAC");
}

TEST(RequestMappingTest, SurrogatesOverlongFormsAndCodePointsPastU10FFFFAreNotUtf8) {
  streaming::v1::PingRequest request;
  for (const char* bad : {
           "%ED%A0%80",        // U+D800, a UTF-16 surrogate
           "%ED%BF%BF",        // U+DFFF
           "a%ED%B0%80b",      // U+DC00 between ASCII
           "%C0%80",           // overlong U+0000
           "%C1%BF",           // overlong U+007F
           "%E0%80%80",        // overlong U+0000 in three bytes
           "%E0%9F%BF",        // overlong U+07FF
           "%F0%80%80%80",     // overlong U+0000 in four bytes
           "%F0%8F%BF%BF",     // overlong U+FFFF
           "%F4%90%80%80",     // U+110000
           "%F7%BF%BF%BF",     // U+1FFFFF
           "%F8%88%80%80%80",  // five-byte form
           "%E2%82",           // truncated
           "%80",              // lone continuation byte
       }) {
    ExpectRejected(std::string("to=") + bad, &request, "to");
  }
  for (const auto& [good, decoded] : std::vector<std::pair<std::string, std::string>>{
           {"%C2%80", "\xC2\x80"},                // U+0080
           {"%E0%A0%80", "\xE0\xA0\x80"},         // U+0800
           {"%ED%9F%BF", "\xED\x9F\xBF"},         // U+D7FF, just below the surrogates
           {"%EE%80%80", "\xEE\x80\x80"},         // U+E000, just above them
           {"%EF%BF%BF", "\xEF\xBF\xBF"},         // U+FFFF
           {"%F0%90%80%80", "\xF0\x90\x80\x80"},  // U+10000
           {"%F4%8F%BF%BF", "\xF4\x8F\xBF\xBF"},  // U+10FFFF, the last code point
       }) {
    ASSERT_TRUE(Apply("to=" + good, &request).ok()) << good;
    EXPECT_EQ(request.to(), decoded);
  }
}

TEST(RequestMappingTest, IntegersFollowTheJsonNumberGrammarStrictly) {
  streaming::v1::PingRequest request;
  // %EF%BC%91 is U+FF11, a fullwidth digit one.
  for (const char* bad : {"%201",       "1%20",        "%091",
                          "1%0A",       "%2B1",        "+1",
                          "1.0",        "1e3",         "1E3",
                          "0x10",       "01",          "-01",
                          "",           "-",           "--1",
                          "1_000",      "1,000",       "%EF%BC%91",
                          "2147483648", "-2147483649", "99999999999999999999999"}) {
    ExpectRejected(std::string("count=") + bad, &request, "count");
  }
  for (const auto& [good, value] :
       std::vector<std::pair<std::string, int32_t>>{{"0", 0},
                                                    {"-0", 0},
                                                    {"7", 7},
                                                    {"-7", -7},
                                                    {"2147483647", 2147483647},
                                                    {"-2147483648", -2147483647 - 1}}) {
    ASSERT_TRUE(Apply("count=" + good, &request).ok()) << good;
    EXPECT_EQ(request.count(), value);
  }

  google::protobuf::UInt32Value u32;
  for (const char* bad : {"-1", "-0", "%2B1", "4294967296", "%204"}) {
    ExpectRejected(std::string("value=") + bad, &u32, "value");
  }
  ASSERT_TRUE(Apply("value=4294967295", &u32).ok());
  EXPECT_EQ(u32.value(), 4294967295u);

  google::protobuf::Int64Value i64;
  for (const char* bad : {"9223372036854775808", "-9223372036854775809", "1e18", "%201"}) {
    ExpectRejected(std::string("value=") + bad, &i64, "value");
  }
  ASSERT_TRUE(Apply("value=-9223372036854775808", &i64).ok());
  EXPECT_EQ(i64.value(), INT64_MIN);

  google::protobuf::UInt64Value u64;
  for (const char* bad : {"18446744073709551616", "-1", "1.5"}) {
    ExpectRejected(std::string("value=") + bad, &u64, "value");
  }
  ASSERT_TRUE(Apply("value=18446744073709551615", &u64).ok());
  EXPECT_EQ(u64.value(), UINT64_MAX);

  // Enums by number use the same grammar.
  FieldDescriptorProto field;
  for (const char* bad : {"%205", "5%20", "%2B5", "05", "5.0"}) {
    ExpectRejected(std::string("type=") + bad, &field, "type");
  }
}

TEST(RequestMappingTest, FloatsFollowTheJsonNumberGrammarStrictly) {
  google::protobuf::DoubleValue d;
  for (const char* bad : {"%201.5", "1.5%20", "%2B1.5", "1.", ".5", "01.5", "1e", "1e%2B", "0x1p3",
                          "inf", "-inf", "nan", "NAN", "infinity", "1e999", "-1e999", "1,5", ""}) {
    ExpectRejected(std::string("value=") + bad, &d, "value");
  }
  for (const auto& [good, value] :
       std::vector<std::pair<std::string, double>>{{"0", 0},
                                                   {"-0.25", -0.25},
                                                   {"1.5", 1.5},
                                                   {"1e3", 1000},
                                                   {"1E-3", 0.001},
                                                   {"2.5e%2B2", 250},
                                                   {"Infinity", HUGE_VAL},
                                                   {"-Infinity", -HUGE_VAL}}) {
    ASSERT_TRUE(Apply("value=" + good, &d).ok()) << good;
    EXPECT_EQ(d.value(), value) << good;
  }
  ASSERT_TRUE(Apply("value=NaN", &d).ok());
  EXPECT_TRUE(std::isnan(d.value()));

  google::protobuf::FloatValue f;
  for (const char* bad : {"1e39", "-1e39", "%201"}) {
    ExpectRejected(std::string("value=") + bad, &f, "value");
  }
  ASSERT_TRUE(Apply("value=3e38", &f).ok());
  EXPECT_EQ(f.value(), 3e38f);
}

TEST(RequestMappingTest, ASingularFieldGivenTwiceIsAnError) {
  streaming::v1::PingRequest request;
  absl::Status status = Apply("to=a&to=b", &request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), "\"to\"")) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "given more than once")) << status;
  ExpectRejected("to=a&to=a", &request, "to");
  ExpectRejected("count=1&to=x&count=2", &request, "count");
  ExpectRejected("interval_ms=1&intervalMs=2", &request, "intervalMs");  // one field, two names
  FileDescriptorProto file;
  ExpectRejected("options.java_package=a&options.javaPackage=b", &file, "options.javaPackage");
  // The bridge's own parameters too: which token would count?
  ExpectRejected("access_token=a&access_token=b", &request, "access_token");
  ExpectRejected("lastEventId=1&lastEventId=2", &request, "lastEventId");
  // Two members of one oneof: the second would silently clear the first.
  google::protobuf::Value value;
  ExpectRejected("number_value=1&string_value=x", &value, "string_value");
  // Repeated fields still take repetition; different fields of one nested
  // message are fine.
  ASSERT_TRUE(
      Apply("dependency=a&dependency=b&options.java_package=p&options.go_package=g", &file).ok());
  EXPECT_EQ(file.dependency_size(), 2);
}

TEST(RequestMappingTest, AOneofTakesOneFieldEvenThroughNestedPaths) {
  // message M { oneof choice { Inner a = 1; int32 b = 2; } }
  // message Inner { int32 x = 1; int32 y = 2; }
  FileDescriptorProto file;
  file.set_name("oneof_test.proto");
  file.set_syntax("proto3");
  auto* inner = file.add_message_type();
  inner->set_name("Inner");
  for (int i = 0; i < 2; ++i) {
    auto* field = inner->add_field();
    field->set_name(i == 0 ? "x" : "y");
    field->set_number(i + 1);
    field->set_type(FieldDescriptorProto::TYPE_INT32);
    field->set_label(FieldDescriptorProto::LABEL_OPTIONAL);
  }
  auto* outer = file.add_message_type();
  outer->set_name("M");
  outer->add_oneof_decl()->set_name("choice");
  auto* a = outer->add_field();
  a->set_name("a");
  a->set_number(1);
  a->set_type(FieldDescriptorProto::TYPE_MESSAGE);
  a->set_type_name(".Inner");
  a->set_label(FieldDescriptorProto::LABEL_OPTIONAL);
  a->set_oneof_index(0);
  auto* b = outer->add_field();
  b->set_name("b");
  b->set_number(2);
  b->set_type(FieldDescriptorProto::TYPE_INT32);
  b->set_label(FieldDescriptorProto::LABEL_OPTIONAL);
  b->set_oneof_index(0);
  google::protobuf::DescriptorPool pool;
  const google::protobuf::FileDescriptor* built = pool.BuildFile(file);
  ASSERT_NE(built, nullptr);
  google::protobuf::DynamicMessageFactory factory(&pool);
  const google::protobuf::Message* prototype =
      factory.GetPrototype(built->FindMessageTypeByName("M"));

  std::unique_ptr<google::protobuf::Message> m(prototype->New());
  EXPECT_TRUE(Apply("a.x=1&a.y=2", m.get()).ok());
  m.reset(prototype->New());
  ExpectRejected("a.x=1&b=2", m.get(), "b");
  m.reset(prototype->New());
  ExpectRejected("b=2&a.x=1", m.get(), "a.x");
}

TEST(StatusMappingTest, IsValidUtf8IsStrict) {
  EXPECT_TRUE(IsValidUtf8("a\xC3\xB6\xE2\x82\xAC\xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xE0\x80\xAF"));      // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // U+110000
}

TEST(RequestMappingTest, TheBridgesOwnParametersAreSkipped) {
  streaming::v1::PingRequest request;
  ASSERT_TRUE(Apply("access_token=secret&lastEventId=4&to=x", &request).ok());
  EXPECT_EQ(request.to(), "x");
}

TEST(SseTest, MessageWithId) {
  EXPECT_EQ(SseMessage("41", R"({"id":"0.42"})"), "id: 41\ndata: {\"id\":\"0.42\"}\n\n");
  EXPECT_EQ(SseMessage("", "{}"), "data: {}\n\n");
}

TEST(SseTest, ANewlineInsideAStringFieldStaysOnOneDataLine) {
  streaming::v1::PingReply reply;
  reply.set_message("line one\nline two\r\n");
  std::string json;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(reply, &json).ok());
  const std::string event = SseMessage("1", json);
  EXPECT_EQ(event, "id: 1\ndata: {\"message\":\"line one\\nline two\\r\\n\"}\n\n");
}

TEST(SseTest, RawLineBreaksInDataBecomeSeveralDataLines) {
  EXPECT_EQ(SseMessage("", "a\nb"), "data: a\ndata: b\n\n");
  EXPECT_EQ(SseMessage("1\n2", "x"), "data: x\n\n");  // an id that would break framing is dropped
}

TEST(SseTest, EndEventCarriesTheStatus) {
  EXPECT_EQ(SseEnd(StatusJson(grpc::StatusCode::OK, "")),
            "event: end\ndata: {\"code\":0,\"message\":\"\",\"details\":[]}\n\n");
  EXPECT_EQ(SseEnd(StatusJson(grpc::StatusCode::NOT_FOUND, "gone \"x\"")),
            "event: end\ndata: {\"code\":5,\"message\":\"gone \\\"x\\\"\",\"details\":[]}\n\n");
}

TEST(SseTest, KeepAliveAndRetry) {
  EXPECT_EQ(SseKeepAlive(), ": keep-alive\n\n");
  EXPECT_EQ(SseRetry(absl::Seconds(2)), "retry: 2000\n\n");
}

TEST(SseTest, NdjsonLines) {
  EXPECT_EQ(NdjsonResult("{\"a\":1}"), "{\"result\":{\"a\":1}}\n");
  EXPECT_EQ(NdjsonError(StatusJson(grpc::StatusCode::INTERNAL, "x")),
            "{\"error\":{\"code\":13,\"message\":\"x\",\"details\":[]}}\n");
}

TEST(StatusMappingTest, GrpcCodesMapToHttpStatuses) {
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::OK), 200);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::INVALID_ARGUMENT), 400);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::UNAUTHENTICATED), 401);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::PERMISSION_DENIED), 403);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::NOT_FOUND), 404);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::RESOURCE_EXHAUSTED), 429);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::UNIMPLEMENTED), 501);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::UNAVAILABLE), 503);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::DEADLINE_EXCEEDED), 504);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::INTERNAL), 500);
  EXPECT_EQ(HttpStatusFor(grpc::StatusCode::FAILED_PRECONDITION), 500);
}

TEST(StatusMappingTest, StatusJsonEscapesAndReplacesBadUtf8) {
  EXPECT_EQ(StatusJson(grpc::StatusCode::INTERNAL, "a\x01\xff"),
            "{\"code\":13,\"message\":\"a\\u0001\\ufffd\",\"details\":[]}");
  // A surrogate's bytes never reach the JSON: it would not be UTF-8.
  EXPECT_EQ(StatusJson(grpc::StatusCode::INTERNAL, "\xED\xA0\x80"),
            "{\"code\":13,\"message\":\"\\ufffd\\ufffd\\ufffd\",\"details\":[]}");
}

// ---- DirectWriter's bookkeeping --------------------------------------------

// A connected socket pair; the writer sends on [0].
struct SocketPair {
  SocketPair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0); }
  ~SocketPair() {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  int fds[2] = {-1, -1};
};

// A send that put no byte out (the peer is gone) is no sign of life: it must
// not stand in for a keep-alive, and its events are not counted as sent.
TEST(DirectWriterTest, ASendThatFailsIsNotASend) {
  SocketPair pair;
  ::close(pair.fds[1]);
  pair.fds[1] = -1;
  DirectWriter writer;
  writer.Enable(pair.fds[0], /*chunked=*/true);
  EXPECT_EQ(writer.TrySend("data: 1\n\n", 1), DirectWriter::Sent::kNo);
  EXPECT_FALSE(writer.SentSinceLastAsked());
  DirectWriter::Leftover leftover = writer.TakeLeftover();
  EXPECT_TRUE(leftover.bytes.empty());
  EXPECT_EQ(leftover.events, 0);
  // It disabled itself: the session's write finds out what happened.
  EXPECT_EQ(writer.TrySend("data: 2\n\n", 1), DirectWriter::Sent::kNo);
}

// A send the socket takes only in part leaves the rest, framed, with the
// events in it, for the session to write (and count) first.
TEST(DirectWriterTest, APartialSendKeepsItsRestAndItsEvents) {
  SocketPair pair;
  const int small = 4096;
  ::setsockopt(pair.fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  DirectWriter writer;
  writer.Enable(pair.fds[0], /*chunked=*/true);
  const std::string body(1 << 20, 'x');
  EXPECT_EQ(writer.TrySend(body, 3), DirectWriter::Sent::kPartly);
  EXPECT_TRUE(writer.SentSinceLastAsked());
  DirectWriter::Leftover leftover = writer.TakeLeftover();
  EXPECT_EQ(leftover.events, 3);
  EXPECT_FALSE(leftover.bytes.empty());
  EXPECT_TRUE(absl::EndsWith(leftover.bytes, "x\r\n"));  // the chunk's end
  EXPECT_LT(leftover.bytes.size(), body.size() + 10);
  EXPECT_EQ(writer.TakeLeftover().events, 0);  // taken once
}

TEST(DirectWriterTest, AWholeSendIsASend) {
  SocketPair pair;
  DirectWriter writer;
  writer.Enable(pair.fds[0], /*chunked=*/true);
  EXPECT_EQ(writer.TrySend("data: 1\n\n", 1), DirectWriter::Sent::kAll);
  EXPECT_TRUE(writer.SentSinceLastAsked());
  EXPECT_FALSE(writer.SentSinceLastAsked());
  char received[64] = {};
  EXPECT_EQ(::recv(pair.fds[1], received, sizeof received, 0), 14);
  EXPECT_EQ(std::string(received, 14), "9\r\ndata: 1\n\n\r\n");
}

// W3C Trace Context: what a valid traceparent is, and fresh ones.
TEST(TraceContextTest, ValidTraceparentsAreRecognisedAndBadOnesRefused) {
  EXPECT_TRUE(IsValidTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  EXPECT_TRUE(IsValidTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
  // A later version may carry more after the flags.
  EXPECT_TRUE(IsValidTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"));
  for (const char* bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // 00 has nothing after
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    // zero parent id
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    // upper case
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // version ff
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  // short trace id
       }) {
    EXPECT_FALSE(IsValidTraceparent(bad)) << bad;
  }
}

TEST(TraceContextTest, FreshTraceparentsAreValidAndDistinct) {
  const std::string a = NewTraceparent();
  const std::string b = NewTraceparent();
  EXPECT_TRUE(IsValidTraceparent(a)) << a;
  EXPECT_TRUE(IsValidTraceparent(b)) << b;
  EXPECT_NE(a.substr(3, 32), b.substr(3, 32));
  EXPECT_EQ(a.substr(52), "-00");  // the bridge samples nothing
  EXPECT_EQ(TraceIdOf({{"authorization", "x"}, {"traceparent", a}}), a.substr(3, 32));
  EXPECT_EQ(TraceIdOf({{"authorization", "x"}}), "");
}

// Issue 20: each piece is decodable as soon as it is out (Z_SYNC_FLUSH): no
// event waits in the compressor.
TEST(GzipStreamTest, EveryPieceDecodesAsSoonAsItIsAppended) {
  GzipStream gzip;
  std::string wire;
  std::string plain;
  for (int i = 1; i <= 20; ++i) {
    const std::string event =
        absl::StrCat("id: ", i, "\ndata: {\"message\":\"hello\",\"seq\":\"", i, "\"}\n\n");
    gzip.Append(event, &wire);
    plain += event;
    EXPECT_EQ(testing::Gunzipped(wire), plain) << i;
  }
  gzip.Finish(&wire);
  EXPECT_EQ(testing::Gunzipped(wire), plain);
  // Repeated keys compress: well under half the bytes.
  EXPECT_LT(wire.size(), plain.size() / 2) << wire.size() << " of " << plain.size();
  // What every compressed stream holds for its life (docs/operations.md).
  EXPECT_LT(gzip.state_bytes(), 16u * 1024) << gzip.state_bytes();
  std::cout << "gzip: " << wire.size() << " of " << plain.size() << " bytes; zlib state "
            << gzip.state_bytes() << " bytes per stream\n";
}

// --compression_window_bits: a larger window remembers more events, so more
// of a new one is found in it, for more state per stream.
TEST(GzipStreamTest, TheWindowTradesStateForBytes) {
  std::string plain;
  std::string small_wire;
  std::string large_wire;
  GzipStream small(9);
  GzipStream large(11);
  const char* words[] = {"lunch", "meeting", "tomorrow", "deploy", "review", "coffee", "later"};
  for (int i = 1; i <= 200; ++i) {
    std::string text = absl::StrCat("user", i % 7, ":");
    for (int w = 0; w < 12; ++w) absl::StrAppend(&text, " ", words[(i * 3 + w * w) % 7]);
    const std::string event =
        absl::StrCat("id: 1733140000", 100 + i, "-0\ndata: {\"room\":\"lobby\",", "\"text\":\"",
                     text, "\"}\n\n");
    plain += event;
    small.Append(event, &small_wire);
    large.Append(event, &large_wire);
  }
  EXPECT_EQ(testing::Gunzipped(small_wire), plain);
  EXPECT_EQ(testing::Gunzipped(large_wire), plain);
  EXPECT_LT(large_wire.size(), small_wire.size());
  EXPECT_LT(small.state_bytes(), 9u * 1024);
  EXPECT_GT(large.state_bytes(), small.state_bytes());
  EXPECT_LT(large.state_bytes(), 16u * 1024);
}

TEST(GzipStreamTest, AcceptEncodingIsRead) {
  EXPECT_TRUE(AcceptsGzip("gzip"));
  EXPECT_TRUE(AcceptsGzip("gzip, deflate, br, zstd"));
  EXPECT_TRUE(AcceptsGzip("br;q=1.0, GZIP;q=0.5"));
  EXPECT_TRUE(AcceptsGzip("*"));
  EXPECT_FALSE(AcceptsGzip(""));
  EXPECT_FALSE(AcceptsGzip("identity"));
  EXPECT_FALSE(AcceptsGzip("br, deflate"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=bad"));
  EXPECT_EQ(testing::Gunzipped(Gzip("a plain answer")), "a plain answer");
}

}  // namespace

}  // namespace gravity::bridge::internal
