// bench-native-latency: the native gRPC baseline of bench/run's latency
// target. Opens --streams calls of streaming.v1.Streaming/Ping (count,
// interval_ms) on bench-server with gravity::client::OpenAsync (callbacks on
// gRPC's threads, no thread per stream), takes latency = CLOCK_MONOTONIC now
// - the stamp bench-server put in each message, checks that every stream
// carried seq 1..count in order and ended OK, and prints one line in the
// format of bench/loadgen.c's latency mode:
//   RESULT mode=native streams=S events=E seconds=T failed=F p50_us=.. p99_us=..
//          p999_us=.. max_us=..
//
//   bench-native-latency --server=127.0.0.1:PORT --streams=20 --count=5000 --interval_ms=1
//
// --channel=bridge makes the channel as gravity-bridge makes its backend
// channel (grpc::CreateCustomChannel with
// gravity::bridge::BackendChannelArguments()); the default is
// grpc::CreateChannel. --cpu adds the process's CPU (getrusage: utime +
// stime of every thread, gRPC's included) from the first message of the
// measured round to the end of its last stream, per message:
//   ... cpu_s=C cpu_us_per_event=X
// bench/run's T1 floor ("gRPC read") is --channel=bridge --cpu at T1's load:
// what reading the backend streams costs a native gRPC client that does
// nothing else (no JSON, no socket to a browser).
//
// --sse_out makes it a minimal bridge: before gRPC starts it forks a reader
// process that opens one loopback TCP connection per stream and reads it to
// EOF; each message of the measured round is then written as a chunk-framed
// SSE event (id: seq, data: {"message":"..","seq":".."}; the bytes
// gravity-bridge writes) with one sendmsg to its stream's connection
// (TCP_NODELAY, MSG_DONTWAIT), on the gRPC thread that read it. bench/run's
// "one process" T1 floor is --channel=bridge --cpu --sse_out: reads and
// writes share their wake-ups, as in a bridge.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bridge/bridge.h"
#include "client/client.h"
#include "grpcpp/grpcpp.h"
#include "streaming/v1/streaming.grpc.pb.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "bench-server's host:port");
ABSL_FLAG(int, streams, 20, "concurrent streams");
ABSL_FLAG(int, count, 5000, "messages per stream");
ABSL_FLAG(int, interval_ms, 1, "Ping interval_ms");
ABSL_FLAG(int, warmup, 200, "messages of a 1-stream warm-up call, not measured (0: none)");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(120), "deadline of every call");
ABSL_FLAG(std::string, channel, "default",
          "default: grpc::CreateChannel; bridge: gravity::bridge::BackendChannelArguments(), as "
          "gravity-bridge makes its backend channel");
ABSL_FLAG(bool, sse_out, false,
          "write each message of the measured round as an SSE event, one sendmsg, to a loopback "
          "connection per stream read by a forked process (a minimal bridge)");
ABSL_FLAG(bool, cpu, false,
          "also print the process CPU per message (cpu_s, cpu_us_per_event), from the first "
          "message of the measured round to the end of its last stream");

namespace {

using streaming::v1::PingReply;
using streaming::v1::PingRequest;
using streaming::v1::Streaming;

int64_t MonotonicNanos() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
}

double CpuSeconds() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

struct Round {
  absl::Mutex mu;
  int done ABSL_GUARDED_BY(mu) = 0;
  int failed ABSL_GUARDED_BY(mu) = 0;
  std::vector<int64_t> latencies ABSL_GUARDED_BY(mu);  // ns, merged at the end
  std::string first_error ABSL_GUARDED_BY(mu);
  // The process CPU at the round's first message (read once every stream
  // is done, after `mu` ordered it).
  std::atomic<bool> first_seen{false};
  double cpu_at_first = 0;
};

// Per stream: only that stream's callbacks touch it (they run one at a time);
// read by Run once every stream is done.
struct PerStream {
  int fd = -1;  // --sse_out: this stream's connection
  int64_t next_seq = 1;
  std::string error;
  std::vector<int64_t> latencies;  // ns
};

