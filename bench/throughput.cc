// throughput: events/s a native gravity client reads from a firehose service,
// against the events/s the same service delivers through the SSE bridge.
//
//   bazel build -c opt --symlink_prefix=/ //bench:throughput
//   "$(bazel info -c opt bazel-bin)/bench/throughput" --streams=1,8
//
// One process holds everything: a gravity::server::Service whose Ping sends
// `count` PingReply messages as fast as the stream takes them, a
// gravity::server::Server on 127.0.0.1:0, a gravity::bridge::Bridge whose
// backend channel goes to that server over TCP (made with
// gravity::bridge::BackendChannelArguments(), as gravity-bridge makes it), and
// the readers:
//
//   native        gravity::client::Open + the reader loop (Stream<T>::Next),
//                 one reader thread per stream
//   native_async  gravity::client::OpenAsync: callbacks on gRPC's threads
//   bridge        HTTP/1.1 GET of the SSE route on raw non-blocking sockets,
//                 one poll() thread for every stream; counts "\n\n"-ended
//                 events and parses nothing else
//
// For each --streams value S, each mode opens S streams of --count messages
// (default --total / S; --total defaults to 100000) at once and reports the
// total events/s, the CPU time the whole process used meanwhile (server +
// bridge + reader: 2 cores are shared by all of them, and by whatever else
// runs on the machine), and the ratio bridge/native. Prints results; asserts nothing but that every
// stream delivered all its messages and ended OK.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bridge/bridge.h"
#include "client/client.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "server/server.h"
#include "server/service.h"
#include "server/stream.h"
#include "streaming/v1/streaming.grpc.pb.h"
#include "streaming/v1/streaming.pb.h"

ABSL_FLAG(std::vector<std::string>, streams, std::vector<std::string>({"1", "8"}),
          "comma-separated numbers of concurrent streams; one round per value");
ABSL_FLAG(int64_t, count, 0, "messages per stream; 0 = --total / streams");
ABSL_FLAG(int64_t, total, 100000,
          "messages per round (all streams together) when --count is 0; 100000 keeps the "
          "default run under 30 s on a 2-core machine");
ABSL_FLAG(std::vector<std::string>, modes, std::vector<std::string>({"native", "bridge"}),
          "comma-separated: native, native_async, bridge");
ABSL_FLAG(int, bridge_threads, 2, "the bridge's Asio threads (BridgeOptions::threads)");
ABSL_FLAG(int64_t, warmup, 2000, "messages of one warm-up stream per mode before timing");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(60), "give up on a round after this long");

namespace {

using gravity::server::Stream;
using streaming::v1::PingReply;
using streaming::v1::PingRequest;
using streaming::v1::Streaming;

constexpr char kService[] = "streaming.v1.Streaming";

// ---- The firehose service --------------------------------------------------

// Sends seq 1..count as fast as the stream takes them, without ever hitting
// the slow-consumer bound: it sends until the stream is Backlogged(), then
// stops; OnDrained (a gRPC thread) kicks it again. No thread of its own, no
// blocking: a kick that comes while a pump runs only makes that pump go round
// once more.
class Firehose {
 public:
  Firehose(Stream<PingReply> stream, int64_t count, std::string message)
      : stream_(std::move(stream)), count_(count) {
    reply_.set_message(std::move(message));
  }

  void Kick() {
    if (kicks_.fetch_add(1, std::memory_order_acq_rel) != 0) return;  // the pumper goes again
    do {
      Pump();
    } while (kicks_.fetch_sub(1, std::memory_order_acq_rel) != 1);
  }

 private:
  // Only one thread at a time runs it (Kick), so next_ and reply_ need no lock.
  void Pump() {
    while (next_ <= count_) {
      if (stream_.Backlogged()) return;  // OnDrained kicks again
      reply_.set_seq(next_);
      if (!stream_.Send(reply_)) return;  // the client went away
      ++next_;
    }
    stream_.Close();  // later calls do nothing
  }

  const Stream<PingReply> stream_;
  const int64_t count_;
  PingReply reply_;
  int64_t next_ = 1;
  std::atomic<int> kicks_{0};
};

absl::StatusOr<std::unique_ptr<gravity::server::Service>> MakeFirehoseService() {
  auto service = std::make_unique<gravity::server::Service>(kService);
  absl::Status added = service->AddStream<PingRequest, PingReply>(
      "Ping", [](const PingRequest& request, Stream<PingReply> stream) -> grpc::Status {
        if (request.count() < 0) {
          return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "count must not be negative");
        }
        auto hose = std::make_shared<Firehose>(stream, request.count(),
                                               absl::StrCat("Sending ping to ", request.to()));
        // The hook owns the firehose; the stream drops its hooks when it ends.
        stream.OnDrained([hose] { hose->Kick(); });
        hose->Kick();
        return grpc::Status::OK;
      });
  if (!added.ok()) return added;
  return service;
}

