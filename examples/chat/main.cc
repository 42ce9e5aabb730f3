// chat-server: the fan-out example (chat.v1.Chat) as a gRPC server.
//
//   chat-server --listen=127.0.0.1:50061                          # rooms in memory
//   chat-server --listen=127.0.0.1:50061 --redis=127.0.0.1:6379   # rooms shared through Redis
//
// Prints the address it listens on, then every --stats_interval one line per
// room with its counters (and once more on exit); serves until SIGINT/SIGTERM.
// Rooms are bounded: --max_rooms live at once, and a room without
// subscribers or posts for --room_idle_timeout is freed.
#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "examples/chat/chat_service.h"
#include "server/server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50061", "host:port to listen on; port 0 picks one");
ABSL_FLAG(std::string, redis, "",
          "host:port of Redis (7 or later) to share rooms with other chat-servers; "
          "empty keeps rooms in this process's memory");
ABSL_FLAG(int64_t, max_events, 10000,
          "events a room keeps for resuming (Redis: MAXLEN ~ N; memory: ring size)");
ABSL_FLAG(absl::Duration, max_age, absl::Hours(1), "in memory: how long a room keeps an event");
ABSL_FLAG(absl::Duration, stats_interval, absl::Seconds(60),
          "how often to print each room's counters; 0 = only on exit");
ABSL_FLAG(absl::Duration, redis_timeout, absl::Milliseconds(500),
          "with --redis: how long a publish waits for Redis (and at most as long again in "
          "its room's publish queue) before it fails with UNAVAILABLE");
ABSL_FLAG(absl::Duration, drain, absl::Seconds(5), "how long open streams may run after SIGTERM");
ABSL_FLAG(int64_t, max_rooms, 1000,
          "rooms live in this process at most; a new room past it is RESOURCE_EXHAUSTED (with "
          "--redis all rooms share three threads and three Redis connections)");
ABSL_FLAG(absl::Duration, room_idle_timeout, absl::Minutes(5),
          "a room with no subscriber and no post for this long is stopped and freed");

namespace {

void PrintStats(const gravity::examples::ChatRooms& rooms) {
  for (const auto& [name, stats] : rooms.Stats()) {
    std::cout << "chat-server stats room=" << name << " published=" << stats.events_published
              << " delivered=" << stats.events_delivered << " subscribers=" << stats.subscribers
              << " replays=" << stats.replays << " slow_dropped=" << stats.slow_subscribers_dropped
              << " encoded=" << stats.events_encoded << " replay_reads=" << stats.replay_reads
              << " replay_reads_shared=" << stats.replay_reads_shared
              << " replays_from_window=" << stats.replays_from_window
              << " window_events=" << stats.window_events << std::endl;
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Serves the chat.v1.Chat fan-out example over gRPC.");
  absl::ParseCommandLine(argc, argv);
  // Debian's Abseil is built without NDEBUG, so every absl::Mutex (gRPC's
  // too) records lock order for deadlock detection: about 7 % of this
  // server's CPU under a broadcast (bench/run S4). The tests keep it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  gravity::examples::ChatOptions chat;
  chat.memory.max_events =
      static_cast<size_t>(std::max<int64_t>(1, absl::GetFlag(FLAGS_max_events)));
  chat.memory.max_age = absl::GetFlag(FLAGS_max_age);
  chat.max_rooms = static_cast<size_t>(std::max<int64_t>(1, absl::GetFlag(FLAGS_max_rooms)));
  chat.room_idle_timeout = std::max(absl::GetFlag(FLAGS_room_idle_timeout), absl::Milliseconds(1));
  if (const std::string redis = absl::GetFlag(FLAGS_redis); !redis.empty()) {
    std::vector<std::string> parts = absl::StrSplit(redis, absl::MaxSplits(':', 1));
    gravity::server::RedisTopicOptions options;
    if (parts.size() != 2 || parts[0].empty() || !absl::SimpleAtoi(parts[1], &options.port) ||
        options.port <= 0 || options.port > 65535) {
      std::cerr << "chat-server: --redis must be host:port, got \"" << redis << "\"\n";
      return 1;
    }
    options.host = parts[0];
    options.max_len = chat.memory.max_events;
    options.publish_timeout = std::max(absl::GetFlag(FLAGS_redis_timeout), absl::Milliseconds(1));
    chat.redis = options;
  }
  auto rooms = std::make_shared<gravity::examples::ChatRooms>(chat);
  auto service = gravity::examples::MakeChatService(rooms);
  if (!service.ok()) {
    std::cerr << "chat-server: " << service.status() << "\n";
    return 1;
  }
  gravity::server::ServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.drain_timeout = absl::GetFlag(FLAGS_drain);
  auto server = gravity::server::Server::Start(options, {service->get()});
  if (!server.ok()) {
    std::cerr << "chat-server: " << server.status() << "\n";
    return 1;
  }
  std::cout << "chat-server listening on " << (*server)->address()
            << (chat.redis ? " (rooms in Redis " + absl::GetFlag(FLAGS_redis) + ")"
                           : std::string(" (rooms in memory)"))
            << std::endl;

  // Housekeeping: one thread that frees idle rooms (a few times per idle
  // timeout, so a room goes within about 1.25 x the timeout) and prints the
  // counters every --stats_interval; woken at exit.
  std::mutex stats_mu;
  std::condition_variable stats_cv;
  bool stopping = false;
  const absl::Duration interval = absl::GetFlag(FLAGS_stats_interval);
  const absl::Duration sweep_every =
      std::clamp(chat.room_idle_timeout / 4, absl::Milliseconds(10), absl::Seconds(10));
  std::thread stats_printer([&] {
    absl::Time next_print = absl::Now() + interval;
    std::unique_lock<std::mutex> lock(stats_mu);
    while (!stats_cv.wait_for(lock, absl::ToChronoMilliseconds(sweep_every),
                              [&] { return stopping; })) {
      lock.unlock();
      rooms->StopIdleRooms();
      if (interval > absl::ZeroDuration() && absl::Now() >= next_print) {
        PrintStats(*rooms);
        next_print = absl::Now() + interval;
      }
      lock.lock();
    }
  });
  (*server)->RunUntilSignal();
  {
    std::lock_guard<std::mutex> lock(stats_mu);
    stopping = true;
  }
  stats_cv.notify_all();
  stats_printer.join();
  PrintStats(*rooms);
  std::cout << "chat-server stopped" << std::endl;
  return 0;
}
