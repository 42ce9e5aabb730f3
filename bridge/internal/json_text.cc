#include "bridge/internal/json_text.h"

#include <array>
#include <cstdint>

namespace gravity::bridge::internal {

namespace {

// The length of the well-formed UTF-8 sequence starting at text[i] (a byte
// >= 0x80), or 0 when there is none.
size_t Utf8SequenceLength(absl::string_view text, size_t i) {
  const unsigned char c = static_cast<unsigned char>(text[i]);
  const size_t length = c >= 0xF0 && c < 0xF5   ? 4
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
  for (size_t k = 2; k < length; ++k) {
    if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return 0;
  }
  return length;
}

// The code point of the well-formed sequence of `length` bytes at `p`.
uint32_t CodePoint(const unsigned char* p, size_t length) {
  uint32_t cp = p[0] & (length == 2 ? 0x1f : length == 3 ? 0x0f : 0x07);
  for (size_t k = 1; k < length; ++k) cp = (cp << 6) | (p[k] & 0x3f);
  return cp;
}

// Whether json_util writes code point `cp` (>= 0xa0) as \u escapes.
bool EscapesCodePoint(uint32_t cp) {
  switch (cp) {
    case 0x00ad:
    case 0x06dd:
    case 0x070f:
    case 0x17b4:
    case 0x17b5:
    case 0xfeff:
    case 0xfff9:
    case 0xfffa:
    case 0xfffb:
    case 0xe0001:
      return true;
    default:
      return (cp >= 0x0600 && cp <= 0x0603) || (cp >= 0x200b && cp <= 0x200f) ||
             (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x2064) ||
             (cp >= 0x206a && cp <= 0x206f) || (cp >= 0x1d173 && cp <= 0x1d17a) ||
             (cp >= 0xe0020 && cp <= 0xe007f);
  }
}

constexpr char kHex[] = "0123456789abcdef";

void AppendU16Escape(uint32_t unit, std::string* out) {
  const char buffer[6] = {'\\',
                          'u',
                          kHex[(unit >> 12) & 0xf],
                          kHex[(unit >> 8) & 0xf],
                          kHex[(unit >> 4) & 0xf],
                          kHex[unit & 0xf]};
  out->append(buffer, 6);
}

// The ASCII bytes each style copies as they are (the hot path: most text).
constexpr std::array<bool, 256> PlainBytes(JsonStringStyle style) {
  std::array<bool, 256> plain{};
  for (int c = 0x20; c < 0x80; ++c) {
    plain[c] = c != '"' && c != '\\' &&
               (style == JsonStringStyle::kMessage || (c != '<' && c != '>' && c != 0x7f));
  }
  return plain;
}
constexpr std::array<bool, 256> kPlainProto3 = PlainBytes(JsonStringStyle::kProto3);
constexpr std::array<bool, 256> kPlainMessage = PlainBytes(JsonStringStyle::kMessage);

}  // namespace

bool IsValidUtf8(absl::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (static_cast<unsigned char>(text[i]) < 0x80) continue;
    const size_t length = Utf8SequenceLength(text, i);
    if (length == 0) return false;
    i += length - 1;
  }
  return true;
}

bool AppendJsonString(absl::string_view text, JsonStringStyle style, std::string* out) {
  const bool proto3 = style == JsonStringStyle::kProto3;
  const std::array<bool, 256>& plain = proto3 ? kPlainProto3 : kPlainMessage;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  out->push_back('"');
  size_t i = 0;
  size_t run = 0;  // start of the bytes not yet copied
  while (i < n) {
    const unsigned char c = p[i];
    if (plain[c]) {
      ++i;
      continue;
    }
    if (c < 0x80) {
      out->append(text.data() + run, i - run);
      switch (c) {
        case '"':
          out->append("\\\"");
          break;
        case '\\':
          out->append("\\\\");
          break;
        case '\b':
          out->append("\\b");
          break;
        case '\t':
          out->append("\\t");
          break;
        case '\n':
          out->append("\\n");
          break;
        case '\f':
          out->append("\\f");
          break;
        case '\r':
          out->append("\\r");
          break;
        default:  // other controls; in kProto3 also '<', '>', DEL
          AppendU16Escape(c, out);
      }
      run = ++i;
      continue;
    }
    const size_t length = Utf8SequenceLength(text, i);
    if (length == 0) {
      if (proto3) return false;
      out->append(text.data() + run, i - run);
      out->append("\\ufffd");
      run = ++i;
      continue;
    }
    if (proto3) {
      const uint32_t cp = CodePoint(p + i, length);
      if (cp < 0xa0 || EscapesCodePoint(cp)) {
        out->append(text.data() + run, i - run);
        if (cp < 0x10000) {
          AppendU16Escape(cp, out);
        } else {
          const uint32_t v = cp - 0x10000;
          AppendU16Escape(0xd800 + (v >> 10), out);
          AppendU16Escape(0xdc00 + (v & 0x3ff), out);
        }
        run = i + length;
      }
    }
    i += length;
  }
  out->append(text.data() + run, n - run);
  out->push_back('"');
  return true;
}

std::string JsonString(absl::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  AppendJsonString(text, JsonStringStyle::kMessage, &out);
  return out;
}

}  // namespace gravity::bridge::internal
