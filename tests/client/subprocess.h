// Subprocess: runs a binary of the build (streaming-server, gravity-cli) for
// a test, with its stdout and stderr piped back, and every wait bounded.
// The destructor SIGKILLs it if it still runs and reaps it. One thread only.
#ifndef GRAVITY_TESTS_CLIENT_SUBPROCESS_H_
#define GRAVITY_TESTS_CLIENT_SUBPROCESS_H_

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/testing/wait_for.h"

extern char** environ;

namespace gravity::testing {

class Subprocess {
 public:
  struct Result {
    std::optional<int> exit_code;  // nullopt: did not exit in time, or died of a signal
    std::string out;
    std::string err;
  };

  // nullptr when the binary cannot be started.
  static std::unique_ptr<Subprocess> Start(const std::vector<std::string>& args) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0) return nullptr;
    if (pipe2(err, O_CLOEXEC) != 0) {
      close(out[0]);
      close(out[1]);
      return nullptr;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
    // Only stdin, stdout and stderr go to the child. A socket of the test's
    // (the bridge's, a proxy's) that the child inherited would stay open in
    // it after the test closed it: that connection would never end.
    posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
    std::vector<char*> argv;
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    close(err[1]);
    if (spawned != 0) {
      close(out[0]);
      close(err[0]);
      return nullptr;
    }
    return std::unique_ptr<Subprocess>(new Subprocess(pid, out[0], err[0]));
  }

  ~Subprocess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(out_);
    close(err_);
  }

  pid_t pid() const { return pid_; }

  // The next line of stdout (without '\n'), or nullopt at EOF or timeout.
  std::optional<std::string> ReadLine(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      if (size_t newline = out_buffer_.find('\n'); newline != std::string::npos) {
        std::string line = out_buffer_.substr(0, newline);
        out_buffer_.erase(0, newline + 1);
        return line;
      }
      if (out_eof_ || !Pump(deadline)) return std::nullopt;
    }
  }

  void Kill(int signal) { kill(pid_, signal); }

  // Reads stdout and stderr to their end and waits for the exit.
  Result Finish(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while ((!out_eof_ || !err_eof_) && Pump(deadline)) {
    }
    Result result;
    int status = 0;
    if (pid_ > 0 &&
        WaitFor([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, deadline - absl::Now())) {
      pid_ = -1;
      if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    }
    result.out = std::move(out_buffer_);
    result.err = std::move(err_buffer_);
    return result;
  }

 private:
  Subprocess(pid_t pid, int out, int err) : pid_(pid), out_(out), err_(err) {}

  // Reads what is available from either pipe; false at the deadline.
  bool Pump(absl::Time deadline) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    pollfd fds[2] = {{out_eof_ ? -1 : out_, POLLIN, 0}, {err_eof_ ? -1 : err_, POLLIN, 0}};
    const int ready = poll(fds, 2, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (ready < 0) return errno == EINTR;
    if (ready == 0) return false;
    ReadFrom(fds[0], out_, &out_buffer_, &out_eof_);
    ReadFrom(fds[1], err_, &err_buffer_, &err_eof_);
    return true;
  }

  static void ReadFrom(const pollfd& polled, int fd, std::string* buffer, bool* eof) {
    if (polled.fd < 0 || polled.revents == 0) return;
    char chunk[4096];
    const ssize_t n = read(fd, chunk, sizeof chunk);
    if (n > 0) {
      buffer->append(chunk, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      *eof = true;
    }
  }

  pid_t pid_;
  const int out_;
  const int err_;
  std::string out_buffer_;
  std::string err_buffer_;
  bool out_eof_ = false;
  bool err_eof_ = false;
};

}  // namespace gravity::testing

#endif  // GRAVITY_TESTS_CLIENT_SUBPROCESS_H_
