// gravity-bridge (bridge/main.cc, path in argv[1]) run as a process with bad
// file flags: it must stop at start, exit 1 and name the file, never fall
// back (a bad --backend_ca to the system roots, a bad --descriptor_set to
// reflection). argv[2] is a valid descriptor set, for the control case.
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/bridge/http_test_client.h"
#include "tests/client/subprocess.h"

namespace gravity::bridge {
namespace {

const char* bridge_path = nullptr;
const char* descriptor_set_path = nullptr;

using testing::Subprocess;

std::string WriteFile(const std::string& name, const std::string& contents) {
  const std::string path = ::testing::TempDir() + "/bridge_config_test_" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
  return path;
}

std::string MissingFile(const std::string& name) {
  const std::string path = ::testing::TempDir() + "/bridge_config_test_missing_" + name;
  std::remove(path.c_str());
  return path;
}

std::string Directory() { return ::testing::TempDir(); }

class BridgeConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(bridge_path, nullptr) << "usage: bridge_config_test <gravity-bridge> <descriptors>";
  }

  // Runs the bridge with `flags` and an unreachable backend, so that a bridge
  // that ignores a bad flag fails (slowly) for another reason, or serves.
  static Subprocess::Result Run(const std::vector<std::string>& flags) {
    std::vector<std::string> args = {bridge_path, "--listen=127.0.0.1:0", "--backend=127.0.0.1:1",
                                     "--discovery_timeout=1s"};
    args.insert(args.end(), flags.begin(), flags.end());
    auto bridge = Subprocess::Start(args);
    EXPECT_NE(bridge, nullptr);
    if (bridge == nullptr) return {};
    return bridge->Finish(absl::Seconds(20));
  }

  // Exit code 1 and a stderr naming `file`.
  static void ExpectStopsNaming(const std::vector<std::string>& flags, const std::string& file) {
    Subprocess::Result result = Run(flags);
    EXPECT_EQ(result.exit_code, 1) << result.err;
    EXPECT_TRUE(absl::StrContains(result.err, file)) << result.err;
    EXPECT_FALSE(absl::StrContains(result.out, "listening")) << result.out;
  }
};

TEST_F(BridgeConfigTest, MissingBackendCaStopsTheStart) {
  const std::string ca = MissingFile("ca.pem");
  ExpectStopsNaming({"--backend_tls", "--backend_ca=" + ca}, ca);
}

TEST_F(BridgeConfigTest, BackendCaThatIsNotPemStopsTheStart) {
  const std::string ca = WriteFile("garbage_ca.pem", "not a certificate\n");
  ExpectStopsNaming({"--backend_tls", "--backend_ca=" + ca}, ca);
  const std::string empty = WriteFile("empty_ca.pem", "");
  ExpectStopsNaming({"--backend_tls", "--backend_ca=" + empty}, empty);
  ExpectStopsNaming({"--backend_tls", "--backend_ca=" + Directory()}, Directory());
}

TEST_F(BridgeConfigTest, BackendCaWithoutBackendTlsStopsTheStart) {
  // Without --backend_tls the connection would be plaintext despite the CA.
  const std::string ca =
      WriteFile("marked_ca.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  ExpectStopsNaming({"--backend_ca=" + ca}, "--backend_tls");
  ExpectStopsNaming({"--backend_tls_name=backend.example"}, "--backend_tls");
}

TEST_F(BridgeConfigTest, MissingOrInvalidDescriptorSetStopsTheStart) {
  const std::string missing = MissingFile("descriptors.pb");
  ExpectStopsNaming({"--descriptor_set=" + missing}, missing);
  const std::string garbage = WriteFile("garbage_descriptors.pb", "not a descriptor set\n");
  ExpectStopsNaming({"--descriptor_set=" + garbage}, garbage);
  // An empty file parses as an empty FileDescriptorSet; a directory reads as
  // an empty file through std::ifstream.
  const std::string empty = WriteFile("empty_descriptors.pb", "");
  ExpectStopsNaming({"--descriptor_set=" + empty}, empty);
  ExpectStopsNaming({"--descriptor_set=" + Directory()}, Directory());
}

TEST_F(BridgeConfigTest, MissingOrEmptyIndexHtmlStopsTheStart) {
  const std::string missing = MissingFile("index.html");
  ExpectStopsNaming({"--index_html=" + missing}, missing);
  const std::string empty = WriteFile("empty_index.html", "");
  ExpectStopsNaming({"--index_html=" + empty}, empty);
  ExpectStopsNaming({"--index_html=" + Directory()}, Directory());
}

TEST_F(BridgeConfigTest, GoodFilesStart) {
  ASSERT_NE(descriptor_set_path, nullptr);
  const std::string index = WriteFile("index.html", "<!doctype html><p>hi</p>\n");
  const std::string ca =
      WriteFile("good_ca.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  auto bridge = Subprocess::Start({bridge_path, "--listen=127.0.0.1:0", "--backend=127.0.0.1:1",
                                   "--backend_tls", "--backend_ca=" + ca,
                                   std::string("--descriptor_set=") + descriptor_set_path,
                                   "--index_html=" + index});
  ASSERT_NE(bridge, nullptr);
  bool listening = false;
  while (auto line = bridge->ReadLine(absl::Seconds(20))) {
    if (absl::StrContains(*line, "listening on http://")) {
      listening = true;
      break;
    }
  }
  if (!listening) {
    bridge->Kill(SIGKILL);
    ADD_FAILURE() << "no listening line; stderr: " << bridge->Finish(absl::Seconds(5)).err;
  }
  // The destructor stops it.
}

