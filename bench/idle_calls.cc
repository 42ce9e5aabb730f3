// bench-idle-calls: the gRPC floor under bench/run's T3 (bridge RSS per idle
// SSE stream). Measures how much VmRSS a native gRPC C++ client (the same
// gRPC) grows by per idle server-streaming call: what any process that holds
// one upstream call per stream pays, before a bridge adds its own share.
//
//   bench-idle-calls --server=127.0.0.1:PORT --calls=2000 --channel=warm
//
// The channel is gravity-bridge's: grpc::CreateCustomChannel(server,
// InsecureChannelCredentials(), gravity::bridge::BackendChannelArguments()).
// Each call is streaming.v1.Streaming/Ping (count 1000, interval_ms 600000 as
// T3 asks for, so no message comes) through the generated callback stub with
// a ClientReadReactor: one object per call (reactor, ClientContext, request,
// reply), no deadline (the bridge sets none), one read pending, no thread per
// call. A call counts as held once its initial metadata is in
// (OnReadInitialMetadataDone), which bench-server sends when its handler
// starts, as the bridge counts a stream accepted.
//
// Steps: --warmup_calls calls of --warmup_count messages 1 ms apart, each read
// to its OK end (T3's bridges get the same warm-up before they are measured);
// the measured channel connected; VmRSS; --calls calls opened at once and
// waited for until every one is held; VmRSS again (the larger of now and
// --settle later, as T3 reads the bridge's); every call cancelled (TryCancel)
// and waited for (OnDone). Prints
//   RESULT mode=idle_calls channel=warm|fresh calls=N held=N seconds=T
//          rss_before_kib=A rss_after_kib=B kib_per_call=(B-A)/N ended=N failed=0
//
// --channel: gRPC sizes each new call's arena from its channel's estimate of
// what earlier calls used (CallSizeEstimator: grown to the largest call seen,
// lowered a little by each smaller one), so the floor depends on the channel's
// history:
//   warm   the warm-up runs on the measured channel (gravity-bridge's case:
//          T3 measures it after warm-up streams through it);
//   fresh  the warm-up runs on another channel with the same arguments (and so
//          the same TCP connection, from gRPC's global subchannel pool), so
//          the process is equally warm but the measured calls are the first of
//          their channel: arenas from gRPC's initial estimate.
// Run each in a process of its own: memory freed by one round would be reused
// by the next one and hide from VmRSS.
//
// Every wait is bounded (--timeout); exit status 1 when a call was refused,
// got a message or a status other than CANCELLED, or a wait timed out.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bridge/bridge.h"
#include "grpcpp/grpcpp.h"
#include "streaming/v1/streaming.grpc.pb.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "bench-server's host:port");
ABSL_FLAG(int, calls, 2000, "idle calls held at once");
ABSL_FLAG(std::string, channel, "warm",
          "warm: the warm-up runs on the measured channel; fresh: on another channel");
ABSL_FLAG(int, warmup_calls, 20, "calls of the warm-up, one after another (0: none)");
ABSL_FLAG(int, warmup_count, 200, "messages per warm-up call, 1 ms apart");
ABSL_FLAG(int, count, 1000, "Ping count of the idle calls");
ABSL_FLAG(int, interval_ms, 600000, "Ping interval_ms of the idle calls (no message comes)");
ABSL_FLAG(absl::Duration, settle, absl::Seconds(1),
          "VmRSS is read again this long after every call is held (the larger counts)");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(120), "bound of every wait");

namespace {

using streaming::v1::PingReply;
using streaming::v1::PingRequest;
using streaming::v1::Streaming;

long RssKib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// What every call of one round reports to; the waits are on `mu`.
struct Round {
  absl::Mutex mu;
  int held ABSL_GUARDED_BY(mu) = 0;     // initial metadata received
  int refused ABSL_GUARDED_BY(mu) = 0;  // no initial metadata: the status says why
  int done ABSL_GUARDED_BY(mu) = 0;     // OnDone
  int failed ABSL_GUARDED_BY(mu) = 0;
  std::string first_error ABSL_GUARDED_BY(mu);

  void Fail(const std::string& error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    ++failed;
    if (first_error.empty()) first_error = error;
  }
  // Waits until `*counter + extra` (both under mu) reaches n; false on timeout.
  bool AwaitCount(const int* counter, const int* extra, int n, absl::Duration bound)
      ABSL_LOCKS_EXCLUDED(mu) {
    absl::MutexLock lock(&mu);
    auto reached = [counter, extra, n]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return *counter + (extra == nullptr ? 0 : *extra) >= n;
    };
    return mu.AwaitWithTimeout(absl::Condition(&reached), bound);
  }
};

// One call: gRPC runs its callbacks one at a time, on its own threads.
class Call : public grpc::ClientReadReactor<PingReply> {
 public:
  // expect_messages < 0: an idle call, ended by Cancel; else a call that must
  // deliver that many messages and end OK.
  Call(Round* round, int64_t expect_messages) : round_(round), expect_messages_(expect_messages) {}

  void Start(Streaming::Stub& stub, const PingRequest& request) {
    request_ = request;
    stub.async()->Ping(&context_, &request_, this);
    StartRead(&reply_);
    StartCall();
  }
  void Cancel() { context_.TryCancel(); }

