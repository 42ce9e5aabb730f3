#include "bridge/internal/sse.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace gravity::bridge::internal {

std::string SseMessage(absl::string_view id, absl::string_view json) {
  std::string event;
  event.reserve(json.size() + id.size() + 16);
  if (!id.empty()) {
    // An id with a line break or NUL would break the framing; EventSource
    // ignores ids containing NUL anyway.
    if (id.find_first_of(absl::string_view("\r\n\0", 3)) == absl::string_view::npos) {
      absl::StrAppend(&event, "id: ", id, "\n");
    }
  }
  for (absl::string_view line : absl::StrSplit(json, absl::ByAnyChar("\r\n"), absl::SkipEmpty())) {
    absl::StrAppend(&event, "data: ", line, "\n");
  }
  event += "\n";
  return event;
}

std::string SseEnd(absl::string_view status_json) {
  return absl::StrCat("event: end\ndata: ", status_json, "\n\n");
}

std::string SseKeepAlive() { return ": keep-alive\n\n"; }

std::string SseRetry(absl::Duration delay) {
  return absl::StrCat("retry: ", absl::ToInt64Milliseconds(delay), "\n\n");
}

std::string NdjsonResult(absl::string_view json) {
  return absl::StrCat("{\"result\":", json, "}\n");
}

std::string NdjsonError(absl::string_view status_json) {
  return absl::StrCat("{\"error\":", status_json, "}\n");
}

}  // namespace gravity::bridge::internal
