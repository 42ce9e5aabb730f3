// JSON text, the one copy of it in the bridge: UTF-8 validation and JSON
// string literals, in the two styles the bridge writes (proto3 JSON as
// protobuf's json_util writes it, and the messages of its own Status JSON).
// Pure functions; thread-safe.
#ifndef GRAVITY_BRIDGE_INTERNAL_JSON_TEXT_H_
#define GRAVITY_BRIDGE_INTERNAL_JSON_TEXT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace gravity::bridge::internal {

// Whether `text` is well-formed UTF-8 (what proto3 requires of string fields):
// Unicode's table 3-7, so no overlong forms, no surrogates, nothing past
// U+10FFFF.
bool IsValidUtf8(absl::string_view text);

enum class JsonStringStyle {
  // Byte for byte what json_util writes: '<', '>', DEL, U+0080..U+009F and
  // Unicode format characters as \u escapes. Invalid UTF-8 is refused.
  kProto3,
  // For text the bridge writes itself (status messages): only what JSON
  // requires is escaped, and invalid UTF-8 becomes U+FFFD, so any bytes give
  // a valid literal.
  kMessage,
};

// Appends `text` as a quoted JSON string literal. False (and `out` partly
// written) only for invalid UTF-8 in kProto3.
bool AppendJsonString(absl::string_view text, JsonStringStyle style, std::string* out);

// `text` as a kMessage literal, quotes included.
std::string JsonString(absl::string_view text);

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_JSON_TEXT_H_