// --sse_out: one sendmsg of the event, as gravity-bridge's DirectWriter
// sends it (chunk size line, event, CRLF); false when it was not sent whole.
bool SendEvent(int fd, const PingReply& reply) {
  char body[256];
  const int body_length =
      std::snprintf(body, sizeof body, "id: %lld\ndata: {\"message\":\"%s\",\"seq\":\"%lld\"}\n\n",
                    static_cast<long long>(reply.seq()), reply.message().c_str(),
                    static_cast<long long>(reply.seq()));
  if (body_length <= 0 || body_length >= static_cast<int>(sizeof body)) return false;
  char size_line[24];
  const int size_length = std::snprintf(size_line, sizeof size_line, "%x\r\n", body_length);
  static char crlf[] = "\r\n";
  iovec parts[3] = {{size_line, static_cast<size_t>(size_length)},
                    {body, static_cast<size_t>(body_length)},
                    {crlf, 2}};
  msghdr message{};
  message.msg_iov = parts;
  message.msg_iovlen = 3;
  ssize_t sent;
  do {
    sent = ::sendmsg(fd, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  return sent == size_length + body_length + 2;
}

// --sse_out: forks (before gRPC starts, while this process has one thread)
// a reader that connects `streams` times to a listening loopback socket and
// reads every connection to EOF; returns the accepted connections.
std::vector<int> OpenSseOut(int streams, absl::Duration bound, pid_t& reader) {
  std::vector<int> fds;
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      listen(listener, streams + 16) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    std::perror("bench-native-latency: listen");
    return fds;
  }
  std::fflush(stdout);
  reader = fork();
  if (reader < 0) return fds;
  if (reader == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(static_cast<unsigned>(absl::ToInt64Seconds(bound)) + 5);
    close(listener);
    int epoll = epoll_create1(0);
    for (int i = 0; i < streams; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      if (fd < 0) _exit(1);
      if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 &&
          errno != EINPROGRESS) {
        _exit(1);
      }
      epoll_event event{};
      event.events = EPOLLIN;
      event.data.fd = fd;
      epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
    }
    static char buffer[65536];
    for (int open = streams; open > 0;) {
      epoll_event events[64];
      int n = epoll_wait(epoll, events, 64, -1);
      for (int k = 0; k < n; ++k) {
        for (;;) {
          ssize_t got = read(events[k].data.fd, buffer, sizeof buffer);
          if (got < 0 && (errno == EINTR)) continue;
          if (got < 0 && errno == EAGAIN) break;
          if (got <= 0) {
            close(events[k].data.fd);
            --open;
            break;
          }
        }
      }
    }
    _exit(0);
  }
  for (int i = 0; i < streams; ++i) {
    pollfd ready{listener, POLLIN, 0};
    int fd = -1;
    if (poll(&ready, 1, 10000) != 1 || (fd = accept(listener, nullptr, nullptr)) < 0) break;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fds.push_back(fd);
  }
  close(listener);
  return fds;
}

// Ends the connections and waits (bounded) for the reader; true when it
// read them all to EOF.
bool CloseSseOut(const std::vector<int>& fds, pid_t reader) {
  for (int fd : fds) {
    ::send(fd, "0\r\n\r\n", 5, MSG_NOSIGNAL);
    close(fd);
  }
  if (reader <= 0) return false;
  int status = 0;
  for (int i = 0; i < 1000; ++i) {
    pid_t got = waitpid(reader, &status, WNOHANG);
    if (got == reader) return WIFEXITED(status) && WEXITSTATUS(status) == 0;
    usleep(10000);
  }
  kill(reader, SIGKILL);
  waitpid(reader, &status, 0);
  return false;
}

void Run(Streaming::Stub& stub, int streams, int count, int interval_ms, Round& round,
         const std::vector<int>& sse_fds = {}) {
  std::vector<PerStream> per(streams);
  std::vector<gravity::client::AsyncStream> calls;
  calls.reserve(streams);
  PingRequest request;
  request.set_to("bench");
  request.set_count(count);
  request.set_interval_ms(interval_ms);
  for (int i = 0; i < streams; ++i) {
    PerStream* mine = &per[i];
    if (i < static_cast<int>(sse_fds.size())) mine->fd = sse_fds[i];
    mine->latencies.reserve(static_cast<size_t>(count));
    calls.push_back(gravity::client::OpenAsync(
        stub, &Streaming::Stub::async::Ping, request,
        gravity::client::CallOptions().WithTimeout(absl::GetFlag(FLAGS_timeout)),
        [&round, mine](const PingReply& reply) {
          const int64_t now = MonotonicNanos();
          if (!round.first_seen.load(std::memory_order_relaxed) &&
              !round.first_seen.exchange(true)) {
            round.cpu_at_first = CpuSeconds();
          }
          int64_t stamp = 0;
          if (!absl::SimpleAtoi(reply.message(), &stamp)) {
            if (mine->error.empty()) mine->error = "message is not a stamp";
            return;
          }
          if (reply.seq() != mine->next_seq && mine->error.empty()) {
            mine->error = absl::StrCat("seq ", reply.seq(), ", expected ", mine->next_seq);
          }
          mine->next_seq = reply.seq() + 1;
          if (mine->fd >= 0 && !SendEvent(mine->fd, reply) && mine->error.empty()) {
            mine->error = "sendmsg did not send the whole event";
          }
          mine->latencies.push_back(now - stamp);
        },
        [&round, mine, count](absl::Status status) {
          std::string error = mine->error;
          if (error.empty() && !status.ok()) error = status.ToString();
          if (error.empty() && mine->next_seq != count + 1) {
            error = absl::StrCat("ended after seq ", mine->next_seq - 1, " of ", count);
          }
          absl::MutexLock lock(&round.mu);
          if (!error.empty()) {
            ++round.failed;
            if (round.first_error.empty()) round.first_error = error;
          }
          ++round.done;
        }));
  }
  absl::MutexLock lock(&round.mu);
  const absl::Duration bound = absl::GetFlag(FLAGS_timeout) + absl::Seconds(5);
  auto all_done = [&round, streams]()
                      ABSL_NO_THREAD_SAFETY_ANALYSIS { return round.done == streams; };
  if (!round.mu.AwaitWithTimeout(absl::Condition(&all_done), bound)) {
    round.failed += streams - round.done;
    round.first_error = "timed out";
    for (auto& call : calls) call.Cancel();
    round.mu.Await(absl::Condition(&all_done));
  }
  for (const PerStream& stream : per) {
    round.latencies.insert(round.latencies.end(), stream.latencies.begin(), stream.latencies.end());
  }
}

