// Faults with nothing lost: the backend (streaming-server, a process of its
// own; path in argv[1]) killed with SIGKILL and restarted again and again under
// SSE clients, and frozen with SIGSTOP, in front of an in-process bridge. The
// clients behave as EventSource does: after a cut (no `end`) they reconnect
// with Last-Event-ID. Every client must see every seq exactly once, in order,
// and end with `end` code 0.
#include <signal.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <functional>
#include <future>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/write.hpp"
#include "bridge/bridge.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "streaming/v1/streaming.grpc.pb.h"
#include "streaming/v1/streaming.pb.h"
#include "tests/bridge/http2_test_client.h"
#include "tests/bridge/http_test_client.h"
#include "tests/bridge/test_certificate.h"
#include "tests/client/subprocess.h"
#include "tests/testing/sanitizers.h"

namespace gravity::bridge {
namespace {

const char* server_path = nullptr;

using testing::HttpConnection;
using testing::ParseSse;
using testing::Subprocess;
using testing::Wire;

// A free port below the ephemeral range (32768 and up on Linux): the backend
// is restarted on it again and again, and a port the kernel may hand out as
// some connection's source port could be taken in between.
int FreePort() {
  boost::asio::io_context io;
  const int first = 20000 + static_cast<int>(getpid() % 5000) * 2;
  for (int port = first; port < first + 2000; ++port) {
    boost::asio::ip::tcp::acceptor acceptor(io);
    boost::system::error_code ec;
    const boost::asio::ip::tcp::endpoint endpoint(boost::asio::ip::make_address("127.0.0.1"),
                                                  static_cast<unsigned short>(port));
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(boost::asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) return port;
  }
  return 0;
}

// streaming-server on a fixed port, so a restart is found at the same address.
class Backend {
 public:
  explicit Backend(int port) : port_(port) {}
  ~Backend() { Kill(); }

  // Bounded: a few tries for 5 s in all, should the port be busy a moment.
  bool Start() {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    do {
      process_ = Subprocess::Start({server_path, absl::StrCat("--listen=127.0.0.1:", port_)});
      if (process_ == nullptr) return false;
      while (auto line = process_->ReadLine(absl::Seconds(20))) {
        if (absl::StrContains(*line, "listening on")) return true;
      }
      Kill();
      absl::SleepFor(absl::Milliseconds(100));
    } while (absl::Now() < deadline);
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

// A TCP proxy between the bridge and the backend that the test can cut: every
// connection through it is closed at once (as a broken link would), and new
// ones are let through. Its own thread and io_context (a test's).
class CuttableProxy {
 public:
  explicit CuttableProxy(int target_port)
      : target_(boost::asio::ip::make_address("127.0.0.1"),
                static_cast<unsigned short>(target_port)),
        acceptor_(io_,
                  boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)) {
    Accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~CuttableProxy() {
    boost::asio::post(io_, [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      CutAll();
    });
    io_.stop();
    thread_.join();
  }
  int port() const { return acceptor_.local_endpoint().port(); }
  // Closes every connection through the proxy; returns how many were open.
  int Cut() {
    std::promise<int> cut;
    boost::asio::post(io_, [this, &cut] { cut.set_value(CutAll()); });
    return cut.get_future().get();
  }

 private:
  struct Pipe {
    explicit Pipe(boost::asio::io_context& io) : client(io), server(io) {}
    boost::asio::ip::tcp::socket client;
    boost::asio::ip::tcp::socket server;
    std::array<char, 16384> up{};
    std::array<char, 16384> down{};
  };

  void Accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, boost::asio::ip::tcp::socket s) {
      if (ec) return;
      auto pipe = std::make_shared<Pipe>(io_);
      pipe->client = std::move(s);
      boost::system::error_code connect_ec;
      pipe->server.connect(target_, connect_ec);
      if (!connect_ec) {
        pipes_.push_back(pipe);
        Relay(pipe, &pipe->client, &pipe->server, &pipe->up);
        Relay(pipe, &pipe->server, &pipe->client, &pipe->down);
      }
      Accept();
    });
  }

  void Relay(std::shared_ptr<Pipe> pipe, boost::asio::ip::tcp::socket* from,
             boost::asio::ip::tcp::socket* to, std::array<char, 16384>* buffer) {
    from->async_read_some(
        boost::asio::buffer(*buffer), [=](boost::system::error_code ec, size_t n) {
          if (ec) {
            Close(*pipe);
            return;
          }
          boost::asio::async_write(*to, boost::asio::buffer(buffer->data(), n),
                                   [=](boost::system::error_code write_ec, size_t) {
                                     if (write_ec) {
                                       Close(*pipe);
                                       return;
                                     }
                                     Relay(pipe, from, to, buffer);
                                   });
        });
  }

