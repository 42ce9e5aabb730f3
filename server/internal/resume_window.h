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
// A window may share a ResumeWindowBudget with other topics' windows (the
// Redis hub's: RedisTopicOptions::resume_windows_total_bytes): it charges the
// budget for what it holds and credits it for what it drops (eviction,
// Clear, destruction). A window that would take the total past the cap drops
// its own oldest events first, never another topic's; if even its newest do
// not fit, it drops them too (base() moves past them, so its promise holds:
// the resumes it can no longer serve read the log).
//
// ParsedEvent and ReplayPage are what TopicCore sends: an event is parsed
// once and shared (immutable) by the window and every subscriber it goes to.
//
// Thread-safety: none of its own. TopicCore holds its mu_ around every call;
// the events it hands out are immutable and shared. The budget is
// thread-safe (atomics): windows of different topics use it concurrently.
#ifndef GRAVITY_SERVER_INTERNAL_RESUME_WINDOW_H_
#define GRAVITY_SERVER_INTERNAL_RESUME_WINDOW_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
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

// The bytes that several windows hold together (the Redis hub's windows,
// one per topic), bounded by `max_bytes`. Thread-safe (atomics): each window
// charges and credits it under its own topic's lock, never another's.
class ResumeWindowBudget {
 public:
  explicit ResumeWindowBudget(size_t max_bytes) : max_bytes_(max_bytes) {}
  ResumeWindowBudget(const ResumeWindowBudget&) = delete;
  ResumeWindowBudget& operator=(const ResumeWindowBudget&) = delete;

  // Adds `bytes` to the total unless that would take it past max_bytes().
  bool TryCharge(size_t bytes);
  void Credit(size_t bytes) { used_.fetch_sub(bytes, std::memory_order_relaxed); }

  size_t max_bytes() const { return max_bytes_; }
  // What the windows hold now (never more than max_bytes()).
  size_t used() const { return used_.load(std::memory_order_relaxed); }

 private:
  const size_t max_bytes_;
  std::atomic<size_t> used_{0};
};

class ResumeWindow {
 public:
  // `budget` (may be null: none) is shared with other windows; see the file
  // comment.
  explicit ResumeWindow(ResumeWindowBounds bounds,
                        std::shared_ptr<ResumeWindowBudget> budget = nullptr)
      : bounds_(bounds), budget_(std::move(budget)) {}
  // Credits the budget with what it holds.
  ~ResumeWindow();
  ResumeWindow(const ResumeWindow&) = delete;
  ResumeWindow& operator=(const ResumeWindow&) = delete;

  bool enabled() const { return bounds_.max_events > 0 && bounds_.max_bytes > 0; }

  // A live batch, in log order, ending at `last` (its last entry's position,
  // parsable or not). Drops the oldest events past the bounds, then (with a
  // budget) as many more as the budget's total needs to stay under its cap.
  void AppendLive(const std::vector<ParsedEventPtr>& events, EventPosition last);

  // Up to `limit` events after `after`, if the window holds every event
  // after it (base() <= after <= end()); at_end when that reached end().
  std::optional<ReplayPage> PageAfter(EventPosition after, size_t limit) const;

  // A page read from the log after `after`: its events join the window when
  // they reach into it (the window then starts at `after`), or, before any
  // live event, when the page reached the log's end (every later entry comes
  // live). Only when they fit the bounds whole, and the budget: a read never
  // evicts anything to make room.
  void AddRead(EventPosition after, const ReplayPage& page);

  void Clear();

  size_t events() const { return events_.size(); }
  size_t bytes() const { return bytes_; }
  // Events dropped because the budget's total was at its cap (evictions the
  // window's own bounds did not ask for).
  uint64_t evicted_by_total() const { return evicted_by_total_; }
  const std::shared_ptr<ResumeWindowBudget>& budget() const { return budget_; }
  // Whether it holds anything to serve from, and from where to where.
  bool has_base() const { return has_base_; }
  EventPosition base() const { return base_; }
  EventPosition end() const { return end_; }

 private:
  // Drops the oldest event; base() moves up to it.
  void DropOldest();
  // Drops the oldest events past the bounds, then settles with the budget:
  // charges it for what the window grew by, dropping the window's own
  // oldest events while the total would pass the cap (to none at worst),
  // or credits it for what the window shrank by.
  void Trim();

  const ResumeWindowBounds bounds_;
  const std::shared_ptr<ResumeWindowBudget> budget_;
  std::deque<ParsedEventPtr> events_;
  size_t bytes_ = 0;
  // What the budget has been charged for this window: bytes_ between calls.
  size_t charged_ = 0;
  uint64_t evicted_by_total_ = 0;
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
