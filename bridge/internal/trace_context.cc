#include "bridge/internal/trace_context.h"

#include <cstdint>

#include "absl/random/random.h"
#include "absl/strings/str_format.h"

namespace gravity::bridge::internal {

namespace {

bool IsLowerHex(absl::string_view text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsAllZeros(absl::string_view text) {
  return text.find_first_not_of('0') == absl::string_view::npos;
}

}  // namespace

bool IsValidTraceparent(absl::string_view traceparent) {
  // version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2.
  if (traceparent.size() < 55) return false;
  const absl::string_view version = traceparent.substr(0, 2);
  const absl::string_view trace_id = traceparent.substr(3, 32);
  const absl::string_view parent_id = traceparent.substr(36, 16);
  const absl::string_view flags = traceparent.substr(53, 2);
  if (traceparent[2] != '-' || traceparent[35] != '-' || traceparent[52] != '-') return false;
  if (!IsLowerHex(version) || version == "ff" || !IsLowerHex(trace_id) || !IsLowerHex(parent_id) ||
      !IsLowerHex(flags) || IsAllZeros(trace_id) || IsAllZeros(parent_id)) {
    return false;
  }
  // Version 00 is exactly 55 characters; a later version may append "-...".
  if (version == "00") return traceparent.size() == 55;
  return traceparent.size() == 55 || traceparent[55] == '-';
}

std::string NewTraceparent() {
  thread_local absl::BitGen random;
  uint64_t high = 0;
  uint64_t low = 0;
  while (high == 0 && low == 0) {
    high = absl::Uniform<uint64_t>(random);
    low = absl::Uniform<uint64_t>(random);
  }
  uint64_t parent = 0;
  while (parent == 0) parent = absl::Uniform<uint64_t>(random);
  return absl::StrFormat("00-%016x%016x-%016x-00", high, low, parent);
}

std::string TraceIdOf(const std::vector<std::pair<std::string, std::string>>& metadata) {
  for (const auto& [key, value] : metadata) {
    if (key == "traceparent" && value.size() >= 35) return value.substr(3, 32);
  }
  return "";
}

}  // namespace gravity::bridge::internal
