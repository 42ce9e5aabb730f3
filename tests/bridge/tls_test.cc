// The bridge's TLS and protocol choice: certificate files that fail closed,
// a reload that keeps the old pair when the new one does not load, the
// handshake timeout, and how a cleartext connection's first bytes pick
// HTTP/2 (the preface) or HTTP/1.1.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "bridge/bridge.h"
#include "bridge/internal/connection_start.h"
#include "bridge/internal/tls_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "streaming/v1/streaming.pb.h"
#include "tests/bridge/http2_test_client.h"
#include "tests/bridge/test_certificate.h"

namespace gravity::bridge {
namespace {

using internal::MatchPreface;
using internal::Preface;
using internal::TlsContext;

TEST(PrefaceTest, TheHttp2PrefaceAndItsPrefixesAreToldFromHttp1) {
  EXPECT_EQ(MatchPreface("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Preface::kHttp2);
  EXPECT_EQ(MatchPreface("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04"), Preface::kHttp2);
  EXPECT_EQ(MatchPreface("P"), Preface::kMaybe);
  EXPECT_EQ(MatchPreface("PRI * HTTP/2.0\r\n"), Preface::kMaybe);
  EXPECT_EQ(MatchPreface("GET / HTTP/1.1\r\n"), Preface::kNot);
  EXPECT_EQ(MatchPreface("POST"), Preface::kNot);
  EXPECT_EQ(MatchPreface("PRI * HTTP/1.1\r\n"), Preface::kNot);
}

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    first_ = new absl::StatusOr<testing::TestCertificate>(testing::MakeTestCertificate("first"));
    second_ = new absl::StatusOr<testing::TestCertificate>(testing::MakeTestCertificate("second"));
  }
  void SetUp() override {
    ASSERT_TRUE(first_->ok()) << first_->status();
    ASSERT_TRUE(second_->ok()) << second_->status();
  }
  static absl::StatusOr<testing::TestCertificate>* first_;
  static absl::StatusOr<testing::TestCertificate>* second_;
};
absl::StatusOr<testing::TestCertificate>* TlsTest::first_ = nullptr;
absl::StatusOr<testing::TestCertificate>* TlsTest::second_ = nullptr;

TEST_F(TlsTest, FilesThatDoNotLoadFailClosedNamingTheFile) {
  auto missing = TlsContext::Load("/nonexistent/cert.pem", (*first_)->key, true);
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "--tls_cert /nonexistent/cert.pem"))
      << missing.status();
  // A key that is not the certificate's.
  auto mismatched = TlsContext::Load((*first_)->cert, (*second_)->key, true);
  ASSERT_FALSE(mismatched.ok());
  EXPECT_TRUE(absl::StrContains(mismatched.status().message(), "does not match"))
      << mismatched.status();
  // The certificate given as the key.
  auto not_a_key = TlsContext::Load((*first_)->cert, (*first_)->cert, true);
  EXPECT_FALSE(not_a_key.ok());
}

TEST_F(TlsTest, AReloadThatFailsKeepsThePairInServiceAndAGoodOneReplacesIt) {
  const std::string dir = ::testing::TempDir();
  const std::string cert = dir + "/rotating-cert.pem";
  const std::string key = dir + "/rotating-key.pem";
  auto copy = [](const std::string& from, const std::string& to) {
    std::ifstream in(from, std::ios::binary);
    std::ofstream out(to, std::ios::binary | std::ios::trunc);
    out << in.rdbuf();
  };
  copy((*first_)->cert, cert);
  copy((*first_)->key, key);
  auto tls = TlsContext::Load(cert, key, true);
  ASSERT_TRUE(tls.ok()) << tls.status();
  const auto before = (*tls)->Current();
  std::ofstream(cert, std::ios::trunc) << "not a certificate\n";
  EXPECT_FALSE((*tls)->Reload().ok());
  EXPECT_EQ((*tls)->Current(), before);
  copy((*second_)->cert, cert);
  copy((*second_)->key, key);
  EXPECT_TRUE((*tls)->Reload().ok());
  EXPECT_NE((*tls)->Current(), before);
}

std::unique_ptr<Bridge> StartTlsBridge(BridgeOptions options) {
  options.listen = "127.0.0.1:0";
  options.threads = 1;
  streaming::v1::PingReply::descriptor();  // linked, for DescriptorsOfLinkedServices
  auto descriptors = DescriptorsOfLinkedServices({"streaming.v1.Streaming"});
  EXPECT_TRUE(descriptors.ok());
  auto bridge =
      Bridge::Start(options, grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()),
                    *descriptors);
  EXPECT_TRUE(bridge.ok()) << bridge.status();
  return bridge.ok() ? std::move(*bridge) : nullptr;
}

TEST_F(TlsTest, ACertificateWithoutItsKeyIsRefusedAtStart) {
  BridgeOptions options;
  options.tls_cert = (*first_)->cert;
  auto descriptors = DescriptorsOfLinkedServices({"streaming.v1.Streaming"});
  ASSERT_TRUE(descriptors.ok());
  auto bridge =
      Bridge::Start(options, grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()),
                    *descriptors);
  ASSERT_FALSE(bridge.ok());
  EXPECT_TRUE(absl::StrContains(bridge.status().message(), "--tls_key")) << bridge.status();
}

TEST_F(TlsTest, AStalledHandshakeIsClosedAfterTheHandshakeTimeout) {
  BridgeOptions options;
  options.tls_cert = (*first_)->cert;
  options.tls_key = (*first_)->key;
  options.tls_handshake_timeout = absl::Milliseconds(300);
  std::unique_ptr<Bridge> bridge = StartTlsBridge(options);
  ASSERT_NE(bridge, nullptr);
  EXPECT_TRUE(bridge->tls());
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(bridge->port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  const absl::Time start = absl::Now();
  char byte;
  // Nothing sent: the bridge closes (0) well before our 5 s receive timeout.
  const ssize_t n = ::recv(fd, &byte, 1, 0);
  const absl::Duration took = absl::Now() - start;
  ::close(fd);
  EXPECT_EQ(n, 0);
  EXPECT_LT(took, absl::Seconds(3)) << took;
  // The bridge goes on serving TLS, and counted the failed handshake.
  testing::HttpResponse metrics =
      testing::Http2Request(bridge->port(), /*tls=*/true, "GET", "/metrics", {}, "");
  EXPECT_EQ(metrics.status, 200) << metrics.error;
  EXPECT_TRUE(absl::StrContains(metrics.body, "gravity_bridge_tls_handshakes_failed_total 1\n"))
      << metrics.body;
  EXPECT_TRUE(
      absl::StrContains(metrics.body, "gravity_bridge_connections_total{protocol=\"h2\"} 1"))
      << metrics.body;
}

}  // namespace
}  // namespace gravity::bridge