// ---- Measuring ---------------------------------------------------------------

struct Result {
  int64_t events = 0;
  int64_t bytes = 0;  // bridge only: HTTP bytes read
  double seconds = 0;
  double cpu_seconds = 0;  // the whole process: server, bridge and readers
  std::string error;       // empty when every stream delivered everything, OK
  double rate() const { return seconds > 0 ? events / seconds : 0; }
};

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Wall and CPU time of `run`, which fills events / bytes / error.
template <typename Run>
Result Measure(Run run) {
  Result result;
  const double cpu_before = CpuSeconds();
  const auto start = std::chrono::steady_clock::now();
  run(result);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.cpu_seconds = CpuSeconds() - cpu_before;
  return result;
}

PingRequest MakeRequest(int64_t count) {
  PingRequest request;
  request.set_to("bench");
  request.set_count(static_cast<int32_t>(count));
  return request;
}

// native: gravity::client::Open and the reader loop, one thread per stream.
Result RunNative(Streaming::Stub& stub, int streams, int64_t count) {
  return Measure([&](Result& result) {
    std::atomic<int64_t> events{0};
    absl::Mutex mu;
    std::string error;
    std::vector<std::thread> readers;
    for (int i = 0; i < streams; ++i) {
      readers.emplace_back([&] {
        auto options = gravity::client::CallOptions().WithTimeout(absl::GetFlag(FLAGS_timeout));
        auto pings =
            gravity::client::Open(stub, &Streaming::Stub::async::Ping, MakeRequest(count), options);
        absl::Status status;
        int64_t read = 0;
        if (!pings.ok()) {
          status = pings.status();
        } else {
          PingReply reply;
          while (pings->Next(&reply)) ++read;
          status = pings->status();
        }
        events += read;
        if (!status.ok() || read != count) {
          absl::MutexLock lock(&mu);
          error =
              absl::StrCat("a stream read ", read, " of ", count, ", status ", status.ToString());
        }
      });
    }
    for (std::thread& reader : readers) reader.join();
    result.events = events;
    result.error = error;
  });
}

// native_async: gravity::client::OpenAsync, callbacks on gRPC's threads.
Result RunNativeAsync(Streaming::Stub& stub, int streams, int64_t count) {
  return Measure([&](Result& result) {
    struct Shared {
      explicit Shared(int w) : want(w) {}
      const int want;
      std::atomic<int64_t> events{0};
      absl::Mutex mu;
      int done ABSL_GUARDED_BY(mu) = 0;
      std::string error ABSL_GUARDED_BY(mu);
    } shared(streams);
    std::vector<gravity::client::AsyncStream> calls;
    for (int i = 0; i < streams; ++i) {
      auto options = gravity::client::CallOptions().WithTimeout(absl::GetFlag(FLAGS_timeout));
      calls.push_back(gravity::client::OpenAsync(
          stub, &Streaming::Stub::async::Ping, MakeRequest(count), options,
          [&shared](const PingReply&) { shared.events.fetch_add(1, std::memory_order_relaxed); },
          [&shared](absl::Status status) {
            absl::MutexLock lock(&shared.mu);
            if (!status.ok()) shared.error = status.ToString();
            ++shared.done;
          }));
    }
    absl::MutexLock lock(&shared.mu);
    shared.mu.Await(absl::Condition(
        +[](Shared* s) ABSL_NO_THREAD_SAFETY_ANALYSIS { return s->done == s->want; }, &shared));
    result.events = shared.events;
    result.error = shared.error;
    if (result.error.empty() && result.events != streams * count) {
      result.error = absl::StrCat(result.events, " events, expected ", streams * count);
    }
  });
}

// One SSE response read off a non-blocking socket.
struct SseReader {
  int fd = -1;
  int64_t events = 0;  // "\n\n"-ended blocks: the opening retry:, the events, the `end`
  int64_t bytes = 0;
  char last = 0;     // the last byte seen, for "\n\n" across reads
  std::string head;  // the first bytes: the status line
  std::string tail;  // the last bytes: the `end` event
  bool eof = false;
};