  static void Close(Pipe& pipe) {
    boost::system::error_code ignored;
    pipe.client.close(ignored);
    pipe.server.close(ignored);
  }

  int CutAll() {
    int open = 0;
    for (auto& pipe : pipes_) {
      if (pipe->client.is_open()) ++open;
      Close(*pipe);
    }
    pipes_.clear();
    return open;
  }

  boost::asio::io_context io_;
  const boost::asio::ip::tcp::endpoint target_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::vector<std::shared_ptr<Pipe>> pipes_;  // io_ thread only
  std::thread thread_;
};

// A stream that delivers nothing (keep-alive comments aside) for this long
// has stopped moving: the client notes a stall and reconnects, so a bridge
// bug shows as a failure with its details, never as a hung test. Longer than
// any silence the faults cause (the 10 s freeze).
constexpr absl::Duration kStall = absl::Seconds(20);

// One EventSource-like client of a Ping stream.
// A Ping of one message straight to `address`, within 2 s: its status code
// (for a stall's report: is the backend, or the path to it, answering?).
int ProbePing(const std::string& address) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto stub = streaming::v1::Streaming::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  streaming::v1::PingRequest request;
  request.set_count(1);
  auto reader = stub->Ping(&context, request);
  streaming::v1::PingReply reply;
  while (reader->Read(&reply)) {
  }
  return static_cast<int>(reader->Finish().error_code());
}

// Ports a stall's report probes.
int g_backend_port = 0;
int g_proxy_port = 0;

struct Client {
  std::vector<int> seqs;
  int end_code = -1;
  int cuts = 0;
  int keepalives = 0;
  std::vector<std::string> stalls;  // what each stall looked like

  void Run(Wire wire, int bridge_port, int count, absl::Time deadline,
           const std::atomic<bool>& stop) {
    int last = 0;
    while (absl::Now() < deadline && !stop.load()) {
      std::vector<std::pair<std::string, std::string>> headers = {{"Accept", "text/event-stream"}};
      if (last > 0) headers.emplace_back("Last-Event-ID", std::to_string(last));
      const std::string target =
          absl::StrCat("/streaming.v1.Streaming/Ping?to=f&interval_ms=10&count=", count);
      const absl::Time opened = absl::Now();
      absl::Time last_progress = opened;
      size_t events_seen = 0;
      auto go_on = [&](const std::string& body) {
        size_t events = 0;
        for (size_t at = body.find("data:"); at != std::string::npos;
             at = body.find("data:", at + 1)) {
          ++events;
        }
        if (events > events_seen) {
          events_seen = events;
          last_progress = absl::Now();
        }
        return absl::Now() - last_progress < kStall;
      };
      testing::HttpResponse response;
      if (wire == Wire::kHttp1) {
        HttpConnection connection(bridge_port, /*timeout_ms=*/30000);
        connection.SendRequest("GET", target, headers);
        response = connection.ReadResponse(go_on);
      } else {
        response = testing::Http2Request(bridge_port, wire == Wire::kH2, "GET", target, headers, "",
                                         /*timeout_ms=*/30000, go_on);
      }
      if (response.error == "stopped by the caller" || response.status == 0) {
        // What the bridge was doing meanwhile: does it still answer at all?
        testing::HttpResponse metrics;
        if (wire == Wire::kHttp1) {
          testing::HttpConnection probe(bridge_port, /*timeout_ms=*/2000);
          probe.SendRequest("GET", "/metrics");
          metrics = probe.ReadResponse();
        } else {
          metrics = testing::Http2Request(bridge_port, wire == Wire::kH2, "GET", "/metrics", {}, "",
                                          /*timeout_ms=*/2000);
        }
        std::string gauges;
        for (const char* name :
             {"gravity_bridge_active_streams ", "gravity_bridge_connections_active "}) {
          const size_t at = metrics.body.find(std::string("\n") + name);
          if (at != std::string::npos) {
            gauges += metrics.body.substr(at + 1, metrics.body.find('\n', at + 1) - at - 1) + " ";
          }
        }
        stalls.push_back(absl::StrCat(
            "after seq ", last, ", ", events_seen, " events into a connection opened ",
            absl::FormatDuration(absl::Now() - opened), " before (HTTP ", response.status, ", ",
            response.error, ", body ends \"",
            response.body.substr(response.body.size() > 60 ? response.body.size() - 60 : 0),
            "\"; /metrics: HTTP ", metrics.status, " ", gauges, "; Ping to the backend: code ",
            ProbePing(absl::StrCat("127.0.0.1:", g_backend_port)), ", through the proxy: code ",
            ProbePing(absl::StrCat("127.0.0.1:", g_proxy_port)), ")"));
      }
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
    EXPECT_TRUE(stalls.empty()) << "client " << index
                                << ": streams stopped moving: " << absl::StrJoin(stalls, "; ");
    EXPECT_EQ(end_code, 0) << "client " << index;
    ASSERT_EQ(seqs.size(), static_cast<size_t>(count)) << "client " << index;
    for (int i = 0; i < count; ++i) {
      ASSERT_EQ(seqs[i], i + 1) << "client " << index << " at " << i;
    }
  }
};

// Over HTTP/1.1, and over HTTP/2 with TLS (the h2 codec and the TLS transport
// together; h2c differs from it only by the transport, which the contract
// suite covers).
class FaultsTest : public ::testing::TestWithParam<Wire> {
 protected:
  void SetUp() override {
    ASSERT_NE(server_path, nullptr) << "usage: faults_test <streaming-server>";
    port_ = FreePort();
    ASSERT_NE(port_, 0);
    backend_ = std::make_unique<Backend>(port_);
    ASSERT_TRUE(backend_->Start());
    streaming::v1::PingReply::descriptor();  // linked, for DescriptorsOfLinkedServices
    auto descriptors = DescriptorsOfLinkedServices({"streaming.v1.Streaming"});
    ASSERT_TRUE(descriptors.ok());
    BridgeOptions options;
    options.listen = "127.0.0.1:0";
    options.retry = absl::Milliseconds(100);
    options.keepalive = absl::Milliseconds(500);
    if (GetParam() == Wire::kH2) {
      auto certificate = testing::MakeTestCertificate();
      ASSERT_TRUE(certificate.ok()) << certificate.status();
      options.tls_cert = certificate->cert;
      options.tls_key = certificate->key;
    }
    // The bridge reaches the backend through a proxy the link test cuts.
    proxy_ = std::make_unique<CuttableProxy>(port_);
    g_backend_port = port_;
    g_proxy_port = proxy_->port();
    auto bridge = Bridge::Start(
        options,
        grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", proxy_->port()),
                                  grpc::InsecureChannelCredentials(), BackendChannelArguments()),
        *descriptors);
    ASSERT_TRUE(bridge.ok()) << bridge.status();
    bridge_ = std::move(*bridge);
  }

