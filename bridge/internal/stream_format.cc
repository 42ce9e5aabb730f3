#include "bridge/internal/stream_format.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace gravity::bridge::internal {

std::string SseMessage(absl::string_view id, absl::string_view json) {
  std::string event;
  AppendSseMessage(id, json, &event);
  return event;
}

void AppendSseId(absl::string_view id, std::string* out) {
  // An id with a line break or NUL would break the framing; EventSource
  // ignores ids containing NUL anyway.
  if (!id.empty() && id.find_first_of(absl::string_view("\r\n\0", 3)) == absl::string_view::npos) {
    absl::StrAppend(out, "id: ", id, "\n");
  }
}

void AppendSseMessage(absl::string_view id, absl::string_view json, std::string* out) {
  AppendSseId(id, out);
  if (json.find_first_of("\r\n") == absl::string_view::npos) {
    // proto3 JSON is one line: the usual case, without splitting.
    if (!json.empty()) absl::StrAppend(out, "data: ", json, "\n");
  } else {
    for (absl::string_view line :
         absl::StrSplit(json, absl::ByAnyChar("\r\n"), absl::SkipEmpty())) {
      absl::StrAppend(out, "data: ", line, "\n");
    }
  }
  out->push_back('\n');
}

std::string SseEnd(absl::string_view status_json) {
  return absl::StrCat("event: end\ndata: ", status_json, "\n\n");
}

std::string SseKeepAlive() { return ": keep-alive\n\n"; }

std::string SseRetry(absl::Duration delay) {
  return absl::StrCat("retry: ", absl::ToInt64Milliseconds(delay), "\n\n");
}

std::string NdjsonResult(absl::string_view json) {
  std::string line;
  AppendNdjsonResult(json, &line);
  return line;
}

void AppendNdjsonResult(absl::string_view json, std::string* out) {
  absl::StrAppend(out, "{\"result\":", json, "}\n");
}

std::string NdjsonError(absl::string_view status_json) {
  return absl::StrCat("{\"error\":", status_json, "}\n");
}

}  // namespace gravity::bridge::internal
