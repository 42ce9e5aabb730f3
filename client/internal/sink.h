// Sink and Resumable: the interface between a client read reactor (which
// talks to gRPC) and what consumes its messages: the blocking reader's buffer
// or the user's callbacks.
#ifndef GRAVITY_CLIENT_INTERNAL_SINK_H_
#define GRAVITY_CLIENT_INTERNAL_SINK_H_

#include "absl/status/status.h"

namespace gravity::client::internal {

// A reader paused by its sink (see Sink::OnMessage).
class Resumable {
 public:
  // Starts the next read (read_more) or gives up reading, and releases the
  // pause. Call exactly once per pause, from any thread.
  virtual void Resume(bool read_more) = 0;

 protected:
  ~Resumable() = default;
};

// Called by one reactor, on gRPC's callback threads, one call at a time and in
// this order: OnOpen once, OnMessage per message, OnDone once. Implementations
// must not block.
template <typename Response>
class Sink {
 public:
  virtual ~Sink() = default;

  // accepted: the server's initial metadata arrived (the guards and the handler
  // let the call through). Otherwise the call failed before any message and
  // OnDone brings its status.
  virtual void OnOpen(bool accepted) = 0;

  // Returns true to have the next message read at once. false pauses the call
  // (it cannot end meanwhile): the sink keeps `call` and resumes it later.
  virtual bool OnMessage(Response&& message, Resumable* call) = 0;

  virtual void OnDone(absl::Status status) = 0;
};

}  // namespace gravity::client::internal

#endif  // GRAVITY_CLIENT_INTERNAL_SINK_H_
