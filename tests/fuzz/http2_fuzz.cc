// libFuzzer target: HTTP/2 frames into a live bridge connection. One
// gravity-bridge runs in this process for the whole run, in cleartext (h2c
// with prior knowledge), in front of a backend that is not there (each call
// fails at once, UNAVAILABLE), so requests, streams, refusals, resets and
// the connection's end are all served. Each input is written after the
// client preface on a fresh connection, then the write side is shut and
// everything the bridge answers is read until it closes.
//
// What it finds: a crash, a sanitizer report or a leak anywhere on the
// HTTP/2 input path (nghttp2's callbacks, the session's stream map, the
// router behind it) and a connection that outlives its input (the read is
// bounded: a bridge that neither answers nor closes within 5 s traps).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "bridge/bridge.h"
#include "fuzz_common.h"
#include "grpcpp/create_channel.h"

namespace {

constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

gravity::bridge::Bridge* StartBridge() {
  gravity::bridge::BridgeOptions options;
  options.listen = "127.0.0.1:0";
  options.threads = 1;
  options.header_timeout = absl::Seconds(2);
  options.accept_timeout = absl::Seconds(2);
  auto descriptors = gravity::bridge::DescriptorsOfLinkedServices({"streaming.v1.Streaming"});
  gravity::fuzz::Require(descriptors.ok(), "the example service's descriptors are linked");
  // Port 1 on loopback: refused at once, so every call ends UNAVAILABLE.
  auto channel = grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials());
  auto bridge = gravity::bridge::Bridge::Start(options, channel, *descriptors);
  gravity::fuzz::Require(bridge.ok(), "the bridge starts");
  return bridge->release();  // lives for the whole run
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static gravity::bridge::Bridge* bridge = StartBridge();
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  gravity::fuzz::Require(fd >= 0, "a socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(bridge->port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  gravity::fuzz::Require(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0,
                         "the bridge accepts");
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string input(kPreface, sizeof kPreface - 1);
  input.append(reinterpret_cast<const char*>(data), size);
  // The bridge may close early (a protocol error): a failed send is fine.
  for (size_t sent = 0; sent < input.size();) {
    const ssize_t n = ::send(fd, input.data() + sent, input.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  char buffer[16384];
  for (;;) {
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n == 0) break;  // closed: the connection ended with its input
    if (n < 0) {
      gravity::fuzz::Require(errno == ECONNRESET,
                             "the bridge closes within 5 s of the input's end");
      break;
    }
  }
  ::close(fd);
  return 0;
}
