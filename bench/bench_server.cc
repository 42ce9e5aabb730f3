// bench-server: the streaming.v1.Streaming service for bench/run, with send
// stamps and call counters.
//
//   bench-server --listen=127.0.0.1:0 --stats_file=/tmp/x/stats
//
// Only Ping is served (StreamUsers answers UNIMPLEMENTED; nothing in bench/
// calls it). Ping sends `count` PingReplys (0 means 5), one every
// `interval_ms` (0 means 1000) from the service's shared timer thread
// (Stream::Every, no thread per stream), `seq` 1..count, and closes OK
// (or with `fail_code`). Each reply's `message` is its send time: decimal
// CLOCK_MONOTONIC nanoseconds, taken right before Send, so a reader on the
// same machine gets latency = its own CLOCK_MONOTONIC now - stamp.
//
// Counters: handler starts, OnCancel hooks fired (client gone, deadline,
// shutdown, slow consumer) and Close calls by the handler (count reached).
// With --stats_file they are written every 50 ms (to PATH.tmp, then renamed
// over PATH, so a reader never sees half a file):
//   started N
//   cancelled N
//   closed N
// and they are printed on stdout at exit ("bench-server stats: ...").
// Prints "bench-server listening on HOST:PORT" once it serves; SIGINT/SIGTERM
// stop it (bounded drain, --drain).
#include <time.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/server.h"
#include "server/service.h"
#include "server/stream.h"
#include "streaming/v1/streaming.pb.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "host:port to listen on; port 0 picks one");
ABSL_FLAG(std::string, stats_file, "", "write the call counters here every 50 ms");
ABSL_FLAG(absl::Duration, drain, absl::Seconds(1), "how long open streams may run after SIGTERM");

namespace {

using gravity::server::Stream;
using streaming::v1::PingReply;
using streaming::v1::PingRequest;

std::atomic<int64_t> started{0};
std::atomic<int64_t> cancelled{0};
std::atomic<int64_t> closed{0};

int64_t MonotonicNanos() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
}

std::string Stats() {
  return absl::StrCat("started ", started.load(), "\ncancelled ", cancelled.load(), "\nclosed ",
                      closed.load(), "\n");
}

grpc::Status Ping(const PingRequest& request, Stream<PingReply> stream) {
  if (request.count() < 0 || request.interval_ms() < 0 || request.fail_code() < 0 ||
      request.fail_code() > 16) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "count, interval_ms must be >= 0, fail_code 0-16");
  }
  started.fetch_add(1);
  stream.OnCancel([] { cancelled.fetch_add(1); });
  const int64_t count = request.count() == 0 ? 5 : request.count();
  const absl::Duration interval =
      absl::Milliseconds(request.interval_ms() == 0 ? 1000 : request.interval_ms());
  const grpc::Status final_status =
      request.fail_code() == 0
          ? grpc::Status::OK
          : grpc::Status(static_cast<grpc::StatusCode>(request.fail_code()), "failed as asked");
  // Every callback of one stream runs on the service's one timer thread, one
  // at a time, so the counter needs no lock; atomic documents the sharing.
  auto next = std::make_shared<std::atomic<int64_t>>(1);
  stream.Every(interval, [next, count, final_status](Stream<PingReply>& s) {
    const int64_t seq = next->fetch_add(1);
    if (seq > count) return;
    PingReply reply;
    reply.set_seq(seq);
    reply.set_message(absl::StrCat(MonotonicNanos()));
    s.Send(reply);
    if (seq == count) {
      closed.fetch_add(1);
      s.Close(final_status);
    }
  });
  return grpc::Status::OK;
}

void WriteStats(const std::string& path) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << Stats();
    if (!out) return;
  }
  std::rename(tmp.c_str(), path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("streaming.v1.Streaming/Ping with send stamps, for bench/run.");
  absl::ParseCommandLine(argc, argv);

  gravity::server::Service service("streaming.v1.Streaming");
  absl::Status added = service.AddStream<PingRequest, PingReply>("Ping", Ping);
  if (!added.ok()) {
    std::cerr << "bench-server: " << added << "\n";
    return 1;
  }
  gravity::server::ServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.drain_timeout = absl::GetFlag(FLAGS_drain);
  auto server = gravity::server::Server::Start(options, {&service});
  if (!server.ok()) {
    std::cerr << "bench-server: " << server.status() << "\n";
    return 1;
  }

  const std::string stats_file = absl::GetFlag(FLAGS_stats_file);
  absl::Notification stop;
  std::thread writer;
  if (!stats_file.empty()) {
    WriteStats(stats_file);
    writer = std::thread([&stop, stats_file] {
      while (!stop.WaitForNotificationWithTimeout(absl::Milliseconds(50))) WriteStats(stats_file);
    });
  }
  std::cout << "bench-server listening on " << (*server)->address() << std::endl;
  (*server)->RunUntilSignal();
  stop.Notify();
  if (writer.joinable()) writer.join();
  if (!stats_file.empty()) WriteStats(stats_file);
  std::cout << "bench-server stats: started " << started.load() << " cancelled " << cancelled.load()
            << " closed " << closed.load() << std::endl;
  return 0;
}
