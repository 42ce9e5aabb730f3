// IgnoreSigpipe: makes a write to a socket whose peer has gone away fail with
// EPIPE instead of killing the process with SIGPIPE.
//
// Why process-wide: hiredis (the Redis client under the Redis topic backend)
// writes with plain write(), which cannot pass MSG_NOSIGNAL, and a Redis that
// closes a connection (restart, network blip, `maxclients` reached, CLIENT
// KILL) makes the next write on it raise SIGPIPE, whose default action ends
// the whole server. Servers commonly ignore it; every write then reports
// EPIPE, which gravity's code already handles as "connection lost".
//
// Only a SIGPIPE disposition still at SIG_DFL is changed: an application that
// installed its own handler (or ignores it already) keeps what it chose.
// Called by Server::Start and NewRedisTopicBackend.
//
// Thread-safety: may be called from any thread; the check-and-set runs once
// per process.
#ifndef GRAVITY_SERVER_INTERNAL_IGNORE_SIGPIPE_H_
#define GRAVITY_SERVER_INTERNAL_IGNORE_SIGPIPE_H_

namespace gravity::server::internal {

void IgnoreSigpipe();

}  // namespace gravity::server::internal

#endif  // GRAVITY_SERVER_INTERNAL_IGNORE_SIGPIPE_H_
