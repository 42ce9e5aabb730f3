// bench-server: the streaming.v1.Streaming service for bench/run, with send
// stamps and call counters.
//
//   bench-server --listen=127.0.0.1:0 --stats_file=/tmp/x/stats
//
// Ping is served (StreamUsers and Echo answer UNIMPLEMENTED; nothing in
// bench/ calls them). Ping sends `count` PingReplys (0 means 5), one every
// `interval_ms` (0 means 1000) from the service's shared timer thread
// (Stream::Every, no thread per stream), `seq` 1..count, and closes OK
// (or with `fail_code`). Each reply's `message` is its send time: decimal
// CLOCK_MONOTONIC nanoseconds, taken right before Send, so a reader on the
// same machine gets latency = its own CLOCK_MONOTONIC now - stamp.
//
// chat.v1.Chat/Subscribe (bench/run's C1, compression; Post answers
// UNIMPLEMENTED) sends --chat_count Messages, one every --chat_interval_ms,
// then closes OK. Each is what a room of examples/chat carries: `id` a Redis
// Streams id ("<unix ms>-<n>": the time it was sent), `room` the request's
// (default "lobby"), `text` "<user>: <words>", 50-150 characters: one of 24
// user names, then words of a 200-word English/chat vocabulary drawn with
// English-like (Zipf-Mandelbrot) frequencies, with punctuation and now and
// then an emoji, from a PRNG seeded by the call's number (each stream its
// own text, the same in every run): 100-200 bytes of JSON per message.
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

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "chat/v1/chat.pb.h"
#include "server/server.h"
#include "server/service.h"
#include "server/stream.h"
#include "streaming/v1/streaming.pb.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "host:port to listen on; port 0 picks one");
ABSL_FLAG(std::string, stats_file, "", "write the call counters here every 50 ms");
ABSL_FLAG(absl::Duration, drain, absl::Seconds(1), "how long open streams may run after SIGTERM");
ABSL_FLAG(int32_t, chat_count, 1000, "messages per chat.v1.Chat/Subscribe call");
ABSL_FLAG(int32_t, chat_interval_ms, 1, "milliseconds between a Subscribe call's messages");

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

// chat.v1.Chat/Subscribe's messages (see the top of the file).
constexpr const char* kUsers[] = {"alice",  "bob",   "carol",  "dave",   "erin",    "frank",
                                  "grace",  "heidi", "ivan",   "judy",   "mallory", "niaj",
                                  "olivia", "peggy", "rupert", "sybil",  "trent",   "victor",
                                  "walter", "yusuf", "zoe",    "mei.li", "j_smith", "dev-kumar"};
// The 200 words, most frequent first, the k-th drawn in proportion to
// 1 / (k + 2.7) (Zipf-Mandelbrot, as English word counts: "the" about 6 %).
constexpr const char* kWords[] = {
    "the",     "I",       "to",       "you",       "it",      "a",        "and",     "is",
    "that",    "for",     "on",       "in",        "of",      "we",       "this",    "just",
    "be",      "it's",    "not",      "have",      "with",    "but",      "so",      "can",
    "do",      "was",     "what",     "are",       "if",      "lol",      "yeah",    "my",
    "me",      "think",   "at",       "no",        "like",    "get",      "will",    "ok",
    "now",     "there",   "build",    "one",       "don't",   "about",    "all",     "they",
    "out",     "know",    "up",       "can't",     "from",    "thanks",   "see",     "still",
    "good",    "time",    "should",   "or",        "anyone",  "why",      "some",    "would",
    "thing",   "more",    "then",     "going",     "test",    "back",     "how",     "today",
    "yes",     "he",      "she",      "got",       "need",    "make",     "release", "really",
    "PR",      "any",     "fix",      "when",      "want",    "branch",   "meeting", "sure",
    "right",   "work",    "also",     "new",       "look",    "deploy",   "here",    "well",
    "try",     "did",     "sounds",   "doc",       "merge",   "maybe",    "after",   "tomorrow",
    "last",    "which",   "again",    "nice",      "server",  "bug",      "way",     "first",
    "let",     "been",    "could",    "weekend",   "because", "please",   "haha",    "same",
    "issue",   "CI",      "works",    "by",        "their",   "staging",  "other",   "lunch",
    "review",  "fine",    "logs",     "coffee",    "check",   "said",     "next",    "ping",
    "wait",    "sorry",   "week",     "error",     "before",  "people",   "green",   "broken",
    "morning", "call",    "agreed",   "config",    "update",  "hmm",      "done",    "team",
    "link",    "post",    "change",   "flaky",     "pushed",  "rollback", "latency", "probably",
    "minutes", "ticket",  "customer", "dashboard", "alert",   "cache",    "mobile",  "browser",
    "login",   "thread",  "weird",    "typo",      "message", "channel",  "version", "page",
    "night",   "friday",  "home",     "train",     "great",   "huh",      "yep",     "idea",
    "ship",    "memory",  "CPU",      "graph",     "spike",   "restart",  "quick",   "later",
    "awesome", "exactly", "perfect",  "related",   "working", "tried",    "without", "slack"};
