// CallOptions: the per-call settings of a client stream (deadline, metadata,
// resume point, read-ahead bound), shared by gravity::client::Open,
// OpenAsync and OpenGeneric.
//
//   auto options = gravity::client::CallOptions()
//                      .WithTimeout(absl::Seconds(30))
//                      .WithBearerToken(token)
//                      .WithLastEventId("41");
//
// A plain value type: copy it, reuse it for many calls (the timeout counts
// from each call's start). Not synchronized.
#ifndef GRAVITY_CLIENT_CALL_OPTIONS_H_
#define GRAVITY_CLIENT_CALL_OPTIONS_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace gravity::client {

// The metadata key of the resume point; the same key the server library reads
// (gravity::server::kLastEventIdKey) and the SSE bridge fills from the
// browser's Last-Event-ID.
inline constexpr char kLastEventIdKey[] = "last-event-id";

// "Bearer <token>", the value of an `authorization` header.
std::string BearerToken(absl::string_view token);

struct CallOptions {
  // The call ends with DEADLINE_EXCEEDED at min(deadline, start + timeout).
  // Both infinite (the default) means no deadline: right for long-lived
  // subscriptions, but then only Cancel() or the server ends the call.
  absl::Duration timeout = absl::InfiniteDuration();
  absl::Time deadline = absl::InfiniteFuture();

  // Call metadata, sent in order. Keys are lower-cased when the call starts
  // (gRPC accepts only lower-case keys); "-bin" keys carry binary values.
  std::vector<std::pair<std::string, std::string>> metadata;

  // When not empty, sent as metadata `last-event-id`: the server resumes the
  // stream after this event.
  std::string last_event_id;

  // Read-ahead bound of the blocking reader (Stream<T>): at most this many
  // received messages wait for Next(); when they are all unread, no further
  // read is started, so gRPC flow control slows the server down instead of
  // memory growing. 0 counts as 1. The callback reader (OpenAsync) buffers
  // nothing: it reads the next message when the callback returns.
  size_t max_buffered_messages = 64;

  // false (gRPC's default): fail at once with UNAVAILABLE when the server
  // cannot be reached. true: wait for it until the deadline.
  bool wait_for_ready = false;

  // Chainable setters for one-expression options.
  CallOptions& WithTimeout(absl::Duration value) {
    timeout = value;
    return *this;
  }
  CallOptions& WithDeadline(absl::Time value) {
    deadline = value;
    return *this;
  }
  CallOptions& WithMetadata(std::string key, std::string value) {
    metadata.emplace_back(std::move(key), std::move(value));
    return *this;
  }
  // Adds `authorization: Bearer <token>`.
  CallOptions& WithBearerToken(absl::string_view token) {
    return WithMetadata("authorization", BearerToken(token));
  }
  CallOptions& WithLastEventId(std::string id) {
    last_event_id = std::move(id);
    return *this;
  }
  CallOptions& WithMaxBufferedMessages(size_t value) {
    max_buffered_messages = value;
    return *this;
  }
  CallOptions& WithWaitForReady(bool value = true) {
    wait_for_ready = value;
    return *this;
  }
};

}  // namespace gravity::client

#endif  // GRAVITY_CLIENT_CALL_OPTIONS_H_
