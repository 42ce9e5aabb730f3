// W3C Trace Context (https://www.w3.org/TR/trace-context/) at the bridge:
// every upstream call carries a `traceparent`. A valid one from the client is
// forwarded unchanged, with its `tracestate`; an absent or invalid one (or two
// of them) is replaced by a fresh one, so a browser's request can be followed
// into the backend and the access log even when the browser sent none. The
// bridge records no spans of its own, so it neither changes the parent id nor
// sets the sampled flag on the traces it starts.
//
// Pure functions; thread-safe.
#ifndef GRAVITY_BRIDGE_INTERNAL_TRACE_CONTEXT_H_
#define GRAVITY_BRIDGE_INTERNAL_TRACE_CONTEXT_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace gravity::bridge::internal {

// "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>", lower-case hex,
// ids not all zero; a later version may carry more after the flags
// ("-..."), as the specification allows.
bool IsValidTraceparent(absl::string_view traceparent);

// A fresh version-00 traceparent: random trace and parent ids, flags 00.
std::string NewTraceparent();

// The trace id (32 hex) of the `traceparent` among `metadata`, "" when none.
std::string TraceIdOf(const std::vector<std::pair<std::string, std::string>>& metadata);

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_TRACE_CONTEXT_H_
