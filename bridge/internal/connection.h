// Connection: what the bridge asks of every connection it accepted, whatever
// its codec (HTTP/1.1 Session, HTTP/2 Http2Session): to start, and to drain. The bridge
// keeps weak references to its connections for that, and nothing else.
#ifndef GRAVITY_BRIDGE_INTERNAL_CONNECTION_H_
#define GRAVITY_BRIDGE_INTERNAL_CONNECTION_H_

namespace gravity::bridge::internal {

class Connection {
 public:
  virtual ~Connection() = default;
  // Starts serving (posts to the connection's strand).
  virtual void Start() = 0;
  // Asks the connection to end, from any thread: streams get a `retry:` cut,
  // calls in flight a 503 with Retry-After, then the connection closes.
  virtual void Drain() = 0;
};

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_CONNECTION_H_