// Out of file descriptors (a low `ulimit -n`), a new connection gets a 503
// with a Status JSON instead of waiting unanswered, the open ones are kept,
// and once descriptors are free again the bridge serves as before.
TEST_F(BridgeConfigTest, OutOfFileDescriptorsIsA503ThenRecovery) {
  ASSERT_NE(descriptor_set_path, nullptr);
  auto bridge = Subprocess::Start({"/bin/sh", "-c", "ulimit -n 48 && exec \"$0\" \"$@\"",
                                   bridge_path, "--listen=127.0.0.1:0", "--backend=127.0.0.1:1",
                                   std::string("--descriptor_set=") + descriptor_set_path});
  ASSERT_NE(bridge, nullptr);
  int port = 0;
  while (auto line = bridge->ReadLine(absl::Seconds(20))) {
    const size_t at = line->find("listening on http://127.0.0.1:");
    if (at != std::string::npos) {
      port = std::stoi(line->substr(at + std::strlen("listening on http://127.0.0.1:")));
      break;
    }
  }
  ASSERT_NE(port, 0) << bridge->Finish(absl::Seconds(5)).err;

  // A client that leaves before and after a request, once while descriptors
  // are plentiful. Under UBSan this matters: the first vptr check of an
  // error category (a read's end of file) needs a pipe, and one that comes
  // only when the process has no descriptor left is reported as a bad vptr.
  {
    testing::HttpConnection silent(port);
    silent.Close();
    testing::HttpConnection served(port);
    served.SendRaw("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string seen;
    ASSERT_TRUE(served.ReadUntil("\r\n\r\n", &seen));
    served.Close();
  }
  // Idle connections until the bridge runs out: each costs it a descriptor.
  std::vector<std::unique_ptr<testing::HttpConnection>> idle;
  std::string refused;
  for (int i = 0; i < 100 && refused.empty(); ++i) {
    auto connection = std::make_unique<testing::HttpConnection>(port, /*timeout_ms=*/2000);
    connection->SendRaw("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string seen;
    connection->ReadUntil("\r\n\r\n", &seen);
    if (absl::StartsWith(seen, "HTTP/1.1 503")) {
      refused = seen + connection->ReadToClose();
    } else {
      ASSERT_TRUE(absl::StartsWith(seen, "HTTP/1.1 200 OK")) << i << ": " << seen;
      idle.push_back(std::move(connection));  // kept open, keep-alive
    }
  }
  ASSERT_FALSE(refused.empty()) << "never ran out with " << idle.size() << " connections";
  EXPECT_TRUE(absl::StrContains(refused, "Retry-After: 1\r\n")) << refused;
  EXPECT_TRUE(absl::StrContains(
      refused,
      "{\"code\":14,\"message\":\"the bridge is out of file descriptors\",\"details\":[]}"))
      << refused;
  // The open connections were kept: one of them still serves.
  ASSERT_FALSE(idle.empty());
  idle.front()->SendRaw("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(idle.front()->ReadResponse().status, 200);
  // Free descriptors again: new connections are served.
  idle.clear();
  bool recovered = false;
  for (int attempt = 0; attempt < 50 && !recovered; ++attempt) {
    testing::HttpConnection connection(port, 2000);
    connection.SendRaw("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    recovered = absl::StartsWith(connection.ReadToClose(), "HTTP/1.1 200 OK");
    if (!recovered) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(recovered);
}

}  // namespace
}  // namespace gravity::bridge

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc > 1) gravity::bridge::bridge_path = argv[1];
  if (argc > 2) gravity::bridge::descriptor_set_path = argv[2];
  return RUN_ALL_TESTS();
}
