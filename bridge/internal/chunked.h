// HTTP/1.1 chunked framing (RFC 9112 §7.1), the one copy of it: the session's
// queued writes and the DirectWriter's sends frame their chunks with it.
// Pure functions; thread-safe.
#ifndef GRAVITY_BRIDGE_INTERNAL_CHUNKED_H_
#define GRAVITY_BRIDGE_INTERNAL_CHUNKED_H_

#include <cstddef>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace gravity::bridge::internal {

// "<hex size>\r\n" into `line`, returning its length. 24 bytes hold any size_t.
inline size_t ChunkSizeLine(size_t size, char (&line)[24]) {
  return static_cast<size_t>(std::snprintf(line, sizeof line, "%zx\r\n", size));
}

inline constexpr absl::string_view kChunkEnd = "\r\n";
// The last chunk with no trailer.
inline constexpr absl::string_view kLastChunk = "0\r\n\r\n";

// Appends `body` as one chunk; an empty body appends nothing (an empty chunk
// would be the last one).
inline void AppendChunk(absl::string_view body, std::string* out) {
  if (body.empty()) return;
  char line[24];
  const size_t length = ChunkSizeLine(body.size(), line);
  absl::StrAppend(out, absl::string_view(line, length), body, kChunkEnd);
}

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_CHUNKED_H_
