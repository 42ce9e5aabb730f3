#include "bridge/internal/json_printer.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <memory>

#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "bridge/internal/json_text.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/stubs/strutil.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/unknown_field_set.h"
#include "google/protobuf/util/time_util.h"

namespace gravity::bridge::internal {

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// json_util (ProtoStreamObjectSource) fails beyond 64 nested messages; stop
// well before, so that json_util decides.
constexpr int kMaxDepth = 48;

// Timestamp and Duration limits, as json_util's.
constexpr int64_t kTimestampMinSeconds = -62135596800;  // 0001-01-01T00:00:00Z
constexpr int64_t kTimestampMaxSeconds = 253402300799;  // 9999-12-31T23:59:59Z
constexpr int64_t kDurationMaxSeconds = 315576000000;
constexpr int32_t kNanosPerSecond = 1000000000;

constexpr absl::string_view kTypeUrlPrefix = "type.googleapis.com/";

absl::Status Unsupported(absl::string_view what) {
  return absl::FailedPreconditionError(absl::StrCat("json_printer: ", what));
}

// Appends `s` as a quoted JSON string, escaped as json_util escapes. Fails on
// invalid UTF-8 (json_util drops such bytes its own way).
absl::Status AppendString(absl::string_view s, std::string* out) {
  if (!AppendJsonString(s, JsonStringStyle::kProto3, out)) {
    return Unsupported("string is not valid UTF-8");
  }
  return absl::OkStatus();
}

void AppendDouble(double v, std::string* out) {
  if (std::isnan(v)) {
    out->append("\"NaN\"");
  } else if (std::isinf(v)) {
    out->append(v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else {
    out->append(google::protobuf::SimpleDtoa(v));
  }
}

void AppendFloat(float v, std::string* out) {
  if (std::isnan(v)) {
    out->append("\"NaN\"");
  } else if (std::isinf(v)) {
    out->append(v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else {
    out->append(google::protobuf::SimpleFtoa(v));
  }
}

// google.protobuf.FieldMask paths: json_util's ToCamelCase.
std::string ToCamelCase(absl::string_view input) {
  bool capitalize_next = false;
  bool was_cap = true;
  bool is_cap = false;
  bool first_word = true;
  std::string result;
  result.reserve(input.size());
  for (size_t i = 0; i < input.size(); ++i, was_cap = is_cap) {
    is_cap = absl::ascii_isupper(input[i]);
    if (input[i] == '_') {
      capitalize_next = true;
      if (!result.empty()) first_word = false;
      continue;
    } else if (first_word) {
      if (!result.empty() && is_cap &&
          (!was_cap || (i + 1 < input.size() && absl::ascii_islower(input[i + 1])))) {
        first_word = false;
        result.push_back(input[i]);
      } else {
        result.push_back(absl::ascii_tolower(input[i]));
        continue;
      }
    } else if (capitalize_next) {
      capitalize_next = false;
      if (absl::ascii_islower(input[i])) {
        result.push_back(absl::ascii_toupper(input[i]));
        continue;
      } else {
        result.push_back(input[i]);
        continue;
      }
    } else {
      result.push_back(absl::ascii_tolower(input[i]));
    }
  }
  return result;
}

// json_util's ConvertFieldMaskPath with ToCamelCase: segments between '.',
// '(', ')' converted, quoted parts kept.
std::string ConvertFieldMaskPath(absl::string_view path) {
  std::string result;
  result.reserve(path.size() << 1);
  bool is_quoted = false;
  bool is_escaping = false;
  size_t current_segment_start = 0;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (is_quoted) {
      if (i == path.size()) break;
      result.push_back(path[i]);
      if (is_escaping) {
        is_escaping = false;
      } else if (path[i] == '\\') {
        is_escaping = true;
      } else if (path[i] == '\"') {
        current_segment_start = i + 1;
        is_quoted = false;
      }
      continue;
    }
    if (i == path.size() || path[i] == '.' || path[i] == '(' || path[i] == ')' || path[i] == '\"') {
      result += ToCamelCase(path.substr(current_segment_start, i - current_segment_start));
      if (i < path.size()) result.push_back(path[i]);
      current_segment_start = i + 1;
    }
    if (i < path.size() && path[i] == '\"') is_quoted = true;
  }
  return result;
}

bool IsValueType(const Descriptor* d) {
  return d->well_known_type() == Descriptor::WELLKNOWNTYPE_VALUE;
}

class Printer {
 public:
  explicit Printer(std::string* out) : out_(out) {}

  // A message as a JSON value. Precondition: !RendersNothing(m).
  absl::Status MessageValue(const Message& m, int depth) {
    if (++depth > kMaxDepth) return Unsupported("message nested too deeply");
    const Descriptor* d = m.GetDescriptor();
    const Descriptor::WellKnownType wkt = d->well_known_type();
    if (wkt == Descriptor::WELLKNOWNTYPE_UNSPECIFIED) {
      out_->push_back('{');
      bool first = true;
      if (auto s = Fields(m, depth, &first); !s.ok()) return s;
      out_->push_back('}');
      return absl::OkStatus();
    }
    if (!m.GetReflection()->GetUnknownFields(m).empty()) {
      return Unsupported("well-known type with unknown fields");
    }
    return WellKnown(m, wkt, depth);
  }

 private:
  // Whether json_util prints nothing at all for `m` (a Value with no kind:
  // its key, or its place in a list, is left out).
  static bool RendersNothing(const Message& m) {
    const Descriptor* d = m.GetDescriptor();
    if (!IsValueType(d)) return false;
    if (d->oneof_decl_count() != 1) return false;
    return m.GetReflection()->GetOneofFieldDescriptor(m, d->oneof_decl(0)) == nullptr;
  }

  // The fields with presence of a non-well-known message, in field-number
  // order, into an open object.
  absl::Status Fields(const Message& m, int depth, bool* first) {
    const Descriptor* d = m.GetDescriptor();
    const Reflection* r = m.GetReflection();
    if (d->options().message_set_wire_format()) return Unsupported("MessageSet");
    const google::protobuf::UnknownFieldSet& unknown = r->GetUnknownFields(m);
    for (int i = 0; i < unknown.field_count(); ++i) {
      if (d->FindFieldByNumber(unknown.field(i).number()) != nullptr) {
        return Unsupported("unknown field with a known field's number");
      }
    }
    const int count = d->field_count();
    absl::InlinedVector<const FieldDescriptor*, 32> present;
    bool sorted = true;
    int last_number = 0;
    for (int i = 0; i < count; ++i) {
      const FieldDescriptor* f = d->field(i);
      if (f->number() < last_number) sorted = false;
      last_number = f->number();
      if (f->is_repeated() ? r->FieldSize(m, f) > 0 : r->HasField(m, f)) present.push_back(f);
    }
    if (!sorted) {
      std::sort(present.begin(), present.end(),
                [](const FieldDescriptor* a, const FieldDescriptor* b) {
                  return a->number() < b->number();
                });
    }
    for (const FieldDescriptor* f : present) {
      if (auto s = Field(m, f, depth, first); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  void Key(absl::string_view name, bool* first) {
    if (!*first) out_->push_back(',');
    *first = false;
    // json_name is escaped like any string; plain names take the fast path.
    (void)AppendString(name, out_);
    out_->push_back(':');
  }

  absl::Status Field(const Message& m, const FieldDescriptor* f, int depth, bool* first) {
    if (f->type() == FieldDescriptor::TYPE_GROUP) return Unsupported("group field");
    const Reflection* r = m.GetReflection();
    if (f->is_map()) {
      Key(f->json_name(), first);
      return MapObject(m, f, depth);
    }
    if (f->is_repeated()) {
      Key(f->json_name(), first);
      return List(m, f, depth);
    }
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      const Message& sub = r->GetMessage(m, f);
      if (RendersNothing(sub)) return absl::OkStatus();
      Key(f->json_name(), first);
      return MessageValue(sub, depth);
    }
    Key(f->json_name(), first);
    return Singular(m, f);
  }

  absl::Status List(const Message& m, const FieldDescriptor* f, int depth) {
    const Reflection* r = m.GetReflection();
    const int size = r->FieldSize(m, f);
    out_->push_back('[');
    bool first = true;
    for (int i = 0; i < size; ++i) {
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        const Message& sub = r->GetRepeatedMessage(m, f, i);
        if (RendersNothing(sub)) continue;
        if (!first) out_->push_back(',');
        first = false;
        if (auto s = MessageValue(sub, depth); !s.ok()) return s;
      } else {
        if (!first) out_->push_back(',');
        first = false;
        if (auto s = Repeated(m, f, i); !s.ok()) return s;
      }
    }
    out_->push_back(']');
    return absl::OkStatus();
  }

  // A map of a DynamicMessage as an object, its entries in the order
  // json_util reads them from the serialized message: that of the map's
  // repeated representation, which after parsing holds the wire's order,
  // duplicate keys included (what the DynamicMessage then serializes).
  absl::Status MapObject(const Message& m, const FieldDescriptor* f, int depth) {
    const Reflection* r = m.GetReflection();
    const Descriptor* entry_type = f->message_type();
    const FieldDescriptor* key_field = entry_type->map_key();
    const FieldDescriptor* value_field = entry_type->map_value();
    // A generated message serializes the map itself, in an order that public
    // reflection does not show (the repeated representation can disagree).
    if (r->GetMessageFactory() == google::protobuf::MessageFactory::generated_factory()) {
      return Unsupported("map field of a generated message");
    }
    out_->push_back('{');
    bool first = true;
    std::string key;
    const int size = r->FieldSize(m, f);
    for (int i = 0; i < size; ++i) {
      const Message& entry = r->GetRepeatedMessage(m, f, i);
      const Reflection* er = entry.GetReflection();
      if (!er->GetUnknownFields(entry).empty()) return Unsupported("map entry with unknown fields");
      key.clear();
      switch (key_field->cpp_type()) {
        case FieldDescriptor::CPPTYPE_STRING:
          key = er->GetString(entry, key_field);
          break;
        case FieldDescriptor::CPPTYPE_INT32:
          absl::StrAppend(&key, er->GetInt32(entry, key_field));
          break;
        case FieldDescriptor::CPPTYPE_INT64:
          absl::StrAppend(&key, er->GetInt64(entry, key_field));
          break;
        case FieldDescriptor::CPPTYPE_UINT32:
          absl::StrAppend(&key, er->GetUInt32(entry, key_field));
          break;
        case FieldDescriptor::CPPTYPE_UINT64:
          absl::StrAppend(&key, er->GetUInt64(entry, key_field));
          break;
        case FieldDescriptor::CPPTYPE_BOOL:
          key = er->GetBool(entry, key_field) ? "true" : "false";
          break;
        default:
          return Unsupported("map key type");
      }
      // Both fields of an entry are serialized, whatever their values.
      if (value_field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        const Message& value = er->GetMessage(entry, value_field);
        if (RendersNothing(value)) continue;
        if (!first) out_->push_back(',');
        first = false;
        if (auto s = AppendString(key, out_); !s.ok()) return s;
        out_->push_back(':');
        if (auto s = MessageValue(value, depth); !s.ok()) return s;
      } else {
        if (!first) out_->push_back(',');
        first = false;
        if (auto s = AppendString(key, out_); !s.ok()) return s;
        out_->push_back(':');
        if (auto s = Singular(entry, value_field); !s.ok()) return s;
      }
    }
    out_->push_back('}');
    return absl::OkStatus();
  }

  void Enum(const google::protobuf::EnumDescriptor* type, int number) {
    if (type->full_name() == "google.protobuf.NullValue") {
      out_->append("null");
      return;
    }
    const google::protobuf::EnumValueDescriptor* value = type->FindValueByNumber(number);
    if (value != nullptr) {
      out_->push_back('"');
      out_->append(value->name());  // an identifier: nothing to escape
      out_->push_back('"');
    } else {
      absl::StrAppend(out_, number);
    }
  }

  // A singular non-message field's value (its default when unset).
  absl::Status Singular(const Message& m, const FieldDescriptor* f) {
    const Reflection* r = m.GetReflection();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        absl::StrAppend(out_, r->GetInt32(m, f));
        return absl::OkStatus();
      case FieldDescriptor::CPPTYPE_UINT32:
        absl::StrAppend(out_, r->GetUInt32(m, f));
        return absl::OkStatus();
      case FieldDescriptor::CPPTYPE_INT64:
        absl::StrAppend(out_, "\"", r->GetInt64(m, f), "\"");
        return absl::OkStatus();
      case FieldDescriptor::CPPTYPE_UINT64:
        absl::StrAppend(out_, "\"", r->GetUInt64(m, f), "\"");
        return absl::OkStatus();
      case FieldDescriptor::CPPTYPE_DOUBLE:
        AppendDouble(r->GetDouble(m, f), out_);
        return absl::OkStatus();
      case FieldDescriptor::CPPTYPE_FLOAT:
        AppendFloat(r->GetFloat(m, f), out_);
        return absl::OkStatus();
      case FieldDescriptor::CPPTYPE_BOOL:
        out_->append(r->GetBool(m, f) ? "true" : "false");
        return absl::OkStatus();
      case FieldDescriptor::CPPTYPE_ENUM:
        Enum(f->enum_type(), r->GetEnumValue(m, f));
        return absl::OkStatus();
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string scratch;
        const std::string& s = r->GetStringReference(m, f, &scratch);
        return StringOrBytes(f, s);
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        break;
    }
    return Unsupported("field type");
  }

  absl::Status Repeated(const Message& m, const FieldDescriptor* f, int i) {
    const Reflection* r = m.GetReflection();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        absl::StrAppend(out_, r->GetRepeatedInt32(m, f, i));
        return absl::OkStatus();
      case FieldDescriptor::CPPTYPE_UINT32:
        absl::StrAppend(out_, r->GetRepeatedUInt32(m, f, i));
        return absl::OkStatus();
      case FieldDescriptor::CPPTYPE_INT64:
        absl::StrAppend(out_, "\"", r->GetRepeatedInt64(m, f, i), "\"");
        return absl::OkStatus();
      case FieldDescriptor::CPPTYPE_UINT64:
        absl::StrAppend(out_, "\"", r->GetRepeatedUInt64(m, f, i), "\"");
        return absl::OkStatus();
      case FieldDescriptor::CPPTYPE_DOUBLE:
        AppendDouble(r->GetRepeatedDouble(m, f, i), out_);
        return absl::OkStatus();
      case FieldDescriptor::CPPTYPE_FLOAT:
        AppendFloat(r->GetRepeatedFloat(m, f, i), out_);
        return absl::OkStatus();
      case FieldDescriptor::CPPTYPE_BOOL:
        out_->append(r->GetRepeatedBool(m, f, i) ? "true" : "false");
        return absl::OkStatus();
      case FieldDescriptor::CPPTYPE_ENUM:
        Enum(f->enum_type(), r->GetRepeatedEnumValue(m, f, i));
        return absl::OkStatus();
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string scratch;
        const std::string& s = r->GetRepeatedStringReference(m, f, i, &scratch);
        return StringOrBytes(f, s);
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        break;
    }
    return Unsupported("field type");
  }

  absl::Status StringOrBytes(const FieldDescriptor* f, const std::string& s) {
    if (f->type() == FieldDescriptor::TYPE_BYTES) {
      out_->push_back('"');
      out_->append(absl::Base64Escape(s));
      out_->push_back('"');
      return absl::OkStatus();
    }
    return AppendString(s, out_);
  }

  absl::Status WellKnown(const Message& m, Descriptor::WellKnownType wkt, int depth) {
    const Descriptor* d = m.GetDescriptor();
    const Reflection* r = m.GetReflection();
    switch (wkt) {
      case Descriptor::WELLKNOWNTYPE_DOUBLEVALUE:
      case Descriptor::WELLKNOWNTYPE_FLOATVALUE:
      case Descriptor::WELLKNOWNTYPE_INT64VALUE:
      case Descriptor::WELLKNOWNTYPE_UINT64VALUE:
      case Descriptor::WELLKNOWNTYPE_INT32VALUE:
      case Descriptor::WELLKNOWNTYPE_UINT32VALUE:
      case Descriptor::WELLKNOWNTYPE_STRINGVALUE:
      case Descriptor::WELLKNOWNTYPE_BYTESVALUE:
      case Descriptor::WELLKNOWNTYPE_BOOLVALUE: {
        const FieldDescriptor* value = d->FindFieldByNumber(1);
        if (value == nullptr || value->is_repeated()) return Unsupported("wrapper shape");
        return Singular(m, value);
      }
      case Descriptor::WELLKNOWNTYPE_TIMESTAMP:
      case Descriptor::WELLKNOWNTYPE_DURATION: {
        const FieldDescriptor* seconds_field = d->FindFieldByNumber(1);
        const FieldDescriptor* nanos_field = d->FindFieldByNumber(2);
        if (seconds_field == nullptr || nanos_field == nullptr ||
            seconds_field->cpp_type() != FieldDescriptor::CPPTYPE_INT64 ||
            nanos_field->cpp_type() != FieldDescriptor::CPPTYPE_INT32 ||
            seconds_field->is_repeated() || nanos_field->is_repeated()) {
          return Unsupported("Timestamp/Duration shape");
        }
        const int64_t seconds = r->GetInt64(m, seconds_field);
        const int32_t nanos = r->GetInt32(m, nanos_field);
        return wkt == Descriptor::WELLKNOWNTYPE_TIMESTAMP ? Timestamp(seconds, nanos)
                                                          : Duration(seconds, nanos);
      }
      case Descriptor::WELLKNOWNTYPE_FIELDMASK: {
        const FieldDescriptor* paths = d->FindFieldByNumber(1);
        if (paths == nullptr || paths->name() != "paths" || !paths->is_repeated() ||
            paths->cpp_type() != FieldDescriptor::CPPTYPE_STRING) {
          return Unsupported("FieldMask shape");
        }
        // json_util's own conversion, not FieldMaskUtil's: that one refuses
        // paths (upper case, quoted segments) that json_util prints.
        std::string combined;
        const int size = r->FieldSize(m, paths);
        for (int i = 0; i < size; ++i) {
          if (!combined.empty()) combined.push_back(',');
          combined += ConvertFieldMaskPath(r->GetRepeatedString(m, paths, i));
        }
        return AppendString(combined, out_);
      }
      case Descriptor::WELLKNOWNTYPE_STRUCT: {
        const FieldDescriptor* fields = d->FindFieldByNumber(1);
        if (fields == nullptr || !fields->is_map()) return Unsupported("Struct shape");
        return MapObject(m, fields, depth);
      }
      case Descriptor::WELLKNOWNTYPE_LISTVALUE: {
        const FieldDescriptor* values = d->FindFieldByNumber(1);
        if (values == nullptr || !values->is_repeated() || values->is_map()) {
          return Unsupported("ListValue shape");
        }
        return List(m, values, depth);
      }
      case Descriptor::WELLKNOWNTYPE_VALUE: {
        if (d->oneof_decl_count() != 1) return Unsupported("Value shape");
        const FieldDescriptor* kind = r->GetOneofFieldDescriptor(m, d->oneof_decl(0));
        if (kind == nullptr) return Unsupported("empty Value");  // callers skip these
        if (kind->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
          const Message& sub = r->GetMessage(m, kind);
          if (RendersNothing(sub)) return Unsupported("Value shape");
          return MessageValue(sub, depth);
        }
        return Singular(m, kind);
      }
      case Descriptor::WELLKNOWNTYPE_ANY:
        return Any(m, depth);
      default:
        return Unsupported("well-known type");
    }
  }

  absl::Status Timestamp(int64_t seconds, int32_t nanos) {
    if (seconds < kTimestampMinSeconds || seconds > kTimestampMaxSeconds) {
      return Unsupported("Timestamp out of range");
    }
    if (nanos < 0 || nanos >= kNanosPerSecond) return Unsupported("Timestamp nanos out of range");
    // Protobuf's own formatting, which json_util uses too.
    google::protobuf::Timestamp timestamp;
    timestamp.set_seconds(seconds);
    timestamp.set_nanos(nanos);
    out_->push_back('"');
    out_->append(google::protobuf::util::TimeUtil::ToString(timestamp));
    out_->push_back('"');
    return absl::OkStatus();
  }

  absl::Status Duration(int64_t seconds, int32_t nanos) {
    if (seconds < -kDurationMaxSeconds || seconds > kDurationMaxSeconds) {
      return Unsupported("Duration out of range");
    }
    if (nanos <= -kNanosPerSecond || nanos >= kNanosPerSecond) {
      return Unsupported("Duration nanos out of range");
    }
    // json_util's results for mixed signs are not worth copying.
    if ((seconds > 0 && nanos < 0) || (seconds < 0 && nanos > 0)) {
      return Unsupported("Duration with mixed signs");
    }
    google::protobuf::Duration duration;
    duration.set_seconds(seconds);
    duration.set_nanos(nanos);
    out_->push_back('"');
    out_->append(google::protobuf::util::TimeUtil::ToString(duration));
    out_->push_back('"');
    return absl::OkStatus();
  }

  absl::Status Any(const Message& m, int depth) {
    const Descriptor* d = m.GetDescriptor();
    const Reflection* r = m.GetReflection();
    const FieldDescriptor* url_field = d->FindFieldByNumber(1);
    const FieldDescriptor* value_field = d->FindFieldByNumber(2);
    if (url_field == nullptr || value_field == nullptr ||
        url_field->cpp_type() != FieldDescriptor::CPPTYPE_STRING ||
        value_field->cpp_type() != FieldDescriptor::CPPTYPE_STRING || url_field->is_repeated() ||
        value_field->is_repeated()) {
      return Unsupported("Any shape");
    }
    std::string url_scratch, value_scratch;
    const std::string& url = r->GetStringReference(m, url_field, &url_scratch);
    const std::string& value = r->GetStringReference(m, value_field, &value_scratch);
    if (url.empty()) {
      if (!value.empty()) return Unsupported("Any without a type URL");
      out_->append("{}");
      return absl::OkStatus();
    }
    if (!absl::StartsWith(url, kTypeUrlPrefix)) return Unsupported("Any type URL prefix");
    const Descriptor* type =
        d->file()->pool()->FindMessageTypeByName(std::string(url.substr(kTypeUrlPrefix.size())));
    if (type == nullptr) return Unsupported("Any of a type not in the pool");
    const Message* prototype = r->GetMessageFactory()->GetPrototype(type);
    if (prototype == nullptr) return Unsupported("Any of a type without a prototype");
    std::unique_ptr<Message> payload(prototype->New());
    if (!payload->ParseFromString(value)) return Unsupported("Any payload does not parse");
    // json_util renders the payload's bytes in their order; printing the
    // parsed message matches only when those bytes are its serialization.
    if (payload->SerializeAsString() != value) return Unsupported("Any payload not canonical");
    out_->append("{\"@type\":");
    if (auto s = AppendString(url, out_); !s.ok()) return s;
    if (value.empty()) {  // json_util: no "value", even for well-known types
      out_->push_back('}');
      return absl::OkStatus();
    }
    if (type->well_known_type() != Descriptor::WELLKNOWNTYPE_UNSPECIFIED) {
      if (!RendersNothing(*payload)) {
        out_->append(",\"value\":");
        if (auto s = MessageValue(*payload, depth); !s.ok()) return s;
      }
    } else {
      if (++depth > kMaxDepth) return Unsupported("message nested too deeply");
      bool first = false;
      if (auto s = Fields(*payload, depth, &first); !s.ok()) return s;
    }
    out_->push_back('}');
    return absl::OkStatus();
  }

  std::string* const out_;
};

}  // namespace

absl::Status AppendProto3Json(const Message& message, std::string* out) {
  const size_t size = out->size();
  Printer printer(out);
  absl::Status status;
  if (message.GetDescriptor()->well_known_type() == Descriptor::WELLKNOWNTYPE_VALUE &&
      message.GetDescriptor()->oneof_decl_count() == 1 &&
      message.GetReflection()->GetOneofFieldDescriptor(
          message, message.GetDescriptor()->oneof_decl(0)) == nullptr) {
    return absl::OkStatus();  // json_util prints nothing for an empty Value
  }
  status = printer.MessageValue(message, 0);
  if (!status.ok()) out->resize(size);
  return status;
}

}  // namespace gravity::bridge::internal