double Percentile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(q * static_cast<double>(sorted.size()));
  if (i >= sorted.size()) i = sorted.size() - 1;
  return static_cast<double>(sorted[i]) / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Native gRPC latency of bench-server's stamped Ping.");
  absl::ParseCommandLine(argc, argv);
  const int streams = absl::GetFlag(FLAGS_streams);
  pid_t sse_reader = -1;
  std::vector<int> sse_fds;
  if (absl::GetFlag(FLAGS_sse_out)) {
    sse_fds = OpenSseOut(streams, absl::GetFlag(FLAGS_timeout), sse_reader);
    if (static_cast<int>(sse_fds.size()) != streams) {
      std::cerr << "bench-native-latency: --sse_out: " << sse_fds.size() << " of " << streams
                << " connections\n";
      CloseSseOut(sse_fds, sse_reader);
      return 1;
    }
  }
  const std::string channel = absl::GetFlag(FLAGS_channel);
  if (channel != "default" && channel != "bridge") {
    std::cerr << "bench-native-latency: --channel must be default or bridge\n";
    return 2;
  }
  auto stub = Streaming::NewStub(
      channel == "bridge"
          ? grpc::CreateCustomChannel(absl::GetFlag(FLAGS_server),
                                      grpc::InsecureChannelCredentials(),
                                      gravity::bridge::BackendChannelArguments())
          : grpc::CreateChannel(absl::GetFlag(FLAGS_server), grpc::InsecureChannelCredentials()));
  if (absl::GetFlag(FLAGS_warmup) > 0) {
    Round warm;
    Run(*stub, 1, absl::GetFlag(FLAGS_warmup), 1, warm);
    absl::MutexLock lock(&warm.mu);
    if (warm.failed > 0) {
      std::cerr << "bench-native-latency: warm-up failed: " << warm.first_error << "\n";
      return 1;
    }
  }
  Round round;
  const auto start = std::chrono::steady_clock::now();
  Run(*stub, streams, absl::GetFlag(FLAGS_count), absl::GetFlag(FLAGS_interval_ms), round, sse_fds);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu_at_end = CpuSeconds();
  if (!sse_fds.empty() && !CloseSseOut(sse_fds, sse_reader)) {
    absl::MutexLock lock(&round.mu);
    ++round.failed;
    if (round.first_error.empty()) round.first_error = "--sse_out: the reader failed";
  }
  absl::MutexLock lock(&round.mu);
  std::sort(round.latencies.begin(), round.latencies.end());
  if (round.failed > 0) std::cerr << "bench-native-latency: " << round.first_error << "\n";
  std::printf(
      "RESULT mode=native streams=%d events=%zu seconds=%.3f failed=%d p50_us=%.0f p99_us=%.0f "
      "p999_us=%.0f max_us=%.0f",
      streams, round.latencies.size(), seconds, round.failed, Percentile(round.latencies, 0.50),
      Percentile(round.latencies, 0.99), Percentile(round.latencies, 0.999),
      round.latencies.empty() ? 0.0 : static_cast<double>(round.latencies.back()) / 1000.0);
  if (absl::GetFlag(FLAGS_cpu)) {
    const double cpu = round.first_seen.load() ? cpu_at_end - round.cpu_at_first : 0;
    std::printf(
        " cpu_s=%.3f cpu_us_per_event=%.2f", cpu,
        round.latencies.empty() ? 0.0 : cpu * 1e6 / static_cast<double>(round.latencies.size()));
  }
  std::printf(" channel=%s sse_out=%d\n", channel.c_str(), sse_fds.empty() ? 0 : 1);
  return round.failed > 0 ? 1 : 0;
}
