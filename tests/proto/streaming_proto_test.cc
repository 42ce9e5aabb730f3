// Proves that code generation and linking work: the generated messages map to
// proto3 JSON and back, and the descriptor set built for the bridge holds the
// example service with its options.
#include <fstream>
#include <sstream>
#include <string>

#include "google/api/annotations.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gravity/v1/options.pb.h"
#include "gtest/gtest.h"
#include "streaming/v1/streaming.grpc.pb.h"
#include "streaming/v1/streaming.pb.h"

namespace {

// Set from the command line: the build passes the descriptor set's path.
std::string g_descriptor_set_path;

TEST(StreamingProtoTest, PingReplyRoundTripsThroughJson) {
  streaming::v1::PingReply reply;
  reply.set_message("Sending ping to bob");
  reply.set_seq(41);

  std::string json;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(reply, &json).ok());
  // proto3 JSON writes int64 as a string.
  EXPECT_EQ(json, R"({"message":"Sending ping to bob","seq":"41"})");

  streaming::v1::PingReply parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok());
  EXPECT_EQ(parsed.message(), "Sending ping to bob");
  EXPECT_EQ(parsed.seq(), 41);
}

TEST(StreamingProtoTest, JsonParserRejectsAWrongType) {
  streaming::v1::PingRequest request;
  EXPECT_FALSE(google::protobuf::util::JsonStringToMessage(R"({"count":"many"})", &request).ok());
}

TEST(StreamingProtoTest, SeqCarriesTheEventIdOption) {
  const google::protobuf::FieldDescriptor* seq =
      streaming::v1::PingReply::descriptor()->FindFieldByName("seq");
  ASSERT_NE(seq, nullptr);
  EXPECT_TRUE(seq->options().GetExtension(gravity::v1::event_id));
  const google::protobuf::FieldDescriptor* message =
      streaming::v1::PingReply::descriptor()->FindFieldByName("message");
  EXPECT_FALSE(message->options().GetExtension(gravity::v1::event_id));
}

TEST(StreamingProtoTest, PingHasItsHttpRoute) {
  const google::protobuf::MethodDescriptor* ping = streaming::v1::PingReply::descriptor()
                                                       ->file()
                                                       ->FindServiceByName("Streaming")
                                                       ->FindMethodByName("Ping");
  ASSERT_NE(ping, nullptr);
  EXPECT_TRUE(ping->server_streaming());
  EXPECT_EQ(ping->options().GetExtension(google::api::http).get(), "/api/streaming/ping");
}

TEST(StreamingProtoTest, DescriptorSetHoldsTheServiceAndItsImports) {
  ASSERT_FALSE(g_descriptor_set_path.empty()) << "pass the descriptor set's path";
  std::ifstream in(g_descriptor_set_path, std::ios::binary);
  ASSERT_TRUE(in) << g_descriptor_set_path;
  google::protobuf::FileDescriptorSet set;
  ASSERT_TRUE(set.ParseFromIstream(&in));

  google::protobuf::DescriptorPool pool;
  for (const auto& file : set.file()) ASSERT_NE(pool.BuildFile(file), nullptr) << file.name();
  const google::protobuf::ServiceDescriptor* service =
      pool.FindServiceByName("streaming.v1.Streaming");
  ASSERT_NE(service, nullptr);
  EXPECT_NE(service->FindMethodByName("Ping"), nullptr);
  EXPECT_NE(service->FindMethodByName("StreamUsers"), nullptr);
  // --include_imports: the options the bridge reads are in the set.
  EXPECT_NE(pool.FindFileByName("gravity/v1/options.proto"), nullptr);
  EXPECT_NE(pool.FindFileByName("google/api/annotations.proto"), nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (argc > 1) g_descriptor_set_path = argv[1];
  return RUN_ALL_TESTS();
}
