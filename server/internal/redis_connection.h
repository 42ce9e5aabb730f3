// RedisConnection: one synchronous hiredis connection with bounded connect
// and I/O, used by the Redis topic backend (redis_topic_backend.cc). Also the
// small helpers that read hiredis replies.
//
// Every outcome that means "Redis cannot be reached now" is UNAVAILABLE: a
// refused or lost connection, an I/O timeout, and a Redis that accepts the
// socket only to answer "ERR max number of clients reached" and close it.
// After such an error the connection is dropped and the next Run reconnects.
//
// Thread-safety: not thread-safe, each connection has one owner thread;
// the exceptions are Interrupt and Abort, which any thread may call at any
// time (to wake a reader blocked in XREAD BLOCK at once instead of waiting
// out the block time, or to cancel a stopped topic's replay).
#ifndef GRAVITY_SERVER_INTERNAL_REDIS_CONNECTION_H_
#define GRAVITY_SERVER_INTERNAL_REDIS_CONNECTION_H_

#include <hiredis/hiredis.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace gravity::server::internal {

struct RedisReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using RedisReply = std::unique_ptr<redisReply, RedisReplyDeleter>;

// A reply's string (status, error or bulk string); empty for nullptr.
absl::string_view ReplyText(const redisReply* reply);

// A Redis error reply as a status: the ones that mean "not now" (loading the
// AOF, busy, a replica without its master) are UNAVAILABLE, others INTERNAL.
absl::Status ErrorReplyStatus(const redisReply* reply, absl::string_view what);

class RedisConnection {
 public:
  RedisConnection(std::string host, int port, absl::Duration connect_timeout,
                  absl::Duration io_timeout);
  ~RedisConnection();

  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Connects unless connected. UNAVAILABLE when Redis cannot be reached or
  // after Interrupt.
  absl::Status Connect();
  // Drops the connection (the next Run reconnects).
  void Reset();

  // Sends every command, then reads every reply: one round trip. An I/O
  // error drops the connection and is UNAVAILABLE; so is a connection that
  // Redis refused (maxclients). Other Redis error replies are returned as
  // replies.
  absl::StatusOr<std::vector<RedisReply>> Run(
      const std::vector<std::vector<std::string>>& commands);
  absl::StatusOr<RedisReply> Run(const std::vector<std::string>& command);

  // Any thread: wakes a Run blocked on the socket (it fails with UNAVAILABLE)
  // and makes every later Connect fail. For shutting down; not undone.
  void Interrupt();
  // Any thread: wakes a Run blocked on the socket (it fails with UNAVAILABLE)
  // without shutting the connection down for good: for cancelling one
  // request on a shared connection. The owner must Reset afterwards if the
  // Run had already returned (the socket is unusable).
  void Abort();

  // Whether a socket is open (owner thread): a Run would not reconnect.
  bool connected() const { return context_ != nullptr; }

  std::string address() const;

 private:
  absl::Status IoError();

  const std::string host_;
  const int port_;
  const absl::Duration connect_timeout_;
  const absl::Duration io_timeout_;
  redisContext* context_ = nullptr;  // the owner thread's

  // The socket as Interrupt sees it: published under fd_mu_ after a connect
  // and withdrawn before the socket is closed, so Interrupt never shuts down
  // a descriptor number that was closed and reused.
  absl::Mutex fd_mu_;
  int fd_ ABSL_GUARDED_BY(fd_mu_) = -1;
  bool interrupted_ ABSL_GUARDED_BY(fd_mu_) = false;
};

}  // namespace gravity::server::internal

#endif  // GRAVITY_SERVER_INTERNAL_REDIS_CONNECTION_H_
