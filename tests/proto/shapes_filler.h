// Test-only: fills gravity.test.shapes.Shapes (tests/proto/shapes.proto), and
// any message it reaches, with seeded random values by reflection: every field
// kind, maps (in their repeated representation), oneofs, well-known types, Any
// of the registered types. Plus small helpers the shape tests share.
#ifndef GRAVITY_TESTS_PROTO_SHAPES_FILLER_H_
#define GRAVITY_TESTS_PROTO_SHAPES_FILLER_H_

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/message.h"

namespace gravity::testing {

// `cp` encoded as UTF-8 (no check for surrogates or range).
inline std::string Utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    s.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    s.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    s.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
  return s;
}

// The 256 byte values, in order.
inline std::string AllBytes() {
  std::string s;
  for (int b = 0; b < 256; ++b) s.push_back(static_cast<char>(b));
  return s;
}

struct ShapesFillerOptions {
  // Keep to values whose proto3 JSON reads back as the same message: numbers
  // in a Value are finite, a Value always has a kind, FieldMask paths are
  // snake_case (NaN and infinities still appear in float and double fields);
  // every message field set is filled (messages only down to a depth). When
  // false: also Values without a kind, non-finite numbers in Values, FieldMask
  // paths of any string, duplicate keys in int32-keyed maps, floats converted
  // from doubles out of float's range, and empty messages past the depth.
  bool json_round_trip = false;
};

class ShapesFiller {
 public:
  explicit ShapesFiller(uint64_t seed, ShapesFillerOptions options = {})
      : rng_(seed), options_(options) {}

