// ResumeWindow: a topic's latest events kept in process, so that a resume
// (Subscribe after an id) whose id falls inside it is served without reading
// the log (one Redis round trip per page otherwise). See ResumeWindowBounds
// in server/topic_backend.h for the bounds, and TopicCore for its use.
//
// What it promises: every parsable event of the log after base() up to end()
// is in it, in log order. It learns events from the live feed (contiguous:
// the backend delivers every entry once, in order, from the topic's start)
// and from replay reads that join up with it (a read after an id whose
// events reach into the window extends it back to that id). Unparsable
// entries are left out, as replays and the live feed leave them out.
//
// ParsedEvent and ReplayPage are what TopicCore sends: an event is parsed
// once and shared (immutable) by the window and every subscriber it goes to.
//
// Thread-safety: none of its own. TopicCore holds its mu_ around every call;
// the events it hands out are immutable and shared.
#ifndef GRAVITY_SERVER_INTERNAL_RESUME_WINDOW_H_
#define GRAVITY_SERVER_INTERNAL_RESUME_WINDOW_H_

#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "google/protobuf/message.h"
#include "grpcpp/support/byte_buffer.h"
#include "server/topic_backend.h"

namespace gravity::server::internal {

// An event parsed once (its id written into the message), shared read-only
// by the window and every subscriber that gets it.
struct ParsedEvent {
  std::string id;
  EventPosition position;
  std::string traceparent;  // the publisher's, as the log kept it ("" if none)
  std::unique_ptr<google::protobuf::Message> message;
  // The message serialized once, when it was parsed: every subscriber it is
  // sent to shares these bytes (a copy of a ByteBuffer only refs its slices),
  // so a broadcast to N streams is encoded once, not N times.
  grpc::ByteBuffer wire;
  size_t bytes = 0;  // what the window counts for it (0 when there is none)
};
using ParsedEventPtr = std::shared_ptr<const ParsedEvent>;

// A slice of the log for a replay, parsed. A plain value type.
struct ReplayPage {
  std::vector<ParsedEventPtr> events;  // in log order
  // The last entry read, parsable or not ({0, 0}: none): once the page is
  // sent, the replay goes on after it.
  EventPosition through;
  std::string through_id;
  // Nothing followed in the log (the window: nothing followed in it).
  bool at_end = false;
};

class ResumeWindow {
 public:
  explicit ResumeWindow(ResumeWindowBounds bounds) : bounds_(bounds) {}

  bool enabled() const { return bounds_.max_events > 0 && bounds_.max_bytes > 0; }

  // A live batch, in log order, ending at `last` (its last entry's position,
  // parsable or not). Drops the oldest events past the bounds.
  void AppendLive(const std::vector<ParsedEventPtr>& events, EventPosition last);

  // Up to `limit` events after `after`, if the window holds every event
  // after it (base() <= after <= end()); at_end when that reached end().
  std::optional<ReplayPage> PageAfter(EventPosition after, size_t limit) const;

  // A page read from the log after `after`: its events join the window when
  // they reach into it (the window then starts at `after`), or, before any
  // live event, when the page reached the log's end (every later entry comes
  // live). Only when they fit the bounds whole.
  void AddRead(EventPosition after, const ReplayPage& page);

  void Clear();

  size_t events() const { return events_.size(); }
  size_t bytes() const { return bytes_; }
  // Whether it holds anything to serve from, and from where to where.
  bool has_base() const { return has_base_; }
  EventPosition base() const { return base_; }
  EventPosition end() const { return end_; }

 private:
  void Trim();

  const ResumeWindowBounds bounds_;
  std::deque<ParsedEventPtr> events_;
  size_t bytes_ = 0;
  // Every parsable event in (base_, end_] is in events_ (which may also hold
  // one at base_). Meaningless until has_base_.
  bool has_base_ = false;
  EventPosition base_;
  EventPosition end_;
  // A live batch came: a read can no longer start the window by itself.
  bool live_started_ = false;
};

}  // namespace gravity::server::internal

#endif  // GRAVITY_SERVER_INTERNAL_RESUME_WINDOW_H_
