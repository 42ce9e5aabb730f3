#include "bridge/internal/status_mapping.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace gravity::bridge::internal {

int HttpStatusFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return 200;
    case grpc::StatusCode::INVALID_ARGUMENT:
      return 400;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::UNIMPLEMENTED:
      return 501;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    default:
      return 500;
  }
}

namespace {

// The length of the well-formed UTF-8 sequence starting at text[i] (a byte
// >= 0x80), or 0 when there is none. Well-formed is Unicode's table 3-7: no
// overlong forms, no surrogates (U+D800..U+DFFF), nothing past U+10FFFF.
int Utf8SequenceLength(absl::string_view text, size_t i) {
  const unsigned char c = static_cast<unsigned char>(text[i]);
  const int length = c >= 0xF0 && c < 0xF5   ? 4
                     : c >= 0xE0 && c < 0xF0 ? 3
                     : c >= 0xC2 && c < 0xE0 ? 2
                                             : 0;
  if (length == 0 || i + length > text.size()) return 0;
  // The second byte's range depends on the first; the others are 80..BF.
  unsigned char low = 0x80, high = 0xBF;
  if (c == 0xE0) low = 0xA0;   // overlong below U+0800
  if (c == 0xED) high = 0x9F;  // surrogates
  if (c == 0xF0) low = 0x90;   // overlong below U+10000
  if (c == 0xF4) high = 0x8F;  // past U+10FFFF
  const unsigned char second = static_cast<unsigned char>(text[i + 1]);
  if (second < low || second > high) return 0;
  for (int k = 2; k < length; ++k) {
    if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return 0;
  }
  return length;
}

}  // namespace

bool IsValidUtf8(absl::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (static_cast<unsigned char>(text[i]) < 0x80) continue;
    const int length = Utf8SequenceLength(text, i);
    if (length == 0) return false;
    i += length - 1;
  }
  return true;
}

std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  out.reserve(text.size() + 2);
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      default:
        break;
    }
    if (c < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
      continue;
    }
    if (c < 0x80) {
      out += static_cast<char>(c);
      continue;
    }
    // Copy a well-formed UTF-8 sequence; replace anything else.
    if (const int length = Utf8SequenceLength(text, i); length > 0) {
      out.append(text.data() + i, length);
      i += length - 1;
    } else {
      out += "\\ufffd";
    }
  }
  out += '"';
  return out;
}

std::string StatusJson(grpc::StatusCode code, absl::string_view message,
                       absl::string_view details_json) {
  return absl::StrCat("{\"code\":", static_cast<int>(code), ",\"message\":", JsonString(message),
                      ",\"details\":", details_json, "}");
}

}  // namespace gravity::bridge::internal