  // Fills `m` (of any message type) with random values; `depth` is how deep
  // `m` is (0 for the top).
  void Fill(google::protobuf::Message* m, int depth) {
    using google::protobuf::Descriptor;
    using google::protobuf::FieldDescriptor;
    const Descriptor* d = m->GetDescriptor();
    const google::protobuf::Reflection* r = m->GetReflection();
    auto field = [d](const char* name) { return d->FindFieldByName(name); };
    switch (d->well_known_type()) {
      case Descriptor::WELLKNOWNTYPE_TIMESTAMP:
        r->SetInt64(m, field("seconds"),
                    -62135596800 + static_cast<int64_t>(rng_() % 315537897600));
        r->SetInt32(m, field("nanos"), Nanos());
        return;
      case Descriptor::WELLKNOWNTYPE_DURATION: {
        const int64_t s = static_cast<int64_t>(rng_() % 2001) - 1000;
        int32_t n = Nanos();
        if (s < 0 || (s == 0 && Chance(2))) n = -n;
        r->SetInt64(m, field("seconds"), s);
        r->SetInt32(m, field("nanos"), n);
        return;
      }
      case Descriptor::WELLKNOWNTYPE_ANY:
        if (options_.json_round_trip || depth < 3) FillAny(m, depth);
        return;
      case Descriptor::WELLKNOWNTYPE_VALUE:
        FillValue(m, depth);
        return;
      case Descriptor::WELLKNOWNTYPE_STRUCT:
        FillStruct(m, depth);
        return;
      case Descriptor::WELLKNOWNTYPE_LISTVALUE:
        FillList(m, depth);
        return;
      case Descriptor::WELLKNOWNTYPE_FIELDMASK: {
        static const char* kPaths[] = {"a", "foo_bar", "foo_bar.baz", "x.y_z", "snake_case_name"};
        const int n = static_cast<int>(rng_() % 4);
        for (int i = 0; i < n; ++i) {
          if (options_.json_round_trip) {
            r->AddString(m, field("paths"), kPaths[rng_() % 5]);
          } else {
            r->AddString(m, field("paths"), i % 2 ? "foo_bar.baz" : String());
          }
        }
        return;
      }
      default:
        break;
    }
    const int one_in = d->field_count() > 10 ? (options_.json_round_trip ? 6 : 7) : 2;
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      if (!Chance(one_in)) continue;
      // Messages (maps too) only down to a depth, so every message field set
      // is filled.
      if (options_.json_round_trip && f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
          depth >= 3) {
        continue;
      }
      const int n = f->is_repeated() ? static_cast<int>(rng_() % 4) : 1;
      for (int k = 0; k < n; ++k) {
        if (f->is_map()) {
          google::protobuf::Message* entry = r->AddMessage(m, f);
          FillField(entry, f->message_type()->map_key(), depth);
          FillField(entry, f->message_type()->map_value(), depth);
        } else {
          FillField(m, f, depth);
        }
      }
    }
  }

 private:
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  static constexpr double kInf = std::numeric_limits<double>::infinity();

  bool Chance(int one_in) { return rng_() % one_in == 0; }

  int32_t Nanos() {
    const int32_t n = static_cast<int32_t>(rng_() % 1000000000);
    switch (rng_() % 4) {
      case 0:
        return 0;
      case 1:
        return n / 1000000 * 1000000;
      case 2:
        return n / 1000 * 1000;
      default:
        return n;
    }
  }

  std::string String() {
    static const uint32_t kSpecial[] = {
        '"',    '\\',   '<',    '>',    '&',     '/',     '\'',    '\n',    0x01,    0x1f,   0x7f,
        0x80,   0x9f,   0xa0,   0xad,   0xe9,    0x600,   0x6dd,   0x200b,  0x2028,  0x2029, 0x202e,
        0x2060, 0xfeff, 0xfffa, 0xffff, 0x1d173, 0x1f600, 0xe0001, 0xe0041, 0x10ffff};
    std::string s;
    const int len = static_cast<int>(rng_() % 10);
    for (int i = 0; i < len; ++i) {
      switch (rng_() % 4) {
        case 0:
          s += Utf8(kSpecial[rng_() % (sizeof kSpecial / sizeof kSpecial[0])]);
          break;
        case 1: {
          uint32_t cp = static_cast<uint32_t>(rng_() % 0x110000);
          if (cp >= 0xd800 && cp <= 0xdfff) cp = 'x';
          s += Utf8(cp);
          break;
        }
        default:
          s.push_back(static_cast<char>(' ' + rng_() % 95));
      }
    }
    return s;
  }

  // A double; only finite ones if `finite` (with json_round_trip).
  double Double(bool finite) {
    // Without json_round_trip: these, never replaced.
    static const double kFree[] = {
        0,    -0.0, 1,    -1, 0.1, 1e21, 1e-7, 5e-324, std::numeric_limits<double>::max(),
        kNaN, kInf, -kInf};
    // With json_round_trip: the finite ones first.
    static const double kRoundTrip[] = {0,    -0.0, 1,       -1,
                                        0.1,  1e21, 1e-7,    5e-324,
                                        1e16, -1.5, 1.0 / 3, std::numeric_limits<double>::max(),
                                        kNaN, kInf, -kInf};
    constexpr int kFinite = sizeof kRoundTrip / sizeof kRoundTrip[0] - 3;
    double d;
    if (Chance(2)) {
      if (!options_.json_round_trip) return kFree[rng_() % (sizeof kFree / sizeof kFree[0])];
      d = kRoundTrip[rng_() % (finite ? kFinite : kFinite + 3)];
    } else {
      uint64_t bits = rng_();
      std::memcpy(&d, &bits, sizeof d);
    }
    if (options_.json_round_trip && finite && !std::isfinite(d)) d = 2.5;
    return d;
  }

  // With json_round_trip, without converting a double out of float's range.
  float Float() {
    if (!options_.json_round_trip) return static_cast<float>(Double(/*finite=*/false));
    static const float kValues[] = {0,
                                    -0.0f,
                                    1,
                                    0.1f,
                                    1e-7f,
                                    1e-45f,
                                    3.4e38f,
                                    static_cast<float>(kNaN),
                                    static_cast<float>(kInf),
                                    static_cast<float>(-kInf)};
    if (Chance(2)) return kValues[rng_() % (sizeof kValues / sizeof kValues[0])];
    const uint32_t bits = static_cast<uint32_t>(rng_());
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
  }

  int64_t Int64() {
    static const int64_t kValues[] = {0,
                                      1,
                                      -1,
                                      std::numeric_limits<int64_t>::min(),
                                      std::numeric_limits<int64_t>::max(),
                                      std::numeric_limits<int32_t>::min(),
                                      int64_t{1} << 53};
    if (Chance(2)) return kValues[rng_() % (sizeof kValues / sizeof kValues[0])];
    return static_cast<int64_t>(rng_()) >> (rng_() % 64);
  }

  void FillValue(google::protobuf::Message* v, int depth) {
    const google::protobuf::Descriptor* d = v->GetDescriptor();
    const google::protobuf::Reflection* r = v->GetReflection();
    uint64_t kind;
    if (options_.json_round_trip) {
      kind = rng_() % (depth < 4 ? 6 : 4);
    } else {
      kind = rng_() % (depth < 3 ? 7 : 5);
      if (kind == 0) return;  // no kind
      --kind;
    }
    switch (kind) {
      case 0:
        r->SetEnumValue(v, d->FindFieldByName("null_value"), 0);
        return;
      case 1:
        r->SetDouble(v, d->FindFieldByName("number_value"), Double(/*finite=*/true));
        return;
      case 2:
        r->SetString(v, d->FindFieldByName("string_value"), String());
        return;
      case 3:
        r->SetBool(v, d->FindFieldByName("bool_value"), Chance(2));
        return;
      case 4:
        FillStruct(r->MutableMessage(v, d->FindFieldByName("struct_value")), depth + 1);
        return;
      default:
        FillList(r->MutableMessage(v, d->FindFieldByName("list_value")), depth + 1);
        return;
    }
  }

  void FillStruct(google::protobuf::Message* st, int depth) {
    const google::protobuf::FieldDescriptor* fields =
        st->GetDescriptor()->FindFieldByName("fields");
    const int n = static_cast<int>(rng_() % 4);
    for (int i = 0; i < n; ++i) {
      google::protobuf::Message* entry = st->GetReflection()->AddMessage(st, fields);
      const google::protobuf::Descriptor* e = entry->GetDescriptor();
      entry->GetReflection()->SetString(entry, e->map_key(), Chance(2) ? "k" : String());
      FillValue(entry->GetReflection()->MutableMessage(entry, e->map_value()), depth + 1);
    }
  }

  void FillList(google::protobuf::Message* list, int depth) {
    const google::protobuf::FieldDescriptor* values =
        list->GetDescriptor()->FindFieldByName("values");
    const int n = static_cast<int>(rng_() % 4);
    for (int i = 0; i < n; ++i) {
      FillValue(list->GetReflection()->AddMessage(list, values), depth + 1);
    }
  }

  void FillAny(google::protobuf::Message* any, int depth) {
    using google::protobuf::Descriptor;
    static const char* kTypes[] = {
        "gravity.test.shapes.Nested", "gravity.test.shapes.Shapes", "google.protobuf.Timestamp",
        "google.protobuf.Duration",   "google.protobuf.Value",      "google.protobuf.ListValue",
        "google.protobuf.Empty",      "google.protobuf.Int32Value", "google.protobuf.StringValue",
        "google.protobuf.FieldMask",  "google.protobuf.Any",        "google.protobuf.Struct"};
    const char* type = kTypes[rng_() % (sizeof kTypes / sizeof kTypes[0])];
    const Descriptor* d = any->GetDescriptor()->file()->pool()->FindMessageTypeByName(type);
    std::unique_ptr<google::protobuf::Message> payload(
        any->GetReflection()->GetMessageFactory()->GetPrototype(d)->New());
    // With json_round_trip, an Any inside an Any's payload stays empty past
    // the depth (without, Fill leaves it empty).
    if (!options_.json_round_trip || depth < 3 ||
        d->well_known_type() != Descriptor::WELLKNOWNTYPE_ANY) {
      Fill(payload.get(), depth + 1);
    }
    const Descriptor* a = any->GetDescriptor();
    any->GetReflection()->SetString(any, a->FindFieldByName("type_url"),
                                    absl::StrCat("type.googleapis.com/", type));
    any->GetReflection()->SetString(any, a->FindFieldByName("value"), payload->SerializeAsString());
  }

  void FillField(google::protobuf::Message* m, const google::protobuf::FieldDescriptor* f,
                 int depth) {
    using google::protobuf::FieldDescriptor;
    const google::protobuf::Reflection* r = m->GetReflection();
    const bool rep = f->is_repeated();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32: {
        int32_t v = static_cast<int32_t>(Int64());
        // Without json_round_trip: the odd duplicate map key.
        if (!options_.json_round_trip && f->containing_type()->options().map_entry() && Chance(2)) {
          v %= 3;
        }
        rep ? r->AddInt32(m, f, v) : r->SetInt32(m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_INT64: {
        const int64_t v = Int64();
        rep ? r->AddInt64(m, f, v) : r->SetInt64(m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_UINT32: {
        const uint32_t v = static_cast<uint32_t>(Int64());
        rep ? r->AddUInt32(m, f, v) : r->SetUInt32(m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_UINT64: {
        const uint64_t v = static_cast<uint64_t>(Int64());
        rep ? r->AddUInt64(m, f, v) : r->SetUInt64(m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_DOUBLE: {
        const double v = Double(/*finite=*/false);
        rep ? r->AddDouble(m, f, v) : r->SetDouble(m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_FLOAT: {
        const float v = Float();
        rep ? r->AddFloat(m, f, v) : r->SetFloat(m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_BOOL: {
        const bool v = Chance(2);
        rep ? r->AddBool(m, f, v) : r->SetBool(m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        const int v = Chance(4)
                          ? static_cast<int>(rng_() % 200) - 100
                          : f->enum_type()
                                ->value(static_cast<int>(rng_() % f->enum_type()->value_count()))
                                ->number();
        rep ? r->AddEnumValue(m, f, v) : r->SetEnumValue(m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string v;
        if (f->type() == FieldDescriptor::TYPE_BYTES) {
          const int len = static_cast<int>(rng_() % 12);
          for (int i = 0; i < len; ++i) v.push_back(static_cast<char>(rng_()));
        } else {
          v = String();
        }
        rep ? r->AddString(m, f, v) : r->SetString(m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        if (options_.json_round_trip) {
          Fill(rep ? r->AddMessage(m, f) : r->MutableMessage(m, f), depth + 1);
        } else if (depth < 4 || rep) {
          // Past the depth: a repeated message is added empty, a singular
          // one left unset.
          google::protobuf::Message* sub = rep ? r->AddMessage(m, f) : r->MutableMessage(m, f);
          if (depth < 4) Fill(sub, depth + 1);
        }
        break;
    }
  }

  std::mt19937_64 rng_;
  const ShapesFillerOptions options_;
};

}  // namespace gravity::testing

#endif  // GRAVITY_TESTS_PROTO_SHAPES_FILLER_H_
