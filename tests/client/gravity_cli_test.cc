// gravity-cli (client/cli/main.cc, path in argv[1]) run as a process against
// an in-process example server: output lines and exit codes.
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/client/subprocess.h"
#include "tests/examples/example_server.h"

namespace gravity::client {
namespace {

const char* gravity_cli_path = nullptr;

using testing::Subprocess;

class GravityCliTest : public testing::ExampleServerTest {
 protected:
  Subprocess::Result Run(std::vector<std::string> args) {
    args.insert(args.begin(), {gravity_cli_path, "--target=" + server_->address()});
    return RunRaw(std::move(args));
  }

  static Subprocess::Result RunRaw(const std::vector<std::string>& args) {
    auto cli = Subprocess::Start(args);
    EXPECT_NE(cli, nullptr);
    if (cli == nullptr) return {};
    return cli->Finish(absl::Seconds(30));
  }

  static std::vector<std::string> Lines(const std::string& out) {
    return absl::StrSplit(out, '\n', absl::SkipEmpty());
  }

  void SetUp() override {
    ASSERT_NE(gravity_cli_path, nullptr) << "usage: gravity_cli_test <gravity-cli>";
    ExampleServerTest::SetUp();
  }
};

TEST_F(GravityCliTest, PrintsOneJsonLinePerMessageThenOk) {
  auto result = Run({"streaming.v1.Streaming/Ping", R"({"to":"bob","count":3,"intervalMs":5})"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(Lines(result.out), (std::vector<std::string>{
                                   R"({"message":"Sending ping to bob","seq":"1"})",
                                   R"({"message":"Sending ping to bob","seq":"2"})",
                                   R"({"message":"Sending ping to bob","seq":"3"})",
                                   R"({"code":0,"message":""})",
                               }));
}

TEST_F(GravityCliTest, ErrorMidStreamPrintsTheMessagesThenTheStatusAndExitsOne) {
  auto result = Run({"streaming.v1.Streaming/Ping", R"({"count":2,"intervalMs":5,"failCode":9})"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(Lines(result.out), (std::vector<std::string>{
                                   R"({"message":"Sending ping to ","seq":"1"})",
                                   R"({"message":"Sending ping to ","seq":"2"})",
                                   R"j({"code":9,"message":"ping failed as asked (fail_code 9)"})j",
                               }));
}

TEST_F(GravityCliTest, GuardRejectionPrintsOnlyTheStatusAndExitsOne) {
  auto result = Run({"streaming.v1.Streaming/StreamUsers"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(Lines(result.out),
            (std::vector<std::string>{
                R"({"code":16,"message":"missing authorization: Bearer <token>"})",
            }));
}

TEST_F(GravityCliTest, HeaderFlagsAreSentAsMetadata) {
  auto result = Run({"--header", "x-unused: a, b",
                     "--header=authorization: Bearer " + std::string(testing::kAdminToken),
                     "streaming.v1.Streaming/StreamUsers", R"({"count":2,"intervalMs":5})"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  std::vector<std::string> lines = Lines(result.out);
  ASSERT_EQ(lines.size(), 3u) << result.out;
  EXPECT_EQ(lines[0].rfind(R"({"id":")", 0), 0u) << lines[0];
  EXPECT_EQ(lines[2], R"({"code":0,"message":""})");
}

TEST_F(GravityCliTest, LastEventIdResumes) {
  auto result =
      Run({"--last_event_id=3", "streaming.v1.Streaming/Ping", R"({"count":5,"intervalMs":5})"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(Lines(result.out), (std::vector<std::string>{
                                   R"({"message":"Sending ping to ","seq":"4"})",
                                   R"({"message":"Sending ping to ","seq":"5"})",
                                   R"({"code":0,"message":""})",
                               }));
}

TEST_F(GravityCliTest, DeadlineEndsWithDeadlineExceeded) {
  auto result =
      Run({"--deadline=300ms", "streaming.v1.Streaming/Ping", R"({"count":1000,"intervalMs":20})"});
  EXPECT_EQ(result.exit_code, 1);
  std::vector<std::string> lines = Lines(result.out);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back().rfind(R"({"code":4,)", 0), 0u) << lines.back();
}

TEST_F(GravityCliTest, UnknownMethodIsAUsageError) {
  auto result = Run({"streaming.v1.Streaming/Nope"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_TRUE(result.out.empty()) << result.out;
  EXPECT_NE(result.err.find("unknown method streaming.v1.Streaming/Nope"), std::string::npos)
      << result.err;
}

TEST_F(GravityCliTest, InvalidRequestJsonIsAUsageError) {
  auto result = Run({"streaming.v1.Streaming/Ping", R"({"nope":1})"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_TRUE(result.out.empty()) << result.out;
}

TEST_F(GravityCliTest, ListPrintsTheServices) {
  auto result = Run({"list"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "streaming.v1.Streaming\n");
}

TEST_F(GravityCliTest, ListServicePrintsItsMethods) {
  auto result = Run({"list", "streaming.v1.Streaming"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out,
            "streaming.v1.Streaming/Ping\nstreaming.v1.Streaming/StreamUsers\n"
            "streaming.v1.Streaming/Echo\n");
}

// A unary call is a stream of one message on the wire: the same output.
TEST_F(GravityCliTest, AUnaryMethodPrintsItsReplyThenTheStatus) {
  auto result = Run({"streaming.v1.Streaming/Echo", R"({"text":"hi"})"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(Lines(result.out), (std::vector<std::string>{
                                   R"({"text":"hi"})",
                                   R"({"code":0,"message":""})",
                               }));
  result = Run({"streaming.v1.Streaming/Echo", R"({"failCode":7})"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(Lines(result.out), (std::vector<std::string>{
                                   R"j({"code":7,"message":"echo failed as asked (fail_code 7)"})j",
                               }));
}

TEST_F(GravityCliTest, DescribeShowsAMethodAndItsTypes) {
  auto result = Run({"describe", "streaming.v1.Streaming/Ping"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("rpc Ping(.streaming.v1.PingRequest) returns (stream "
                            ".streaming.v1.PingReply)"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("message PingRequest {"), std::string::npos) << result.out;
}

TEST_F(GravityCliTest, MissingTargetIsAUsageError) {
  auto result = RunRaw({gravity_cli_path, "list"});
  EXPECT_EQ(result.exit_code, 2);
}

TEST_F(GravityCliTest, UnreachableServerExitsThree) {
  const std::string address = server_->address();
  server_.reset();
  auto result =
      RunRaw({gravity_cli_path, "--target=" + address, "--reflection_timeout=5s", "list"});
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_NE(result.err.find("UNAVAILABLE"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace gravity::client

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc > 1) gravity::client::gravity_cli_path = argv[1];
  return RUN_ALL_TESTS();
}
