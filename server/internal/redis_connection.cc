#include "server/internal/redis_connection.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace gravity::server::internal {

namespace {

timeval BoundedTimeval(absl::Duration duration) {
  return absl::ToTimeval(std::max(duration, absl::Milliseconds(1)));
}

// What Redis writes on a connection it accepts past `maxclients`, just
// before it closes it: the connection is gone, not the command refused.
constexpr absl::string_view kMaxClientsReply = "ERR max number of clients reached";

}  // namespace

absl::string_view ReplyText(const redisReply* reply) {
  return reply == nullptr || reply->str == nullptr ? absl::string_view()
                                                   : absl::string_view(reply->str, reply->len);
}

absl::Status ErrorReplyStatus(const redisReply* reply, absl::string_view what) {
  const absl::string_view text = ReplyText(reply);
  const bool transient = absl::StartsWith(text, "LOADING") || absl::StartsWith(text, "BUSY") ||
                         absl::StartsWith(text, "MASTERDOWN") ||
                         absl::StartsWith(text, "TRYAGAIN") || absl::StartsWith(text, "READONLY") ||
                         absl::StartsWith(text, kMaxClientsReply);
  const std::string message = absl::StrCat("redis ", what, ": ", text);
  return transient ? absl::UnavailableError(message) : absl::InternalError(message);
}

RedisConnection::RedisConnection(std::string host, int port, absl::Duration connect_timeout,
                                 absl::Duration io_timeout)
    : host_(std::move(host)),
      port_(port),
      connect_timeout_(connect_timeout),
      io_timeout_(io_timeout) {}

RedisConnection::~RedisConnection() { Reset(); }

std::string RedisConnection::address() const { return absl::StrCat(host_, ":", port_); }

absl::Status RedisConnection::Connect() {
  if (context_ != nullptr) return absl::OkStatus();
  {
    absl::MutexLock lock(&fd_mu_);
    if (interrupted_) return absl::UnavailableError("redis: the connection is shut down");
  }
  redisContext* context =
      redisConnectWithTimeout(host_.c_str(), port_, BoundedTimeval(connect_timeout_));
  if (context == nullptr) return absl::UnavailableError("redis: out of memory");
  if (context->err != 0) {
    absl::Status status =
        absl::UnavailableError(absl::StrCat("redis ", address(), ": ", context->errstr));
    redisFree(context);
    return status;
  }
  if (redisSetTimeout(context, BoundedTimeval(io_timeout_)) != REDIS_OK) {
    redisFree(context);
    return absl::UnavailableError(absl::StrCat("redis ", address(), ": set timeout"));
  }
  {
    // An Interrupt that came during the connect must still win.
    absl::MutexLock lock(&fd_mu_);
    if (interrupted_) {
      redisFree(context);
      return absl::UnavailableError("redis: the connection is shut down");
    }
    fd_ = context->fd;
  }
  context_ = context;
  return absl::OkStatus();
}

void RedisConnection::Reset() {
  {
    absl::MutexLock lock(&fd_mu_);
    fd_ = -1;
  }
  if (context_ != nullptr) redisFree(context_);
  context_ = nullptr;
}

void RedisConnection::Interrupt() {
  absl::MutexLock lock(&fd_mu_);
  interrupted_ = true;
  // shutdown, not close: the owner thread still owns the descriptor and
  // closes it; a read blocked on it returns at once.
  if (fd_ >= 0) shutdown(fd_, SHUT_RDWR);
}

void RedisConnection::Abort() {
  absl::MutexLock lock(&fd_mu_);
  if (fd_ >= 0) shutdown(fd_, SHUT_RDWR);
}

absl::StatusOr<std::vector<RedisReply>> RedisConnection::Run(
    const std::vector<std::vector<std::string>>& commands) {
  absl::Status connected = Connect();
  if (!connected.ok()) return connected;
  for (const std::vector<std::string>& command : commands) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const std::string& arg : command) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    if (redisAppendCommandArgv(context_, static_cast<int>(argv.size()), argv.data(),
                               lengths.data()) != REDIS_OK) {
      return IoError();
    }
  }
  std::vector<RedisReply> replies;
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) return IoError();
    replies.emplace_back(static_cast<redisReply*>(raw));
    // Redis refused the connection and has closed it: keeping it would make
    // the next write fail (EPIPE) and every later command with it.
    if (replies.back()->type == REDIS_REPLY_ERROR &&
        absl::StartsWith(ReplyText(replies.back().get()), kMaxClientsReply)) {
      Reset();
      return absl::UnavailableError(
          absl::StrCat("redis ", address(), " refused the connection (", kMaxClientsReply, ")"));
    }
  }
  return replies;
}

absl::StatusOr<RedisReply> RedisConnection::Run(const std::vector<std::string>& command) {
  absl::StatusOr<std::vector<RedisReply>> replies =
      Run(std::vector<std::vector<std::string>>{command});
  if (!replies.ok()) return replies.status();
  return std::move(replies->front());
}

absl::Status RedisConnection::IoError() {
  absl::Status status = absl::UnavailableError(absl::StrCat(
      "redis ", address(), ": ",
      context_ != nullptr && context_->errstr[0] != '\0' ? context_->errstr : "connection lost"));
  Reset();
  return status;
}

}  // namespace gravity::server::internal
