#include "bridge/internal/request_mapping.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "boost/url/parse_query.hpp"
#include "bridge/internal/json_text.h"
#include "bridge/internal/status_mapping.h"

namespace gravity::bridge::internal {

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::OneofDescriptor;
using google::protobuf::Reflection;

const FieldDescriptor* FindField(const Descriptor* type, absl::string_view name) {
  const std::string key(name);
  if (const FieldDescriptor* field = type->FindFieldByName(key)) return field;
  for (int i = 0; i < type->field_count(); ++i) {
    if (type->field(i)->json_name() == key) return type->field(i);
  }
  return nullptr;
}

absl::Status BadValue(absl::string_view path, absl::string_view value, absl::string_view kind) {
  return absl::InvalidArgumentError(
      absl::StrCat("field \"", path, "\": \"", value, "\" is not a valid ", kind));
}

// The number grammar is JSON's (RFC 8259), as proto3 JSON and grpc-gateway
// read numbers, and nothing looser: no whitespace, no '+', no leading zeros,
// no hex. absl's SimpleAto* alone would accept " 1", "+1" and "inf".
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Consumes `-?(0|[1-9][0-9]*)` from the front of `text`.
bool ConsumeJsonInteger(absl::string_view* text) {
  if (!text->empty() && text->front() == '-') text->remove_prefix(1);
  if (text->empty() || !IsDigit(text->front())) return false;
  if (text->front() == '0') {
    text->remove_prefix(1);
  } else {
    while (!text->empty() && IsDigit(text->front())) text->remove_prefix(1);
  }
  return true;
}

// `-?(0|[1-9][0-9]*)`; unsigned types take no sign at all.
bool IsJsonInteger(absl::string_view text, bool allow_minus) {
  if (!allow_minus && !text.empty() && text.front() == '-') return false;
  return ConsumeJsonInteger(&text) && text.empty();
}

// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
bool IsJsonNumber(absl::string_view text) {
  if (!ConsumeJsonInteger(&text)) return false;
  auto digits = [&text] {
    if (text.empty() || !IsDigit(text.front())) return false;
    while (!text.empty() && IsDigit(text.front())) text.remove_prefix(1);
    return true;
  };
  if (!text.empty() && text.front() == '.') {
    text.remove_prefix(1);
    if (!digits()) return false;
  }
  if (!text.empty() && (text.front() == 'e' || text.front() == 'E')) {
    text.remove_prefix(1);
    if (!text.empty() && (text.front() == '+' || text.front() == '-')) text.remove_prefix(1);
    if (!digits()) return false;
  }
  return text.empty();
}

// An integer of type T; out-of-range values are rejected (by SimpleAtoi).
template <typename T>
bool ParseInteger(absl::string_view text, T* out) {
  return IsJsonInteger(text, std::numeric_limits<T>::is_signed) && absl::SimpleAtoi(text, out);
}

// A JSON number, or proto3 JSON's "NaN", "Infinity", "-Infinity"; a number
// too large for a double is rejected, not made infinite.
bool ParseDouble(absl::string_view text, double* out) {
  if (text == "NaN") {
    *out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (text == "Infinity" || text == "-Infinity") {
    *out = text.front() == '-' ? -std::numeric_limits<double>::infinity()
                               : std::numeric_limits<double>::infinity();
    return true;
  }
  return IsJsonNumber(text) && absl::SimpleAtod(text, out) && std::isfinite(*out);
}

bool ParseFloat(absl::string_view text, float* out) {
  double v;
  if (!ParseDouble(text, &v)) return false;
  if (std::isfinite(v) && std::fabs(v) > std::numeric_limits<float>::max()) return false;
  *out = static_cast<float>(v);
  return true;
}

bool ParseBool(absl::string_view text, bool* out) {
  if (text == "true" || text == "1") {
    *out = true;
    return true;
  }
  if (text == "false" || text == "0") {
    *out = false;
    return true;
  }
  return false;
}

absl::Status SetScalar(absl::string_view path, absl::string_view value,
                       const FieldDescriptor* field, Message* message) {
  const Reflection* reflection = message->GetReflection();
  const bool repeated = field->is_repeated();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t v;
      if (!ParseInteger(value, &v)) return BadValue(path, value, "int32");
      repeated ? reflection->AddInt32(message, field, v) : reflection->SetInt32(message, field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t v;
      if (!ParseInteger(value, &v)) return BadValue(path, value, "int64");
      repeated ? reflection->AddInt64(message, field, v) : reflection->SetInt64(message, field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      uint32_t v;
      if (!ParseInteger(value, &v)) return BadValue(path, value, "uint32");
      repeated ? reflection->AddUInt32(message, field, v)
               : reflection->SetUInt32(message, field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t v;
      if (!ParseInteger(value, &v)) return BadValue(path, value, "uint64");
      repeated ? reflection->AddUInt64(message, field, v)
               : reflection->SetUInt64(message, field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      double v;
      if (!ParseDouble(value, &v)) return BadValue(path, value, "double");
      repeated ? reflection->AddDouble(message, field, v)
               : reflection->SetDouble(message, field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_FLOAT: {
      float v;
      if (!ParseFloat(value, &v)) return BadValue(path, value, "float");
      repeated ? reflection->AddFloat(message, field, v) : reflection->SetFloat(message, field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool v;
      if (!ParseBool(value, &v)) return BadValue(path, value, "bool (true or false)");
      repeated ? reflection->AddBool(message, field, v) : reflection->SetBool(message, field, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const auto* type = field->enum_type();
      const auto* named = type->FindValueByName(std::string(value));
      int number;
      if (named == nullptr && ParseInteger(value, &number)) {
        named = type->FindValueByNumber(number);
      }
      if (named == nullptr) return BadValue(path, value, absl::StrCat(type->full_name(), " value"));
      repeated ? reflection->AddEnum(message, field, named)
               : reflection->SetEnum(message, field, named);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string v(value);
      if (field->type() == FieldDescriptor::TYPE_STRING && !IsValidUtf8(value)) {
        return BadValue(path, value, "UTF-8 string");
      }
      if (field->type() == FieldDescriptor::TYPE_BYTES) {
        // proto3 JSON writes bytes as base64; accept both alphabets. Abseil's
        // decoders skip whitespace, so a stray space (or a '+' the query
        // decoded to one) would silently change the bytes: refuse it first.
        const bool alphabet_only = value.find_first_not_of(
                                       "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                       "0123456789+/-_=") == absl::string_view::npos;
        if (!alphabet_only ||
            (!absl::Base64Unescape(value, &v) && !absl::WebSafeBase64Unescape(value, &v))) {
          return BadValue(path, value, "base64 bytes value");
        }
      }
      repeated ? reflection->AddString(message, field, std::move(v))
               : reflection->SetString(message, field, std::move(v));
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "field \"", path, "\" is a message; set its fields with \"", path, ".<field>\""));
}

// A field in the message object that holds it.
struct FieldInMessage {
  Message* message;
  const FieldDescriptor* field;
};

// The fields that `path` goes through, the one it names last; the messages on
// the way are created ("a.b" makes `a`).
absl::StatusOr<std::vector<FieldInMessage>> Resolve(absl::string_view path, Message* message) {
  std::vector<absl::string_view> parts = absl::StrSplit(path, '.');
  std::vector<FieldInMessage> steps;
  Message* target = message;
  for (size_t i = 0; i < parts.size(); ++i) {
    const FieldDescriptor* field = FindField(target->GetDescriptor(), parts[i]);
    if (field == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("field \"", path,
                                                     "\": ", target->GetDescriptor()->full_name(),
                                                     " has no field \"", parts[i], "\""));
    }
    steps.push_back({target, field});
    if (i + 1 == parts.size()) return steps;
    if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || field->is_repeated()) {
      return absl::InvalidArgumentError(
          absl::StrCat("field \"", path, "\": \"", parts[i], "\" is not a singular message"));
    }
    target = target->GetReflection()->MutableMessage(target, field);
  }
  return absl::InvalidArgumentError("empty field name");
}

}  // namespace

absl::Status SetField(absl::string_view path, absl::string_view value, Message* message) {
  absl::StatusOr<std::vector<FieldInMessage>> steps = Resolve(path, message);
  if (!steps.ok()) return steps.status();
  return SetScalar(path, value, steps->back().field, steps->back().message);
}

absl::Status ApplyQuery(const std::vector<std::pair<std::string, std::string>>& params,
                        Message* message) {
  // A second value for a singular field, a second member of a oneof or a
  // second bridge parameter is an error rather than silently winning. Fields
  // count per message object, so "a.b" and "a.c" are two fields.
  std::set<std::pair<const Message*, const FieldDescriptor*>> singular;
  std::map<std::pair<const Message*, const OneofDescriptor*>, const FieldDescriptor*> oneofs;
  std::set<std::string> own;
  for (const auto& [key, value] : params) {
    if (key == kAccessTokenParam || key == kLastEventIdParam) {
      if (!own.insert(key).second) {
        return absl::InvalidArgumentError(
            absl::StrCat("parameter \"", key, "\" given more than once"));
      }
      continue;
    }
    absl::StatusOr<std::vector<FieldInMessage>> steps = Resolve(key, message);
    if (!steps.ok()) return steps.status();
    const auto [target, field] = steps->back();
    if (!field->is_repeated() && !singular.emplace(target, field).second) {
      return absl::InvalidArgumentError(absl::StrCat("field \"", key, "\" given more than once"));
    }
    for (const auto& step : *steps) {
      const OneofDescriptor* oneof = step.field->real_containing_oneof();
      if (oneof == nullptr) continue;
      auto [it, added] = oneofs.emplace(std::make_pair(step.message, oneof), step.field);
      if (!added && it->second != step.field) {
        return absl::InvalidArgumentError(
            absl::StrCat("field \"", key, "\": oneof \"", oneof->name(),
                         "\" has a field given already (\"", it->second->name(), "\")"));
      }
    }
    if (absl::Status set = SetScalar(key, value, field, target); !set.ok()) return set;
  }
  return absl::OkStatus();
}

namespace {

// A recursive scan of JSON that is known to be well formed (protobuf's parser
// took it): keys are decoded and compared per object, against the message
// type where there is one.
class BodyScanner {
 public:
  explicit BodyScanner(absl::string_view json) : json_(json) {}

  absl::Status Scan(const Descriptor* type, std::vector<const FieldDescriptor*>* top_level) {
    SkipSpace();
    return Value(type, /*map_value=*/nullptr, top_level, 0);
  }

 private:
  // Protobuf's own parser stops at 100 levels; this stays within it.
  static constexpr int kMaxDepth = 128;

  void SkipSpace() {
    while (at_ < json_.size() &&
           (json_[at_] == ' ' || json_[at_] == '\t' || json_[at_] == '\n' || json_[at_] == '\r')) {
      ++at_;
    }
  }

  static void AppendUtf8(uint32_t code, std::string* out) {
    if (code < 0x80) {
      out->push_back(static_cast<char>(code));
    } else if (code < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (code >> 6)));
      out->push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else if (code < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (code >> 12)));
      out->push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (code >> 18)));
      out->push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (code & 0x3F)));
    }
  }

