// RedisServer: a real redis-server for a test, on a free loopback port, with
// its data (AOF on, fsync always, no RDB) in a directory of its own, so it
// can be stopped and started again with its streams intact. Redis cannot
// pick a port itself (--port 0 means "no TCP"), so a free one is found by
// binding, below the ephemeral range: a port the kernel hands out as a
// connection's source port could be taken between a stop and a restart.
// The destructor kills it. One thread only.
#ifndef GRAVITY_TESTS_SERVER_REDIS_SERVER_H_
#define GRAVITY_TESTS_SERVER_REDIS_SERVER_H_

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tests/client/subprocess.h"
#include "tests/testing/wait_for.h"

namespace gravity::testing {

class RedisServer {
 public:
  // `binary`: redis-server's path ($REDIS_SERVER or /usr/bin/redis-server
  // when empty). nullptr when it does not start within 20 s.
  static std::unique_ptr<RedisServer> Start(const std::string& dir, std::string binary = "") {
    if (binary.empty()) {
      const char* env = std::getenv("REDIS_SERVER");
      binary = env != nullptr ? env : "/usr/bin/redis-server";
    }
    const int port = FreePort();
    if (port == 0) return nullptr;
    auto server = std::unique_ptr<RedisServer>(new RedisServer(binary, dir, port));
    if (!server->Run()) return nullptr;
    return server;
  }

  ~RedisServer() { Stop(); }

  int port() const { return port_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

  // SIGTERM (Redis writes and fsyncs its AOF) and waits for the exit; a
  // paused server is continued so it can take the signal.
  void Stop() {
    if (process_ == nullptr) return;
    process_->Kill(SIGTERM);
    process_->Kill(SIGCONT);
    process_->Finish(absl::Seconds(20));
    process_.reset();
  }

  // SIGSTOP: a hung Redis. The kernel still accepts connections and takes
  // requests into the socket buffers; nothing answers until Resume.
  void Pause() {
    if (process_ != nullptr) process_->Kill(SIGSTOP);
  }
  // SIGCONT: it answers what was sent meanwhile.
  void Resume() {
    if (process_ != nullptr) process_->Kill(SIGCONT);
  }

  // Starts it again on the same port and directory; false when it does not
  // answer within 20 s.
  bool Restart() {
    Stop();
    return Run();
  }

  // True when PING answers PONG.
  bool Ping() const {
    timeval timeout{1, 0};
    redisContext* context = redisConnectWithTimeout("127.0.0.1", port_, timeout);
    if (context == nullptr) return false;
    bool pong = false;
    if (context->err == 0) {
      redisSetTimeout(context, timeout);
      auto* reply = static_cast<redisReply*>(redisCommand(context, "PING"));
      pong = reply != nullptr && reply->type == REDIS_REPLY_STATUS &&
             std::string(reply->str, reply->len) == "PONG";
      if (reply != nullptr) freeReplyObject(reply);
    }
    redisFree(context);
    return pong;
  }

 private:
  RedisServer(std::string binary, std::string dir, int port)
      : binary_(std::move(binary)), dir_(std::move(dir)), port_(port) {}

  bool Run() {
    process_ =
        Subprocess::Start({binary_, "--port", absl::StrCat(port_), "--bind", "127.0.0.1", "--dir",
                           dir_, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                           "--protected-mode", "no", "--daemonize", "no", "--logfile", ""});
    if (process_ == nullptr) return false;
    return WaitFor([&] { return Ping(); }, absl::Seconds(20));
  }

  // A port in 20000-30999 that can be bound now.
  static int FreePort() {
    absl::BitGen random;
    for (int attempt = 0; attempt < 100; ++attempt) {
      const int port = absl::Uniform(random, 20000, 31000);
      const int fd = socket(AF_INET, SOCK_STREAM, 0);
      if (fd < 0) return 0;
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      address.sin_port = htons(static_cast<uint16_t>(port));
      const bool free = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
      close(fd);
      if (free) return port;
    }
    return 0;
  }

  const std::string binary_;
  const std::string dir_;
  const int port_;
  std::unique_ptr<Subprocess> process_;
};

// RedisAdmin: the test's own connection to a Redis (CONFIG SET, CLIENT KILL,
// CLIENT LIST), kept open: at `maxclients 1` it is the one that fits. Every
// read and write times out after 5 s. One thread only.
class RedisAdmin {
 public:
  explicit RedisAdmin(int port) {
    timeval timeout{5, 0};
    context_ = redisConnectWithTimeout("127.0.0.1", port, timeout);
    if (context_ != nullptr && context_->err == 0) redisSetTimeout(context_, timeout);
  }
  ~RedisAdmin() {
    if (context_ != nullptr) redisFree(context_);
  }
  RedisAdmin(const RedisAdmin&) = delete;
  RedisAdmin& operator=(const RedisAdmin&) = delete;

  // The reply as text ("OK", an integer's digits, an error's message).
  std::string Run(const std::vector<std::string>& args) {
    if (context_ == nullptr || context_->err != 0) return "(not connected)";
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const std::string& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(context_, static_cast<int>(argv.size()), argv.data(), lengths.data()));
    if (reply == nullptr) return "(no reply)";
    std::string text = reply->type == REDIS_REPLY_INTEGER ? absl::StrCat(reply->integer)
                       : reply->str != nullptr            ? std::string(reply->str, reply->len)
                                                          : "";
    freeReplyObject(reply);
    return text;
  }

 private:
  redisContext* context_ = nullptr;
};

}  // namespace gravity::testing

#endif  // GRAVITY_TESTS_SERVER_REDIS_SERVER_H_