  void OnReadInitialMetadataDone(bool ok) override {
    absl::MutexLock lock(&round_->mu);
    if (ok) {
      ++round_->held;
    } else {
      ++round_->refused;
    }
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;  // the end: OnDone follows
    ++messages_;
    StartRead(&reply_);
  }
  void OnDone(const grpc::Status& status) override {
    std::string error;
    if (expect_messages_ < 0) {
      if (messages_ > 0) error = absl::StrCat("an idle call got ", messages_, " message(s)");
      if (error.empty() && status.error_code() != grpc::StatusCode::CANCELLED) {
        error = absl::StrCat("an idle call ended with ", status.error_code(), ": ",
                             status.error_message());
      }
    } else if (!status.ok()) {
      error = absl::StrCat("a warm-up call ended with ", status.error_code(), ": ",
                           status.error_message());
    } else if (messages_ != expect_messages_) {
      error = absl::StrCat("a warm-up call got ", messages_, " of ", expect_messages_, " messages");
    }
    absl::MutexLock lock(&round_->mu);
    if (!error.empty()) round_->Fail(error);
    ++round_->done;
  }

 private:
  Round* const round_;
  const int64_t expect_messages_;
  grpc::ClientContext context_;
  PingRequest request_;
  PingReply reply_;
  int64_t messages_ = 0;
};

std::shared_ptr<grpc::Channel> BridgeChannel(const std::string& target) {
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(),
                                   gravity::bridge::BackendChannelArguments());
}

[[noreturn]] void Die(const std::string& error) {
  std::cerr << "bench-idle-calls: " << error << "\n";
  std::cout.flush();
  // Calls may still be in flight: no destructors, no waiting for them.
  std::_Exit(1);
}

// The warm-up: calls one after another, each read to its OK end.
void WarmUp(Streaming::Stub& stub, int calls, int count, absl::Duration bound, Round& round) {
  PingRequest request;
  request.set_to("bench");
  request.set_count(count);
  request.set_interval_ms(1);
  for (int i = 0; i < calls; ++i) {
    auto call = std::make_unique<Call>(&round, count);
    call->Start(stub, request);
    if (!round.AwaitCount(&round.done, nullptr, i + 1, bound)) {
      Die("a warm-up call did not end in time");
    }
    absl::MutexLock lock(&round.mu);
    if (round.failed > 0) Die(round.first_error);
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "VmRSS per idle server-streaming call of a native gRPC client on gravity-bridge's "
      "backend channel arguments (bench/run's T3 floor).");
  absl::ParseCommandLine(argc, argv);
  const std::string server = absl::GetFlag(FLAGS_server);
  const std::string mode = absl::GetFlag(FLAGS_channel);
  const int n = absl::GetFlag(FLAGS_calls);
  const absl::Duration bound = absl::GetFlag(FLAGS_timeout);
  if (mode != "warm" && mode != "fresh") Die("--channel wants warm or fresh");
  if (n <= 0) Die("--calls must be > 0");

  // Created in this order in both modes, so only the warm-up's channel differs.
  auto measured = BridgeChannel(server);
  auto other = BridgeChannel(server);
  auto measured_stub = Streaming::NewStub(measured);
  auto other_stub = Streaming::NewStub(other);
  Round warmup;  // outlives every call that reports to it, as `round` below
  WarmUp(mode == "warm" ? *measured_stub : *other_stub, absl::GetFlag(FLAGS_warmup_calls),
         absl::GetFlag(FLAGS_warmup_count), bound, warmup);
  if (!measured->WaitForConnected(std::chrono::system_clock::now() +
                                  absl::ToChronoSeconds(bound))) {
    Die("the measured channel did not connect");
  }
  // Let the warm-up's calls be destroyed (their arenas feed the estimate).
  absl::SleepFor(absl::Milliseconds(200));

  PingRequest request;
  request.set_to("bench");
  request.set_count(absl::GetFlag(FLAGS_count));
  request.set_interval_ms(absl::GetFlag(FLAGS_interval_ms));
  Round round;
  std::vector<std::unique_ptr<Call>> calls;
  calls.reserve(n);
  const long rss_before = RssKib();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    calls.push_back(std::make_unique<Call>(&round, -1));
    calls.back()->Start(*measured_stub, request);
  }
  const bool all_in = round.AwaitCount(&round.held, &round.refused, n, bound);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  long rss_after = RssKib();
  absl::SleepFor(absl::GetFlag(FLAGS_settle));
  rss_after = std::max(rss_after, RssKib());
  int held, refused;
  {
    absl::MutexLock lock(&round.mu);
    held = round.held;
    refused = round.refused;
  }

  for (auto& call : calls) call->Cancel();
  if (!round.AwaitCount(&round.done, nullptr, n, bound)) {
    absl::MutexLock lock(&round.mu);
    Die(absl::StrCat("only ", round.done, " of ", n, " calls ended after cancelling"));
  }
  calls.clear();

  absl::MutexLock lock(&round.mu);
  if (!all_in) round.Fail(absl::StrCat("only ", held + refused, " of ", n, " calls answered"));
  if (refused > 0) round.Fail(absl::StrCat(refused, " calls refused"));
  std::printf(
      "RESULT mode=idle_calls channel=%s calls=%d held=%d seconds=%.3f rss_before_kib=%ld "
      "rss_after_kib=%ld kib_per_call=%.2f ended=%d failed=%d\n",
      mode.c_str(), n, held, seconds, rss_before, rss_after,
      static_cast<double>(rss_after - rss_before) / n, round.done, round.failed);
  if (round.failed > 0) std::cerr << "bench-idle-calls: " << round.first_error << "\n";
  return round.failed > 0 ? 1 : 0;
}
