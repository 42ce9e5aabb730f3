// Faults with nothing lost: the backend (streaming-server, a process of its
// own; path in argv[1]) killed with SIGKILL and restarted again and again under
// SSE clients, and frozen with SIGSTOP, in front of an in-process bridge. The
// clients behave as EventSource does: after a cut (no `end`) they reconnect
// with Last-Event-ID. Every client must see every seq exactly once, in order,
// and end with `end` code 0.
#include <signal.h>

#include <atomic>
#include <functional>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "bridge/bridge.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "streaming/v1/streaming.pb.h"
#include "tests/bridge/http_test_client.h"
#include "tests/client/subprocess.h"
#include "tests/testing/sanitizers.h"

namespace gravity::bridge {
namespace {

const char* server_path = nullptr;

using testing::HttpConnection;
using testing::ParseSse;
using testing::Subprocess;

int FreePort() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor(
      io, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

// streaming-server on a fixed port, so a restart is found at the same address.
class Backend {
 public:
  explicit Backend(int port) : port_(port) {}
  ~Backend() { Kill(); }

  bool Start() {
    process_ = Subprocess::Start({server_path, absl::StrCat("--listen=127.0.0.1:", port_)});
    if (process_ == nullptr) return false;
    while (auto line = process_->ReadLine(absl::Seconds(20))) {
      if (absl::StrContains(*line, "listening on")) return true;
    }
    return false;
  }
  void Kill() {
    if (process_ == nullptr) return;
    process_->Kill(SIGKILL);
    process_->Finish(absl::Seconds(10));
    process_.reset();
  }
  void Signal(int signal) { process_->Kill(signal); }

 private:
  const int port_;
  std::unique_ptr<Subprocess> process_;
};

// One EventSource-like client of a Ping stream.
struct Client {
  std::vector<int> seqs;
  int end_code = -1;
  int cuts = 0;
  int keepalives = 0;

  void Run(int bridge_port, int count, absl::Time deadline) {
    int last = 0;
    while (absl::Now() < deadline) {
      HttpConnection connection(bridge_port, /*timeout_ms=*/30000);
      std::vector<std::pair<std::string, std::string>> headers = {{"Accept", "text/event-stream"}};
      if (last > 0) headers.emplace_back("Last-Event-ID", std::to_string(last));
      connection.SendRequest(
          "GET", absl::StrCat("/streaming.v1.Streaming/Ping?to=f&interval_ms=10&count=", count),
          headers);
      testing::HttpResponse response = connection.ReadResponse();
      for (size_t at = response.body.find(": keep-alive"); at != std::string::npos;
           at = response.body.find(": keep-alive", at + 1)) {
        ++keepalives;
      }
      for (const auto& event : ParseSse(response.body)) {
        if (event.event == "end") {
          end_code = absl::StrContains(event.data, "\"code\":0,") ? 0 : 1;
          return;
        }
        if (!event.id.empty()) {
          last = std::stoi(event.id);
          seqs.push_back(last);
        }
      }
      // Cut without `end` (or refused while the backend was away): retry, as
      // EventSource does after `retry:`.
      ++cuts;
      absl::SleepFor(absl::Milliseconds(100));
    }
  }

  void ExpectComplete(int count, int index) const {
    EXPECT_EQ(end_code, 0) << "client " << index;
    ASSERT_EQ(seqs.size(), static_cast<size_t>(count)) << "client " << index;
    for (int i = 0; i < count; ++i) {
      ASSERT_EQ(seqs[i], i + 1) << "client " << index << " at " << i;
    }
  }
};

class FaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(server_path, nullptr) << "usage: faults_test <streaming-server>";
    port_ = FreePort();
    backend_ = std::make_unique<Backend>(port_);
    ASSERT_TRUE(backend_->Start());
    streaming::v1::PingReply::descriptor();  // linked, for DescriptorsOfLinkedServices
    auto descriptors = DescriptorsOfLinkedServices({"streaming.v1.Streaming"});
    ASSERT_TRUE(descriptors.ok());
    BridgeOptions options;
    options.listen = "127.0.0.1:0";
    options.retry = absl::Milliseconds(100);
    options.keepalive = absl::Milliseconds(500);
    auto bridge = Bridge::Start(
        options,
        grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port_),
                                  grpc::InsecureChannelCredentials(), BackendChannelArguments()),
        *descriptors);
    ASSERT_TRUE(bridge.ok()) << bridge.status();
    bridge_ = std::move(*bridge);
  }

  // Runs `clients` clients of `count` events each on threads of their own
  // (a test's threads: the bridge has none per stream) while `fault` runs.
  std::vector<Client> RunClients(int clients, int count, const std::function<void()>& fault) {
    std::vector<Client> results(clients);
    std::vector<std::thread> threads;
    const absl::Time deadline = absl::Now() + absl::Seconds(240);
    for (int i = 0; i < clients; ++i) {
      threads.emplace_back([&, i] { results[i].Run(bridge_->port(), count, deadline); });
    }
    fault();
    for (auto& thread : threads) thread.join();
    return results;
  }

  int port_ = 0;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Bridge> bridge_;
};

TEST_F(FaultsTest, BackendKilledAndRestartedAgainAndAgainLosesNothing) {
  const int cycles = testing::kSanitizedBuild ? 10 : 50;
  constexpr int kClients = 20;
  // 10 ms apart: the streams outlast the kill cycles (about 0.3 s each).
  const int count = cycles * 40 + 200;
  std::mt19937 random(7);
  int restarted = 0;
  std::vector<Client> clients = RunClients(kClients, count, [&] {
    for (int cycle = 0; cycle < cycles; ++cycle) {
      absl::SleepFor(absl::Milliseconds(100 + random() % 200));
      backend_->Kill();
      if (!backend_->Start()) break;
      ++restarted;
    }
  });
  EXPECT_EQ(restarted, cycles);
  int cuts = 0;
  for (int i = 0; i < kClients; ++i) {
    clients[i].ExpectComplete(count, i);
    cuts += clients[i].cuts;
  }
  // The faults did reach the clients.
  EXPECT_GT(cuts, cycles);
  std::cout << kClients << " clients, " << cycles << " kill/restart cycles, " << cuts
            << " cuts resumed, every seq once\n";
}

TEST_F(FaultsTest, ABackendFrozenFor10sKeepsItsStreamsAliveWithKeepAlives) {
  constexpr int kClients = 5;
  constexpr int kCount = 200;  // 2 s of events, with the freeze in the middle
  std::vector<Client> clients = RunClients(kClients, kCount, [&] {
    absl::SleepFor(absl::Milliseconds(500));
    backend_->Signal(SIGSTOP);
    absl::SleepFor(absl::Seconds(10));
    backend_->Signal(SIGCONT);
  });
  for (int i = 0; i < kClients; ++i) {
    clients[i].ExpectComplete(kCount, i);
    // Nothing was cut: the connection stayed up on keep-alive comments
    // (every 500 ms here) while the backend was frozen.
    EXPECT_EQ(clients[i].cuts, 0) << "client " << i;
    EXPECT_GE(clients[i].keepalives, 10) << "client " << i;
  }
}

}  // namespace
}  // namespace gravity::bridge

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc > 1) gravity::bridge::server_path = argv[1];
  return RUN_ALL_TESTS();
}
