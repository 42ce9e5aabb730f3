// streaming-server (examples/streaming/main.cc, path in argv[1]) run as a
// process with bad TLS flags: it must stop at start, exit 1 and name the
// file (or the missing flag), never serve.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/client/subprocess.h"

namespace gravity::examples {
namespace {

const char* server_path = nullptr;

using testing::Subprocess;

constexpr char kMarkedCert[] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
constexpr char kMarkedKey[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";

std::string WriteFile(const std::string& name, const std::string& contents) {
  const std::string path = ::testing::TempDir() + "/streaming_server_config_test_" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
  return path;
}

std::string MissingFile(const std::string& name) {
  const std::string path = ::testing::TempDir() + "/streaming_server_config_test_missing_" + name;
  std::remove(path.c_str());
  return path;
}

class StreamingServerConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(server_path, nullptr) << "usage: streaming_server_config_test <streaming-server>";
  }

  // Exit code 1 and a stderr naming `named`; a server that starts anyway is
  // stopped after a while and fails the test.
  static void ExpectStopsNaming(const std::vector<std::string>& flags, const std::string& named) {
    std::vector<std::string> args = {server_path, "--listen=127.0.0.1:0"};
    args.insert(args.end(), flags.begin(), flags.end());
    auto server = Subprocess::Start(args);
    ASSERT_NE(server, nullptr);
    Subprocess::Result result = server->Finish(absl::Seconds(10));
    EXPECT_EQ(result.exit_code, 1) << result.err;
    EXPECT_TRUE(absl::StrContains(result.err, named)) << result.err;
    EXPECT_FALSE(absl::StrContains(result.out, "listening")) << result.out;
  }
};

TEST_F(StreamingServerConfigTest, HalfATlsPairNamesTheMissingFlag) {
  ExpectStopsNaming({"--tls_cert=" + WriteFile("half.crt", kMarkedCert)}, "--tls_key");
  ExpectStopsNaming({"--tls_key=" + WriteFile("half.key", kMarkedKey)}, "--tls_cert");
}

TEST_F(StreamingServerConfigTest, MissingCertOrKeyStopsTheStart) {
  const std::string cert = MissingFile("server.crt");
  ExpectStopsNaming({"--tls_cert=" + cert, "--tls_key=" + WriteFile("a.key", kMarkedKey)}, cert);
  const std::string key = MissingFile("server.key");
  ExpectStopsNaming({"--tls_cert=" + WriteFile("a.crt", kMarkedCert), "--tls_key=" + key}, key);
}

TEST_F(StreamingServerConfigTest, CertOrKeyThatIsNotPemStopsTheStart) {
  const std::string key = WriteFile("b.key", kMarkedKey);
  const std::string cert = WriteFile("b.crt", kMarkedCert);
  const std::string garbage = WriteFile("garbage.pem", "not PEM at all\n");
  ExpectStopsNaming({"--tls_cert=" + garbage, "--tls_key=" + key}, garbage);
  ExpectStopsNaming({"--tls_cert=" + cert, "--tls_key=" + garbage}, garbage);
  // A key where the certificate goes, and the other way round.
  ExpectStopsNaming({"--tls_cert=" + key, "--tls_key=" + key}, key);
  ExpectStopsNaming({"--tls_cert=" + cert, "--tls_key=" + cert}, cert);
  // A directory reads as an empty file through std::ifstream.
  const std::string directory = ::testing::TempDir();
  ExpectStopsNaming({"--tls_cert=" + directory, "--tls_key=" + key}, directory);
}

TEST_F(StreamingServerConfigTest, PemMarkersAroundGarbageStillNameTheFiles) {
  // Passes the cheap check; gRPC refuses the pair when it binds.
  const std::string cert = WriteFile("c.crt", kMarkedCert);
  const std::string key = WriteFile("c.key", kMarkedKey);
  ExpectStopsNaming({"--tls_cert=" + cert, "--tls_key=" + key}, cert);
}

}  // namespace
}  // namespace gravity::examples

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc > 1) gravity::examples::server_path = argv[1];
  return RUN_ALL_TESTS();
}
