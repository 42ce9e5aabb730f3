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
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <atomic>
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
  int64_t next_seq = 1;
  std::string error;
  std::vector<int64_t> latencies;  // ns
};

void Run(Streaming::Stub& stub, int streams, int count, int interval_ms, Round& round) {
  std::vector<PerStream> per(streams);
  std::vector<gravity::client::AsyncStream> calls;
  calls.reserve(streams);
  PingRequest request;
  request.set_to("bench");
  request.set_count(count);
  request.set_interval_ms(interval_ms);
  for (int i = 0; i < streams; ++i) {
    PerStream* mine = &per[i];
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
  const int streams = absl::GetFlag(FLAGS_streams);
  Round round;
  const auto start = std::chrono::steady_clock::now();
  Run(*stub, streams, absl::GetFlag(FLAGS_count), absl::GetFlag(FLAGS_interval_ms), round);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu_at_end = CpuSeconds();
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
  std::printf(" channel=%s\n", channel.c_str());
  return round.failed > 0 ? 1 : 0;
}
