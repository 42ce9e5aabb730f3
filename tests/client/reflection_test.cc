// client/reflection.h: FetchServiceDescriptors against a gravity server.
#include "client/reflection.h"

#include <set>
#include <string>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor_database.h"
#include "gravity/internal/reflection.pb.h"
#include "gtest/gtest.h"
#include "tests/examples/example_server.h"

namespace gravity::client {
namespace {

class ReflectionTest : public testing::ExampleServerTest {};

TEST_F(ReflectionTest, ReturnsTheStreamingServiceAndItsImports) {
  auto files = FetchServiceDescriptors(channel_, absl::Seconds(10));
  ASSERT_TRUE(files.ok()) << files.status();
  google::protobuf::SimpleDescriptorDatabase database;
  for (const auto& file : files->file()) ASSERT_TRUE(database.Add(file)) << file.name();
  google::protobuf::DescriptorPool pool(&database);
  const auto* ping = pool.FindMethodByName("streaming.v1.Streaming.Ping");
  ASSERT_NE(ping, nullptr);
  EXPECT_TRUE(ping->server_streaming());
  EXPECT_EQ(ping->output_type()->full_name(), "streaming.v1.PingReply");
  EXPECT_NE(pool.FindFileByName("gravity/v1/options.proto"), nullptr);
  EXPECT_NE(pool.FindFileByName("google/api/annotations.proto"), nullptr);
}

TEST_F(ReflectionTest, LeavesOutReflectionAndHealth) {
  auto files = FetchServiceDescriptors(channel_, absl::Seconds(10));
  ASSERT_TRUE(files.ok()) << files.status();
  std::set<std::string> services;
  for (const auto& file : files->file()) {
    for (const auto& service : file.service()) {
      services.insert(file.package() + "." + service.name());
    }
  }
  EXPECT_EQ(services, (std::set<std::string>{"streaming.v1.Streaming"}));
}

TEST_F(ReflectionTest, ImportsComeBeforeTheFilesThatImportThem) {
  auto files = FetchServiceDescriptors(channel_, absl::Seconds(10));
  ASSERT_TRUE(files.ok()) << files.status();
  google::protobuf::DescriptorPool pool;  // no database: BuildFile needs the order
  std::set<std::string> names;
  for (const auto& file : files->file()) {
    EXPECT_TRUE(names.insert(file.name()).second) << file.name() << " twice";
    EXPECT_NE(pool.BuildFile(file), nullptr) << file.name();
  }
  EXPECT_NE(pool.FindServiceByName("streaming.v1.Streaming"), nullptr);
}

TEST_F(ReflectionTest, UnreachableServerIsUnavailable) {
  const std::string address = server_->address();
  server_.reset();
  auto files = FetchServiceDescriptors(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()), absl::Seconds(10));
  ASSERT_FALSE(files.ok());
  EXPECT_EQ(files.status().code(), absl::StatusCode::kUnavailable);
}

TEST(IsInfrastructureServiceTest, RecognizesReflectionAndHealth) {
  EXPECT_TRUE(IsInfrastructureService("grpc.reflection.v1alpha.ServerReflection"));
  EXPECT_TRUE(IsInfrastructureService("grpc.health.v1.Health"));
  EXPECT_FALSE(IsInfrastructureService("streaming.v1.Streaming"));
}

// Our copy of the reflection messages (package gravity.internal.reflection)
// must keep the wire format of grpc.reflection.v1alpha, whose generated code
// this test links through the server library (libgrpc++_reflection).
TEST(ReflectionProtoTest, CopyMatchesGrpcReflectionV1alphaOnTheWire) {
  const auto* ours = ::gravity::internal::reflection::ServerReflectionRequest::descriptor()->file();
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  int compared = 0;
  for (int i = 0; i < ours->message_type_count(); ++i) {
    const google::protobuf::Descriptor* mine = ours->message_type(i);
    const google::protobuf::Descriptor* theirs =
        pool->FindMessageTypeByName("grpc.reflection.v1alpha." + mine->name());
    ASSERT_NE(theirs, nullptr) << mine->name();
    ASSERT_EQ(mine->field_count(), theirs->field_count()) << mine->name();
    for (int f = 0; f < mine->field_count(); ++f) {
      const auto* field = mine->field(f);
      const auto* other = theirs->FindFieldByNumber(field->number());
      ASSERT_NE(other, nullptr) << field->full_name();
      EXPECT_EQ(field->name(), other->name());
      EXPECT_EQ(field->type(), other->type()) << field->full_name();
      EXPECT_EQ(field->is_repeated(), other->is_repeated()) << field->full_name();
      ++compared;
    }
  }
  EXPECT_GT(compared, 10);
}

}  // namespace
}  // namespace gravity::client
