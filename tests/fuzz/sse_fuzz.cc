// sse_fuzz: bytes -> an event id, a status code, a retry delay and a payload;
// encoded with the bridge's SSE and NDJSON encoders (bridge/internal/stream_format.h),
// then read back by an event-stream parser written here from the HTML
// standard (WHATWG HTML §9.2.6, "Interpreting an event stream"). The round
// trip must give back what the encoders promise; anything else traps.
//
// Input: [id length][status code][retry ms, 2 bytes][id][payload].
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "bridge/internal/json_text.h"
#include "bridge/internal/status_mapping.h"
#include "bridge/internal/stream_format.h"
#include "grpcpp/support/status.h"

namespace {

using namespace gravity::bridge::internal;

void Require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "sse_fuzz: %s\n", what);
    __builtin_trap();
  }
}

// ---- An event-stream parser, per the HTML standard ----

struct Event {
  std::string type;
  std::string data;
  std::string last_event_id;
};

struct EventStream {
  std::vector<Event> events;
  std::string last_event_id;  // the EventSource's, at the end of the stream
  std::optional<int64_t> retry_ms;
};

// Bytes are taken as they are (the standard decodes UTF-8 first; decoding
// never merges a byte with a following CR or LF, so lines are the same).
EventStream Interpret(absl::string_view stream) {
  EventStream result;
  std::string data, type, id;
  auto dispatch = [&] {
    result.last_event_id = id;
    if (data.empty()) {
      type.clear();
      return;
    }
    if (data.back() == '\n') data.pop_back();
    result.events.push_back({type.empty() ? "message" : type, data, result.last_event_id});
    data.clear();
    type.clear();
  };
  size_t pos = 0;
  if (stream.substr(0, 3) == "\xEF\xBB\xBF") pos = 3;  // one leading BOM is ignored
  while (pos < stream.size()) {
    // Lines end with CRLF, LF or CR; an unterminated last line is discarded.
    const size_t end = stream.find_first_of("\r\n", pos);
    if (end == absl::string_view::npos) break;
    const absl::string_view line = stream.substr(pos, end - pos);
    pos = end + 1;
    if (stream[end] == '\r' && pos < stream.size() && stream[pos] == '\n') ++pos;
    if (line.empty()) {
      dispatch();
      continue;
    }
    if (line.front() == ':') continue;  // a comment
    const size_t colon = line.find(':');
    const absl::string_view field = line.substr(0, colon);
    absl::string_view value;
    if (colon != absl::string_view::npos) {
      value = line.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    }
    if (field == "event") {
      type = std::string(value);
    } else if (field == "data") {
      data.append(value.data(), value.size());
      data.push_back('\n');
    } else if (field == "id") {
      if (value.find('\0') == absl::string_view::npos) id = std::string(value);
    } else if (field == "retry") {
      bool digits = !value.empty();
      for (char c : value) digits = digits && c >= '0' && c <= '9';
      int64_t ms;
      if (digits && absl::SimpleAtoi(value, &ms)) result.retry_ms = ms;
    }
  }
  return result;  // an event without its blank line is never dispatched
}

// What AppendSseMessage promises for `payload` (stream_format.h): each of its lines
// becomes a `data:` line, a line break being CR, LF or CRLF; empty lines are
// dropped (the encoder splits with SkipEmpty). So the data an EventSource sees
// is the non-empty lines joined with "\n".
std::string ExpectedData(absl::string_view payload) {
  std::string out;
  bool line_break = false;
  for (char c : payload) {
    if (c == '\r' || c == '\n') {
      line_break = !out.empty();
      continue;
    }
    if (line_break) out.push_back('\n');
    line_break = false;
    out.push_back(c);
  }
  return out;
}

// ---- JSON strings (RFC 8259 §7), to check JsonString independently ----

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Whether `text` is well-formed UTF-8: decoded and encoded again, it stays
// the same (overlong forms, surrogates and values past U+10FFFF do not).
bool WellFormedUtf8(absl::string_view text) {
  std::string again;
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    const int length = c < 0x80         ? 1
                       : (c >> 5) == 6  ? 2
                       : (c >> 4) == 14 ? 3
                       : (c >> 3) == 30 ? 4
                                        : 0;
    if (length == 0 || i + length > text.size()) return false;
    uint32_t cp = length == 1 ? c : c & (0x7F >> length);
    for (int k = 1; k < length; ++k) {
      const unsigned char next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (next & 0x3F);
    }
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    AppendUtf8(cp, &again);
    i += length;
  }
  return again == text;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The value of the JSON string literal `json` (quotes included), or nullopt
