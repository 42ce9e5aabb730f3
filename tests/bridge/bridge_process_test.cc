// gravity-bridge (bridge/main.cc, path in argv[1]) run as a process, stopped
// by SIGTERM while a unary call is in flight (issue 15). argv[2] is the
// streaming descriptor set, so the bridge needs no reflection. The drain must
// answer the call 503 with Retry-After at once, cancel it at the backend, and
// the process must exit 0 once no upstream call is left, well within --drain.
// Under --config=asan the bridge is built with ASan too: a use after free
// while the loop stops, or a leak at exit, makes its exit status non-zero.
#include <signal.h>

#include <cstring>
#include <future>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/bridge/holding_backend.h"
#include "tests/bridge/http_test_client.h"
#include "tests/client/subprocess.h"
#include "tests/testing/sanitizers.h"
#include "tests/testing/wait_for.h"

namespace gravity::bridge {
namespace {

const char* bridge_path = nullptr;
const char* descriptor_set_path = nullptr;

using testing::HttpConnection;
using testing::HttpResponse;
using testing::Subprocess;

// Sanitizer builds run several times slower.
const absl::Duration kPromptly = testing::kSanitizedBuild ? absl::Seconds(3) : absl::Seconds(1);

using testing::HoldingBackend;

class BridgeProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(bridge_path, nullptr) << "usage: bridge_process_test <gravity-bridge> <descriptors>";
    ASSERT_NE(descriptor_set_path, nullptr);
  }
};

// Issue 15: SIGTERM with a slow unary call in flight.
TEST_F(BridgeProcessTest, SigtermAnswersAUnaryCallInFlight503CancelsItAndExitsZero) {
  HoldingBackend backend;
  ASSERT_FALSE(backend.address().empty());
  const absl::Duration drain = absl::Seconds(2);
  auto bridge =
      Subprocess::Start({bridge_path, "--listen=127.0.0.1:0", "--backend=" + backend.address(),
                         std::string("--descriptor_set=") + descriptor_set_path, "--drain=2s",
                         "--retry=2s", "--retry_jitter=0", "--threads=2"});
  ASSERT_NE(bridge, nullptr);
  int port = 0;
  constexpr char kListening[] = "listening on http://127.0.0.1:";
  while (auto line = bridge->ReadLine(absl::Seconds(30))) {
    const size_t at = line->find(kListening);
    if (at != std::string::npos) {
      port = std::stoi(line->substr(at + std::strlen(kListening)));
      break;
    }
  }
  if (port == 0) {
    bridge->Kill(SIGKILL);
    FAIL() << "no listening line; stderr: " << bridge->Finish(absl::Seconds(5)).err;
  }

  HttpConnection connection(port);
  connection.SendRequest("POST", "/streaming.v1.Streaming/Echo", {}, R"({"text":"slow"})");
  ASSERT_TRUE(
      testing::WaitFor([&] { return backend.unary_started.load() == 1; }, absl::Seconds(10)))
      << "the call never reached the backend";

  const absl::Time signalled = absl::Now();
  bridge->Kill(SIGTERM);
  // The read is bounded here, not by the socket: an answer that has not come
  // within kPromptly + 2 s kills the bridge, which ends the read.
  std::future<HttpResponse> pending =
      std::async(std::launch::async, [&] { return connection.ReadResponse(); });
  if (pending.wait_for(absl::ToChronoSeconds(kPromptly + absl::Seconds(2))) !=
      std::future_status::ready) {
    bridge->Kill(SIGKILL);
    ADD_FAILURE() << "no answer within " << kPromptly + absl::Seconds(2)
                  << " of SIGTERM; gravity-bridge killed";
  }
  HttpResponse response = pending.get();
  const absl::Duration answered_after = absl::Now() - signalled;
  EXPECT_LT(answered_after, kPromptly) << "the drain is " << drain;
  EXPECT_EQ(response.status, 503) << response.error << response.body;
  EXPECT_EQ(response.header("retry-after"), "2");
  EXPECT_EQ(response.header("connection"), "close");
  EXPECT_TRUE(absl::StartsWith(response.body, "{\"code\":14,")) << response.body;
  EXPECT_TRUE(absl::StrContains(response.body, "\"details\":[]")) << response.body;
  EXPECT_TRUE(testing::WaitFor([&] { return backend.unary_cancelled.load() == 1; },
                               kPromptly - (absl::Now() - signalled)))
      << "the backend's call was not cancelled";

  // Exit 0 within the drain and some slack; a bridge that hangs is killed.
  Subprocess::Result result = bridge->Finish(drain + absl::Seconds(3) - (absl::Now() - signalled));
  const absl::Duration exited_after = absl::Now() - signalled;
  if (!result.exit_code.has_value()) {
    // pid() is -1 once reaped (died of a signal): never kill(-1, ...).
    if (bridge->pid() > 0) {
      bridge->Kill(SIGKILL);
      bridge->Finish(absl::Seconds(5));
    }
    FAIL() << "gravity-bridge did not exit 0 within " << drain + absl::Seconds(3)
           << " of SIGTERM (killed, or died of a signal)\nstdout: " << result.out
           << "\nstderr: " << result.err;
  }
  EXPECT_EQ(*result.exit_code, 0) << "stderr: " << result.err;
  EXPECT_TRUE(absl::StrContains(result.out, "gravity-bridge stopped")) << result.out;
  EXPECT_EQ(backend.unary_cancelled.load(), 1);
  EXPECT_EQ(backend.unary_started.load(), 1);
  std::cerr << "503 after " << answered_after << ", exit after " << exited_after << "\n";
}

}  // namespace
}  // namespace gravity::bridge

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc > 1) gravity::bridge::bridge_path = argv[1];
  if (argc > 2) gravity::bridge::descriptor_set_path = argv[2];
  return RUN_ALL_TESTS();
}