  uint32_t Hex4() {
    uint32_t code = 0;
    for (int i = 0; i < 4 && at_ < json_.size(); ++i, ++at_) {
      const char c = json_[at_];
      code = code * 16 + static_cast<uint32_t>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return code;
  }

  // At a '"': the string, escapes decoded ("a" and "\u0061" are one key).
  std::string String() {
    std::string text;
    ++at_;
    while (at_ < json_.size() && json_[at_] != '"') {
      if (json_[at_] != '\\') {
        text.push_back(json_[at_++]);
        continue;
      }
      ++at_;
      const char escape = at_ < json_.size() ? json_[at_++] : '\0';
      switch (escape) {
        case 'b':
          text.push_back('\b');
          break;
        case 'f':
          text.push_back('\f');
          break;
        case 'n':
          text.push_back('\n');
          break;
        case 'r':
          text.push_back('\r');
          break;
        case 't':
          text.push_back('\t');
          break;
        case 'u': {
          uint32_t code = Hex4();
          if (code >= 0xD800 && code < 0xDC00 && json_.substr(at_, 2) == "\\u") {
            at_ += 2;
            code = 0x10000 + ((code - 0xD800) << 10) + (Hex4() - 0xDC00);
          }
          AppendUtf8(code, &text);
          break;
        }
        default:
          text.push_back(escape);
      }
    }
    ++at_;  // the closing quote
    return text;
  }

  // A value of a field of message `type` (null: a plain JSON value), or a
  // map's value (`map_value` is then the map's value field).
  absl::Status Value(const Descriptor* type, const FieldDescriptor* map_value,
                     std::vector<const FieldDescriptor*>* top_level, int depth) {
    if (depth > kMaxDepth) return absl::InvalidArgumentError("request body: nested too deep");
    if (at_ >= json_.size()) return absl::OkStatus();
    const char c = json_[at_];
    if (c == '{') return Object(type, map_value, top_level, depth);
    if (c == '[') {
      ++at_;
      SkipSpace();
      while (at_ < json_.size() && json_[at_] != ']') {
        const size_t before = at_;
        if (absl::Status element = Value(type, nullptr, nullptr, depth + 1); !element.ok()) {
          return element;
        }
        // Never loops on what well-formed JSON cannot hold.
        if (at_ == before) return absl::OkStatus();
        SkipSpace();
        if (at_ < json_.size() && json_[at_] == ',') ++at_;
        SkipSpace();
      }
      ++at_;
      return absl::OkStatus();
    }
    if (c == '"') {
      String();
      return absl::OkStatus();
    }
    while (at_ < json_.size() && json_[at_] != ',' && json_[at_] != '}' && json_[at_] != ']' &&
           json_[at_] != ' ' && json_[at_] != '\t' && json_[at_] != '\n' && json_[at_] != '\r') {
      ++at_;  // a number, true, false or null
    }
    return absl::OkStatus();
  }

  // Whether `type` is read as a message of fields (not a well-known type with
  // a JSON form of its own).
  static bool HasFieldKeys(const Descriptor* type) {
    if (type == nullptr) return false;
    const std::string& name = type->full_name();
    return name != "google.protobuf.Struct" && name != "google.protobuf.Value" &&
           name != "google.protobuf.Any" && name != "google.protobuf.ListValue";
  }

  absl::Status Object(const Descriptor* type, const FieldDescriptor* map_value,
                      std::vector<const FieldDescriptor*>* top_level, int depth) {
    ++at_;
    std::map<std::string, std::string> plain_keys;  // decoded key -> as written
    std::map<const FieldDescriptor*, std::string> fields;
    SkipSpace();
    while (at_ < json_.size() && json_[at_] == '"') {
      const std::string key = String();
      SkipSpace();
      ++at_;  // ':'
      SkipSpace();
      const FieldDescriptor* field = nullptr;
      if (map_value == nullptr && HasFieldKeys(type)) field = FindField(type, key);
      if (field != nullptr) {
        auto [it, added] = fields.emplace(field, key);
        if (!added) {
          return absl::InvalidArgumentError(absl::StrCat(
              "request body: field \"", field->name(), "\" given more than once",
              it->second == key ? ""
                                : absl::StrCat(" (as \"", it->second, "\" and \"", key, "\")")));
        }
        if (top_level != nullptr) top_level->push_back(field);
      } else if (!plain_keys.emplace(key, key).second) {
        return absl::InvalidArgumentError(
            absl::StrCat("request body: key \"", key, "\" given more than once"));
      }
      // What the value is read as.
      const Descriptor* value_type = nullptr;
      const FieldDescriptor* value_map = nullptr;
      if (map_value != nullptr) {
        value_type = map_value->message_type();
      } else if (field != nullptr && field->is_map()) {
        value_map = field->message_type()->map_value();
      } else if (field != nullptr) {
        value_type = field->message_type();
      }
      const size_t before = at_;
      if (absl::Status value = Value(value_type, value_map, nullptr, depth + 1); !value.ok()) {
        return value;
      }
      if (at_ == before) return absl::OkStatus();
      SkipSpace();
      if (at_ < json_.size() && json_[at_] == ',') ++at_;
      SkipSpace();
    }
    ++at_;  // '}'
    return absl::OkStatus();
  }

  absl::string_view json_;
  size_t at_ = 0;
};

}  // namespace

absl::Status CheckBodyFields(absl::string_view json, const Descriptor& type,
                             std::vector<const FieldDescriptor*>* top_level) {
  return BodyScanner(json).Scan(&type, top_level);
}

const FieldDescriptor* QueryKeyField(absl::string_view key, const Descriptor& type) {
  return FindField(&type, key.substr(0, key.find('.')));
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseQuery(
    absl::string_view query) {
  std::vector<std::pair<std::string, std::string>> params;
  if (query.empty()) return params;
  // Boost.URL 1.81's parse_query measures its input with strlen
  // (boostorg/url#757): it must get a NUL-terminated copy, never a view into
  // the request head.
  const std::string terminated(query);
  auto parsed = boost::urls::parse_query(boost::core::string_view(terminated));
  if (!parsed) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed query string: ", parsed.error().message()));
  }
  boost::urls::encoding_opts decoding;
  decoding.space_as_plus = true;
  for (auto param : *parsed) {
    params.emplace_back(param.key.decode(decoding),
                        param.has_value ? param.value.decode(decoding) : std::string());
  }
  return params;
}

}  // namespace gravity::bridge::internal