int ConnectTo(int port, std::string* error) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    *error = absl::StrCat("socket: ", std::strerror(errno));
    return -1;
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    *error = absl::StrCat("connect: ", std::strerror(errno));
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// bridge: S plain HTTP/1.1 requests of the SSE route, read on this thread
// with poll(). `Connection: close` makes the bridge close after the stream,
// so EOF is the end of each response.
Result RunBridge(int port, int streams, int64_t count) {
  return Measure([&](Result& result) {
    const std::string request = absl::StrCat(
        "GET /streaming.v1.Streaming/Ping?to=bench&count=", count,
        " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n");
    std::vector<SseReader> readers(streams);
    for (SseReader& reader : readers) {
      reader.fd = ConnectTo(port, &result.error);
      if (reader.fd < 0) break;
      if (write(reader.fd, request.data(), request.size()) !=
          static_cast<ssize_t>(request.size())) {
        result.error = absl::StrCat("write: ", std::strerror(errno));
        break;
      }
      fcntl(reader.fd, F_SETFL, fcntl(reader.fd, F_GETFL) | O_NONBLOCK);
    }
    std::vector<char> buffer(256 * 1024);
    const absl::Time deadline = absl::Now() + absl::GetFlag(FLAGS_timeout);
    int open = result.error.empty() ? streams : 0;
    std::vector<pollfd> fds;
    while (open > 0) {
      if (absl::Now() > deadline) {
        result.error = "timed out";
        break;
      }
      fds.clear();
      for (const SseReader& reader : readers) {
        if (!reader.eof) fds.push_back({reader.fd, POLLIN, 0});
      }
      if (poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR) {
        result.error = absl::StrCat("poll: ", std::strerror(errno));
        break;
      }
      for (SseReader& reader : readers) {
        if (reader.eof) continue;
        while (true) {
          const ssize_t n = read(reader.fd, buffer.data(), buffer.size());
          if (n == 0) {
            reader.eof = true;
            --open;
            break;
          }
          if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) break;
            result.error = absl::StrCat("read: ", std::strerror(errno));
            reader.eof = true;
            --open;
            break;
          }
          const char* data = buffer.data();
          if (reader.head.size() < 16) reader.head.append(data, std::min<size_t>(n, 16));
          char last = reader.last;
          int64_t events = 0;
          for (const char* p = data; p < data + n; ++p) {
            const char* newline = static_cast<const char*>(std::memchr(p, '\n', data + n - p));
            if (newline == nullptr) {
              last = data[n - 1];
              break;
            }
            if ((newline == data ? last : newline[-1]) == '\n') ++events;
            p = newline;
            last = '\n';
          }
          reader.last = last;
          reader.events += events;
          reader.bytes += n;
          if (n >= 128) {
            reader.tail.assign(data + n - 128, 128);
          } else {
            reader.tail.append(data, n);
            if (reader.tail.size() > 128) reader.tail.erase(0, reader.tail.size() - 128);
          }
        }
      }
    }
    for (SseReader& reader : readers) {
      if (reader.fd >= 0) close(reader.fd);
      // Neither the opening retry: hint nor the `end` event.
      result.events += std::max<int64_t>(reader.events - 2, 0);
      result.bytes += reader.bytes;
      if (!result.error.empty()) continue;
      if (!absl::StartsWith(reader.head, "HTTP/1.1 200")) {
        result.error = absl::StrCat("a response began with \"", reader.head, "\"");
      } else if (reader.events != count + 2 ||
                 !absl::StrContains(reader.tail, "event: end\ndata: {\"code\":0,")) {
        result.error = absl::StrCat("a stream had ", reader.events, " blocks, expected ", count + 2,
                                    " (retry:, the events, an OK end event)");
      }
    }
  });
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return absl::StrCat(one, " ", five, " ", fifteen);
}