  void TearDown() override {
    bridge_.reset();  // before the proxy and the backend it reads from
    proxy_.reset();
  }

  // Runs `clients` clients of `count` events each on threads of their own
  // (a test's threads: the bridge has none per stream) while `fault` runs.
  std::vector<Client> RunClients(int clients, int count, const std::function<void()>& fault) {
    std::vector<Client> results(clients);
    std::vector<std::thread> threads;
    const absl::Time deadline = absl::Now() + absl::Seconds(120);
    for (int i = 0; i < clients; ++i) {
      threads.emplace_back(
          [&, i] { results[i].Run(GetParam(), bridge_->port(), count, deadline, stop_clients_); });
    }
    fault();
    for (auto& thread : threads) thread.join();
    return results;
  }

  // Set when a fault could not be staged: the clients give up at once.
  std::atomic<bool> stop_clients_{false};
  int port_ = 0;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<CuttableProxy> proxy_;
  std::unique_ptr<Bridge> bridge_;
};

TEST_P(FaultsTest, BackendKilledAndRestartedAgainAndAgainLosesNothing) {
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
      if (!backend_->Start()) {
        stop_clients_ = true;
        break;
      }
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

TEST_P(FaultsTest, ABackendFrozenFor10sKeepsItsStreamsAliveWithKeepAlives) {
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

TEST_P(FaultsTest, TheBridgeToBackendLinkCutLosesNothing) {
  constexpr int kClients = 10;
  constexpr int kCuts = 10;
  constexpr int kCount = 300;  // 3 s of events
  int cut_connections = 0;
  std::vector<Client> clients = RunClients(kClients, kCount, [&] {
    for (int i = 0; i < kCuts; ++i) {
      absl::SleepFor(absl::Milliseconds(200));
      cut_connections += proxy_->Cut();
    }
  });
  EXPECT_GT(cut_connections, 0);
  int cuts = 0;
  for (int i = 0; i < kClients; ++i) {
    clients[i].ExpectComplete(kCount, i);
    cuts += clients[i].cuts;
  }
  EXPECT_GT(cuts, 0);
  std::cout << kClients << " clients, link cut " << kCuts << " times, " << cuts
            << " cuts resumed, every seq once\n";
}

INSTANTIATE_TEST_SUITE_P(Wires, FaultsTest, ::testing::Values(Wire::kHttp1, Wire::kH2),
                         [](const auto& info) { return testing::WireName(info.param); });

}  // namespace
}  // namespace gravity::bridge

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc > 1) gravity::bridge::server_path = argv[1];
  return RUN_ALL_TESTS();
}