constexpr const char* kEmoji[] = {"\U0001F642", "\U0001F44D", "\U0001F602",
                                  "\U0001F389", "\U0001F914", "\u2764\uFE0F"};
constexpr const char* kEnds[] = {".", "?", "!", "", "...", "?!"};

struct ChatStream {
  explicit ChatStream(uint32_t seed)
      : rng(seed), zipf([] {
          std::vector<double> weights;
          for (size_t k = 1; k <= std::size(kWords); ++k) weights.push_back(1.0 / (k + 2.7));
          return std::discrete_distribution<size_t>(weights.begin(), weights.end());
        }()) {}

  std::string Text() {
    std::string text = absl::StrCat(kUsers[rng() % std::size(kUsers)], ": ");
    const size_t length = text.size() + 50 + rng() % 101;  // "<user>: " + 50-150 in all
    bool capital = true;
    while (text.size() < length) {
      std::string word = kWords[zipf(rng)];
      if (capital && word[0] >= 'a' && word[0] <= 'z') word[0] = static_cast<char>(word[0] - 32);
      absl::StrAppend(&text, word);
      capital = false;
      const uint32_t r = rng() % 100;
      if (r < 8) {  // a sentence ends
        absl::StrAppend(&text, kEnds[rng() % std::size(kEnds)]);
        capital = true;
      } else if (r < 13) {
        absl::StrAppend(&text, ",");
      }
      absl::StrAppend(&text, " ");
    }
    text.pop_back();
    if (rng() % 10 == 0) absl::StrAppend(&text, " ", kEmoji[rng() % std::size(kEmoji)]);
    return text;
  }

  // A Redis Streams id: "<unix ms>-<n>", n counting messages in the same ms.
  std::string Id() {
    const int64_t ms = absl::ToUnixMillis(absl::Now());
    sequence = ms == last_ms ? sequence + 1 : 0;
    last_ms = ms;
    return absl::StrCat(ms, "-", sequence);
  }

  std::mt19937 rng;
  std::discrete_distribution<size_t> zipf;
  int64_t last_ms = 0;
  int64_t sequence = 0;
  int64_t next = 1;
};

grpc::Status Subscribe(const chat::v1::SubscribeRequest& request,
                       Stream<chat::v1::Message> stream) {
  const int64_t call = started.fetch_add(1) + 1;
  stream.OnCancel([] { cancelled.fetch_add(1); });
  const int64_t count = std::max<int64_t>(1, absl::GetFlag(FLAGS_chat_count));
  const absl::Duration interval =
      absl::Milliseconds(std::max<int32_t>(1, absl::GetFlag(FLAGS_chat_interval_ms)));
  const std::string room = request.room().empty() ? "lobby" : request.room();
  // One timer thread runs every callback of a stream, one at a time (as Ping).
  auto state = std::make_shared<ChatStream>(static_cast<uint32_t>(call));
  stream.Every(interval, [state, count, room](Stream<chat::v1::Message>& s) {
    const int64_t seq = state->next++;
    if (seq > count) return;
    chat::v1::Message message;
    message.set_id(state->Id());
    message.set_room(room);
    message.set_text(state->Text());
    s.Send(message);
    if (seq == count) {
      closed.fetch_add(1);
      s.Close(grpc::Status::OK);
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
  gravity::server::Service chat("chat.v1.Chat");
  added = chat.AddStream<chat::v1::SubscribeRequest, chat::v1::Message>("Subscribe", Subscribe);
  if (!added.ok()) {
    std::cerr << "bench-server: " << added << "\n";
    return 1;
  }
  gravity::server::ServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.drain_timeout = absl::GetFlag(FLAGS_drain);
  auto server = gravity::server::Server::Start(options, {&service, &chat});
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