std::string Describe(const std::string& mode) {
  if (mode == "native") return "gravity::client::Open, reader loop, 1 thread/stream";
  if (mode == "native_async") return "gravity::client::OpenAsync, callbacks";
  return "HTTP/1.1 SSE via gravity::bridge, raw sockets, 1 poll thread";
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Events/s of a firehose gravity service read natively and through the SSE bridge.");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() > 1) {
    std::cerr << "throughput: unexpected argument " << args[1] << "\n";
    return 2;
  }
  std::vector<int> stream_counts;
  for (const std::string& value : absl::GetFlag(FLAGS_streams)) {
    int n = 0;
    if (!absl::SimpleAtoi(value, &n) || n <= 0) {
      std::cerr << "throughput: --streams wants positive numbers, got " << value << "\n";
      return 2;
    }
    stream_counts.push_back(n);
  }
  const std::vector<std::string> modes = absl::GetFlag(FLAGS_modes);
  for (const std::string& mode : modes) {
    if (mode != "native" && mode != "native_async" && mode != "bridge") {
      std::cerr << "throughput: unknown mode " << mode << "\n";
      return 2;
    }
  }

  auto service = MakeFirehoseService();
  if (!service.ok()) {
    std::cerr << "throughput: " << service.status() << "\n";
    return 1;
  }
  gravity::server::ServerOptions server_options;
  server_options.listen = "127.0.0.1:0";
  server_options.drain_timeout = absl::Seconds(1);
  auto server = gravity::server::Server::Start(server_options, {service->get()});
  if (!server.ok()) {
    std::cerr << "throughput: " << server.status() << "\n";
    return 1;
  }
  auto descriptors = gravity::bridge::DescriptorsOfLinkedServices({kService});
  if (!descriptors.ok()) {
    std::cerr << "throughput: " << descriptors.status() << "\n";
    return 1;
  }
  gravity::bridge::BridgeOptions bridge_options;
  bridge_options.listen = "127.0.0.1:0";
  bridge_options.threads = absl::GetFlag(FLAGS_bridge_threads);
  bridge_options.drain_timeout = absl::Seconds(1);
  // The backend channel as gravity-bridge makes it (BackendChannelArguments).
  auto bridge = gravity::bridge::Bridge::Start(
      bridge_options,
      grpc::CreateCustomChannel((*server)->address(), grpc::InsecureChannelCredentials(),
                                gravity::bridge::BackendChannelArguments()),
      *descriptors);
  if (!bridge.ok()) {
    std::cerr << "throughput: " << bridge.status() << "\n";
    return 1;
  }
  // The native readers get a TCP connection of their own, not the bridge's.
  grpc::ChannelArguments native_arguments;
  native_arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto native_channel = grpc::CreateCustomChannel(
      (*server)->address(), grpc::InsecureChannelCredentials(), native_arguments);
  auto stub = Streaming::NewStub(native_channel);

  std::cout << "throughput: server " << (*server)->address() << ", bridge " << (*bridge)->address()
            << " (" << bridge_options.threads
            << " threads), both in this process, over TCP on loopback\n";
  std::cout << "cores: " << std::thread::hardware_concurrency()
            << ", load average at start: " << LoadAverage() << "\n";

  auto run = [&](const std::string& mode, int streams, int64_t count) {
    if (mode == "native") return RunNative(*stub, streams, count);
    if (mode == "native_async") return RunNativeAsync(*stub, streams, count);
    return RunBridge((*bridge)->port(), streams, count);
  };
  // Connections up, code paged in, allocator warm.
  if (const int64_t warmup = absl::GetFlag(FLAGS_warmup); warmup > 0) {
    for (const std::string& mode : modes) {
      Result result = run(mode, 1, warmup);
      if (!result.error.empty()) {
        std::cerr << "throughput: warm-up of " << mode << " failed: " << result.error << "\n";
        return 1;
      }
    }
  }

  bool failed = false;
  for (int streams : stream_counts) {
    const int64_t count = absl::GetFlag(FLAGS_count) > 0
                              ? absl::GetFlag(FLAGS_count)
                              : std::max<int64_t>(absl::GetFlag(FLAGS_total) / streams, 1);
    std::cout << "\nstreams=" << streams << " count=" << count << "/stream (" << streams * count
              << " events per mode)\n";
    std::map<std::string, double> rates;
    for (const std::string& mode : modes) {
      Result result = run(mode, streams, count);
      if (!result.error.empty()) {
        std::cout << absl::StrFormat("  %-13s FAILED: %s\n", mode, result.error);
        failed = true;
        continue;
      }
      rates[mode] = result.rate();
      std::string extra;
      if (result.bytes > 0) {
        extra = absl::StrFormat(", %.1f MB/s", result.bytes / result.seconds / 1e6);
      }
      std::cout << absl::StrFormat(
          "  %-13s %9.0f events/s  (%d events in %.3f s; process CPU %.2f s = %.0f%% of 1 core"
          "%s)  [%s]\n",
          mode, result.rate(), result.events, result.seconds, result.cpu_seconds,
          100 * result.cpu_seconds / result.seconds, extra, Describe(mode));
    }
    for (const std::string native : {"native", "native_async"}) {
      if (rates.count("bridge") && rates.count(native) && rates[native] > 0) {
        std::cout << absl::StrFormat(
            "  ratio bridge/%s = %.2f (targets: >= 0.70 at 1 stream, >= 0.90 at 8; bench/run T2)\n",
            native, rates["bridge"] / rates[native]);
      }
    }
  }
  std::cout << "\ncommand: " << absl::StrJoin(std::vector<std::string>(argv, argv + argc), " ")
            << "\n";
  std::cout << "load average at end: " << LoadAverage() << "\n";

  (*bridge)->Shutdown();
  (*server)->Shutdown();
  return failed ? 1 : 0;
}