// when it is not one.
std::optional<std::string> DecodeJsonString(absl::string_view json) {
  if (json.size() < 2 || json.front() != '"' || json.back() != '"') return std::nullopt;
  json = json.substr(1, json.size() - 2);
  std::string out;
  auto hex4 = [&](size_t at) -> int64_t {
    if (at + 4 > json.size()) return -1;
    int64_t v = 0;
    for (size_t k = at; k < at + 4; ++k) {
      const int d = HexDigit(json[k]);
      if (d < 0) return -1;
      v = v * 16 + d;
    }
    return v;
  };
  for (size_t i = 0; i < json.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(json[i]);
    if (c < 0x20 || c == '"') return std::nullopt;
    if (c != '\\') {
      out.push_back(static_cast<char>(c));
      continue;
    }
    if (++i == json.size()) return std::nullopt;
    switch (json[i]) {
      case '"':
      case '\\':
      case '/':
        out.push_back(json[i]);
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'u': {
        int64_t cp = hex4(i + 1);
        if (cp < 0) return std::nullopt;
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {  // a surrogate pair
          if (i + 2 >= json.size() || json[i + 1] != '\\' || json[i + 2] != 'u') {
            return std::nullopt;
          }
          const int64_t low = hex4(i + 3);
          if (low < 0xDC00 || low > 0xDFFF) return std::nullopt;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          i += 6;
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return std::nullopt;
        }
        AppendUtf8(static_cast<uint32_t>(cp), &out);
        break;
      }
      default:
        return std::nullopt;
    }
  }
  if (!WellFormedUtf8(out)) return std::nullopt;
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t id_length = std::min<size_t>(data[0], size - 4);
  const auto code = static_cast<grpc::StatusCode>(data[1] % 17);
  const int64_t retry_ms = data[2] * 256 + data[3];
  const absl::string_view id = input.substr(4, id_length);
  const absl::string_view payload = input.substr(4 + id_length);

  // JsonString: a JSON string literal, one line, that decodes to the text
  // when the text is well-formed UTF-8; IsValidUtf8 agrees with a decoder.
  const std::string quoted = JsonString(payload);
  Require(quoted.find_first_of("\r\n") == std::string::npos, "JsonString is one line");
  const std::optional<std::string> decoded = DecodeJsonString(quoted);
  Require(decoded.has_value(), "JsonString writes a valid JSON string");
  Require(IsValidUtf8(payload) == WellFormedUtf8(payload), "IsValidUtf8 agrees with a decoder");
  if (IsValidUtf8(payload)) Require(*decoded == payload, "JsonString round-trips UTF-8");

  // A message, a keep-alive and the end, as one stream.
  const std::string status = StatusJson(code, payload);
  std::string message_event;
  AppendSseMessage(id, payload, &message_event);
  Require(SseMessage(id, payload) == message_event, "SseMessage is AppendSseMessage");
  std::string stream = SseRetry(absl::Milliseconds(retry_ms)) + message_event;
  stream += SseKeepAlive();
  stream += SseEnd(status);
  const EventStream parsed = Interpret(stream);
  const bool id_sent =
      !id.empty() && id.find_first_of(absl::string_view("\r\n\0", 3)) == absl::string_view::npos;
  const std::string expected_id = id_sent ? std::string(id) : "";
  const std::string expected_data = ExpectedData(payload);
  Require(parsed.retry_ms == retry_ms, "retry: gives the delay");
  Require(parsed.last_event_id == expected_id, "the id is the message's (or none)");
  const size_t messages = expected_data.empty() ? 0 : 1;
  Require(parsed.events.size() == messages + 1, "one event per message, then end");
  if (messages == 1) {
    const Event& message = parsed.events.front();
    Require(message.type == "message", "a message is a message event");
    Require(message.data == expected_data, "the data is the payload, lines normalised");
    Require(message.last_event_id == expected_id, "the message carries its id");
  }
  const Event& end = parsed.events.back();
  Require(end.type == "end" && end.data == status, "end carries the Status JSON");

  // SseEnd takes one line of JSON; any such line comes back as it went.
  if (payload.find_first_of("\r\n") == absl::string_view::npos) {
    const EventStream end_only = Interpret(SseEnd(payload));
    Require(end_only.events.size() == 1 && end_only.events[0].type == "end" &&
                end_only.events[0].data == payload,
            "SseEnd round-trips a one-line payload");
  }

  // NDJSON: one line per result, whatever the string held.
  const std::string line = NdjsonResult(quoted);
  Require(line == "{\"result\":" + quoted + "}\n", "NdjsonResult wraps the JSON");
  Require(line.find_first_of("\r\n") == line.size() - 1, "an NDJSON result is one line");
  const std::string error = NdjsonError(status);
  Require(error.find_first_of("\r\n") == error.size() - 1, "an NDJSON error is one line");
  return 0;
}
