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
