// StreamOptions: per-stream bounds of the server's send queue.
//
// The queue holds messages that Send accepted and gRPC flow control has not
// yet let out. Slow-consumer policy: at half of either bound the stream is
// "backlogged" (Stream::Backlogged() is true, so a producer can slow down or
// skip); at the bound the stream is cut with UNAVAILABLE ("client too slow:
// N messages queued; resume from your last event id"), the queue is dropped
// and Send returns false, so memory never grows past the bound. UNAVAILABLE
// (not RESOURCE_EXHAUSTED) because a slow consumer is cut like an outage:
// clients resume after their last event id (docs/wire-contract.md, "Slow
// consumers").
// A plain value type.
#ifndef GRAVITY_SERVER_STREAM_OPTIONS_H_
#define GRAVITY_SERVER_STREAM_OPTIONS_H_

#include <cstddef>

namespace gravity::server {

struct StreamOptions {
  size_t max_queued_messages = 1024;
  size_t max_queued_bytes = size_t{4} << 20;
};

}  // namespace gravity::server

#endif  // GRAVITY_SERVER_STREAM_OPTIONS_H_
