// AppendProto3Json against protobuf's json_util (MessageToJsonString with
// default options): every output must be byte-identical, on generated
// messages and on DynamicMessages of a separate DescriptorPool (the bridge's
// case), for hand-picked values and a few thousand random messages.
#include "bridge/internal/json_printer.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/field_mask.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/wrappers.pb.h"
#include "gtest/gtest.h"
#include "shapes.pb.h"
#include "tests/proto/shapes_filler.h"

namespace gravity::bridge::internal {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using gravity::test::shapes::Nested;
using gravity::test::shapes::Shapes;
using gravity::testing::Utf8;

// A pool of its own with shapes.proto and its imports, as the bridge loads
// descriptor sets, and DynamicMessages of it.
class DynamicPool {
 public:
  DynamicPool() : factory_(&pool_) { Add(Shapes::descriptor()->file()); }

  // `m` re-parsed as a DynamicMessage of this pool (as the bridge gets it).
  std::unique_ptr<Message> Parse(const Message& m) {
    return ParseBytes(m.GetDescriptor()->full_name(), m.SerializeAsString());
  }

  std::unique_ptr<Message> ParseBytes(const std::string& type, const std::string& bytes) {
    const Descriptor* d = pool_.FindMessageTypeByName(type);
    EXPECT_NE(d, nullptr) << type;
    std::unique_ptr<Message> out(factory_.GetPrototype(d)->New());
    EXPECT_TRUE(out->ParseFromString(bytes));
    return out;
  }

 private:
  void Add(const google::protobuf::FileDescriptor* file) {
    if (pool_.FindFileByName(file->name()) != nullptr) return;
    for (int i = 0; i < file->dependency_count(); ++i) Add(file->dependency(i));
    google::protobuf::FileDescriptorProto proto;
    file->CopyTo(&proto);
    ASSERT_NE(pool_.BuildFile(proto), nullptr) << file->name();
  }

  google::protobuf::DescriptorPool pool_;
  google::protobuf::DynamicMessageFactory factory_;
};

DynamicPool& Pool() {
  static auto* pool = new DynamicPool();
  return *pool;
}

// Counts of the fallbacks AppendProto3Json asked for, by reason.
std::map<std::string, int>& Fallbacks() {
  static auto* counts = new std::map<std::string, int>();
  return *counts;
}

// Compares one message. Returns whether AppendProto3Json printed it; when it
// did not, json_util is what the bridge uses, so that is no mismatch.
bool Compare(const Message& m, const std::string& what) {
  std::string expected;
  const bool json_util_ok = google::protobuf::util::MessageToJsonString(m, &expected).ok();
  std::string actual = "prefix";
  absl::Status status = AppendProto3Json(m, &actual);
  if (!status.ok()) {
    EXPECT_EQ(actual, "prefix") << what << ": appended despite " << status;
    ++Fallbacks()[std::string(status.message())];
    return false;
  }
  EXPECT_TRUE(json_util_ok) << what << ": json_util fails, we printed " << actual;
  EXPECT_EQ(actual, "prefix" + expected) << what << "\n" << m.DebugString();
  return true;
}

// Whether `m` has a non-empty map field or an Any anywhere (AppendProto3Json
// leaves maps of generated messages to json_util).
bool HasMap(const Message& m) {
  // An Any's payload is parsed by the printer: count it as a map.
  if (m.GetDescriptor()->well_known_type() == Descriptor::WELLKNOWNTYPE_ANY) return true;
  const Reflection* r = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  for (const FieldDescriptor* f : fields) {
    if (f->is_map()) return true;
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (f->is_repeated()) {
      for (int i = 0; i < r->FieldSize(m, f); ++i) {
        if (HasMap(r->GetRepeatedMessage(m, f, i))) return true;
      }
    } else if (HasMap(r->GetMessage(m, f))) {
      return true;
    }
  }
  return false;
}

// Compares `m` as it is and as a DynamicMessage of the separate pool.
// `printable` is whether AppendProto3Json should print both (generated
// messages with maps aside).
void Check(const Message& m, const std::string& what, bool printable = true) {
  const bool generated = Compare(m, what + " (generated)");
  const bool dynamic = Compare(*Pool().Parse(m), what + " (dynamic)");
  if (printable) {
    EXPECT_TRUE(generated || HasMap(m)) << what;
    EXPECT_TRUE(dynamic) << what;
  }
}

TEST(JsonPrinterTest, EmptyAndSimple) {
  Check(Shapes(), "empty");
  Shapes m;
  m.set_i32(-5);
  m.set_str("hello");
  m.mutable_nested();
  Check(m, "simple");
}

TEST(JsonPrinterTest, ScalarExtremes) {
  Shapes m;
  m.set_i32(std::numeric_limits<int32_t>::min());
  m.set_i64(std::numeric_limits<int64_t>::min());
  m.set_u32(std::numeric_limits<uint32_t>::max());
  m.set_u64(std::numeric_limits<uint64_t>::max());
  m.set_s32(std::numeric_limits<int32_t>::min());
  m.set_s64(std::numeric_limits<int64_t>::min());
  m.set_f32(std::numeric_limits<uint32_t>::max());
  m.set_f64(std::numeric_limits<uint64_t>::max());
  m.set_sf32(std::numeric_limits<int32_t>::min());
  m.set_sf64(std::numeric_limits<int64_t>::max());
  m.set_fl(std::numeric_limits<float>::denorm_min());
  m.set_db(std::numeric_limits<double>::denorm_min());
  m.set_bo(true);
  m.set_by(std::string("\0\xff\xfe binary", 10));
  m.set_color(gravity::test::shapes::BLUE);
  Check(m, "extremes");
  m.set_color(static_cast<gravity::test::shapes::Color>(12345));
  m.set_fl(-0.0f);
  m.set_db(-0.0);
  Check(m, "negative zeros, unknown enum");
  m.set_color(gravity::test::shapes::CRIMSON);  // an alias: json_util prints the first name
  Check(m, "alias");
}

TEST(JsonPrinterTest, Floats) {
  const double doubles[] = {0.1,
                            1.0 / 3,
                            1e21,
                            1e20,
                            123456789012345678.0,
                            1e-7,
                            1e-5,
                            0.0001,
                            -1.5,
                            5e-324,
                            2.2250738585072009e-308,
                            std::numeric_limits<double>::max(),
                            std::numeric_limits<double>::lowest(),
                            std::numeric_limits<double>::min(),
                            std::numeric_limits<double>::quiet_NaN(),
                            -std::numeric_limits<double>::quiet_NaN(),
                            std::numeric_limits<double>::infinity(),
                            -std::numeric_limits<double>::infinity(),
                            -0.0,
                            9007199254740993.0,
                            0.30000000000000004};
  Shapes m;
  for (double d : doubles) {
    m.add_rep_db(d);
    m.add_rep_fl(static_cast<float>(d));
    m.mutable_w_db()->set_value(d);
    m.mutable_w_fl()->set_value(static_cast<float>(d));
    m.set_opt_db(d);
    m.set_one_fl(static_cast<float>(d));
    (*m.mutable_m_s64())[1] = d;
    (*m.mutable_m_f32())[1] = static_cast<float>(d);
    m.mutable_val()->set_number_value(d);
    Check(m, absl::StrCat("double ", d));
  }
  std::mt19937_64 rng(7);
  for (int round = 0; round < 20; ++round) {
    Shapes r;
    for (int i = 0; i < 500; ++i) {
      uint64_t bits = rng();
      double d;
      std::memcpy(&d, &bits, sizeof d);
      uint32_t bits32 = static_cast<uint32_t>(bits >> 7);
      float f;
      std::memcpy(&f, &bits32, sizeof f);
      r.add_rep_db(d);
      r.add_rep_fl(f);
      // Values with few digits, too.
      r.add_rep_db(static_cast<double>(static_cast<int64_t>(rng() % 2000001) - 1000000) /
                   std::pow(10.0, static_cast<double>(rng() % 12)));
      r.add_rep_fl(static_cast<float>(static_cast<int64_t>(rng() % 20001) - 10000) /
                   std::pow(10.0f, static_cast<float>(rng() % 8)));
    }
    Check(r, "random floats");
  }
}

TEST(JsonPrinterTest, EveryCodePointEscapedAsJsonUtil) {
  Shapes m;
  std::string s;
  for (uint32_t cp = 0; cp <= 0x10ffff; ++cp) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    s += Utf8(cp);
    s += 'a';
    if (s.size() > 4000 || cp == 0x10ffff) {
      m.set_str(s);
      Check(m, absl::StrCat("code points up to ", cp));
      s.clear();
    }
  }
  // As map keys and in other string places.
  Shapes k;
  for (uint32_t cp :
       {0u,    0x1fu, 0x22u, 0x26u, 0x27u,   0x2fu,   0x3cu,   0x3eu,    0x5cu,    0x7fu,
        0x80u, 0x9fu, 0xa0u, 0xadu, 0x2028u, 0x2029u, 0xfeffu, 0x1d173u, 0xe0001u, 0x1f600u}) {
    (*k.mutable_m_str())[Utf8(cp)] = Utf8(cp);
    k.mutable_w_str()->set_value(Utf8(cp) + "x");
    k.add_rep_str(Utf8(cp));
  }
  Check(k, "escapes in keys");
}

TEST(JsonPrinterTest, InvalidUtf8FallsBack) {
  for (const char* bad :
       {"\x80", "a\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\xff", "ok\xc3"}) {
    Shapes m;
    m.set_str(bad);
    std::string out = "x";
    EXPECT_FALSE(AppendProto3Json(m, &out).ok()) << bad;
    EXPECT_EQ(out, "x");
  }
}

TEST(JsonPrinterTest, OneofsAndOptionals) {
  Shapes m;
  m.set_opt_i32(0);
  m.set_opt_str("");
  m.set_opt_color(gravity::test::shapes::COLOR_UNSPECIFIED);
  m.set_opt_db(0);
  m.set_opt_by("");
  m.mutable_opt_nested();
  m.set_opt_bo(false);
  m.set_opt_u64(0);
  m.set_opt_null(google::protobuf::NULL_VALUE);
  m.set_one_i32(0);
  Check(m, "defaults with presence");
  m.set_one_str("");
  Check(m, "oneof string");
  m.mutable_one_nested();
  Check(m, "oneof message");
  m.mutable_one_value();
  Check(m, "oneof empty Value (left out)");
  m.mutable_one_value()->set_bool_value(false);
  Check(m, "oneof Value");
  m.set_one_null(google::protobuf::NULL_VALUE);
  Check(m, "oneof null");
  m.set_one_color(gravity::test::shapes::COLOR_UNSPECIFIED);
  Check(m, "oneof enum");
  m.set_one_by("");
  Check(m, "oneof bytes");
  m.set_one_fl(0);
  Check(m, "oneof float");
}

TEST(JsonPrinterTest, MapsOfEveryKeyType) {
  Shapes m;
  (*m.mutable_m_i32())[std::numeric_limits<int32_t>::min()] = "min";
  (*m.mutable_m_i32())[0] = "";
  (*m.mutable_m_i64())[std::numeric_limits<int64_t>::min()] = 0;
  (*m.mutable_m_i64())[std::numeric_limits<int64_t>::max()] = -1;
  (*m.mutable_m_u32())[std::numeric_limits<uint32_t>::max()] = 0;
  (*m.mutable_m_u64())[std::numeric_limits<uint64_t>::max()] = 0;
  (*m.mutable_m_s32())[-1] = false;
  (*m.mutable_m_s64())[-2] = 0;
  (*m.mutable_m_f32())[0] = 0;
  (*m.mutable_m_f64())[7] = "";
  (*m.mutable_m_f64())[8] = "\x01\x02";
  (*m.mutable_m_sf32())[-3] = gravity::test::shapes::COLOR_UNSPECIFIED;
  (*m.mutable_m_sf32())[-4] = static_cast<gravity::test::shapes::Color>(99);
  (*m.mutable_m_sf64())[-5];
  (*m.mutable_m_sf64())[6].set_a(6);
  (*m.mutable_m_bo())[true] = "t";
  (*m.mutable_m_bo())[false] = "";
  (*m.mutable_m_str())[""] = "";
  (*m.mutable_m_nested())["n"];
  (*m.mutable_m_value())["empty"];  // an empty Value: left out
  (*m.mutable_m_value())["null"].set_null_value(google::protobuf::NULL_VALUE);
  (*m.mutable_m_ts())["epoch"];
  (*m.mutable_m_any())["empty"];
  (*m.mutable_m_null())["n"] = google::protobuf::NULL_VALUE;
  (*m.mutable_m_wrapper())["zero"];
  (*m.mutable_m_wrapper())["one"].set_value(1);
  (*m.mutable_m_struct())["s"];
  (*m.mutable_m_u32v())["u"] = 0;
  for (int i = 0; i < 50; ++i) (*m.mutable_m_str())[absl::StrCat("k", i)] = absl::StrCat(i);
  Check(m, "maps");
}

TEST(JsonPrinterTest, MapOfParsedDynamicMessageKeepsWireOrderAndDuplicates) {
  // Shapes.m_str entries "b", "a", "b" as the wire has them.
  std::string bytes;
  for (const auto& [k, v] :
       std::vector<std::pair<std::string, std::string>>{{"b", "1"}, {"a", "2"}, {"b", "3"}}) {
    std::string entry = std::string("\x0a\x01", 2) + k + std::string("\x12\x01", 2) + v;
    bytes += std::string("\xc2\x04", 2);  // field 72, length-delimited
    bytes.push_back(static_cast<char>(entry.size()));
    bytes += entry;
  }
  std::unique_ptr<Message> m = Pool().ParseBytes("gravity.test.shapes.Shapes", bytes);
  EXPECT_TRUE(Compare(*m, "duplicate map keys"));
  std::string out;
  ASSERT_TRUE(AppendProto3Json(*m, &out).ok());
  EXPECT_EQ(out, R"({"mStr":{"b":"1","a":"2","b":"3"}})");
}

TEST(JsonPrinterTest, Timestamps) {
  const int64_t seconds[] = {
      0,          1,           -1,         -62135596800, 253402300799, 951782400, 951868800,
      4107542400, -2208988800, 1700000000, -62135596799, 253402300798, 68169600,  -12219292800};
  const int32_t nanos[] = {0, 1, 10, 999999999, 1000000, 123000000, 123456000, 1000, 500000000};
  for (int64_t s : seconds) {
    for (int32_t n : nanos) {
      Shapes m;
      m.mutable_ts()->set_seconds(s);
      m.mutable_ts()->set_nanos(n);
      *m.add_rep_ts() = m.ts();
      Check(m, absl::StrCat("timestamp ", s, ".", n));
    }
  }
  std::mt19937_64 rng(3);
  Shapes m;
  for (int i = 0; i < 5000; ++i) {
    auto* ts = m.add_rep_ts();
    ts->set_seconds(-62135596800 + static_cast<int64_t>(rng() % (253402300799 + 62135596801)));
    ts->set_nanos(static_cast<int32_t>(rng() % 1000000000) / (i % 3 == 0 ? 1000000 : 1) *
                  (i % 3 == 0 ? 1000000 : 1));
  }
  Check(m, "random timestamps");
  for (auto [s, n] : std::vector<std::pair<int64_t, int32_t>>{
           {-62135596801, 0}, {253402300800, 0}, {0, -1}, {0, 1000000000}}) {
    Shapes bad;
    bad.mutable_ts()->set_seconds(s);
    bad.mutable_ts()->set_nanos(n);
    Check(bad, absl::StrCat("bad timestamp ", s, ".", n), /*printable=*/false);
  }
}

TEST(JsonPrinterTest, Durations) {
  const std::pair<int64_t, int32_t> values[] = {{0, 0},
                                                {1, 0},
                                                {1, 500000000},
                                                {-1, -500000000},
                                                {0, -1},
                                                {0, 1},
                                                {0, -1000},
                                                {-5, 0},
                                                {315576000000, 999999999},
                                                {-315576000000, -999999999},
                                                {3, 1000},
                                                {3, 100000},
                                                {0, 10}};
  for (auto [s, n] : values) {
    Shapes m;
    m.mutable_dur()->set_seconds(s);
    m.mutable_dur()->set_nanos(n);
    *m.add_rep_dur() = m.dur();
    Check(m, absl::StrCat("duration ", s, " ", n));
  }
  std::mt19937_64 rng(4);
  Shapes m;
  for (int i = 0; i < 3000; ++i) {
    int64_t s = static_cast<int64_t>(rng() % 631152000001) - 315576000000;
    int32_t n = static_cast<int32_t>(rng() % 1000000000);
    if (i % 4 == 0) n = n / 1000 * 1000;
    if (s < 0 || (s == 0 && rng() % 2)) n = -n;
    auto* d = m.add_rep_dur();
    d->set_seconds(s);
    d->set_nanos(n);
  }
  Check(m, "random durations");
  for (auto [s, n] : std::vector<std::pair<int64_t, int32_t>>{
           {315576000001, 0}, {0, 1000000000}, {1, -1}, {-1, 1}}) {
    Shapes bad;
    bad.mutable_dur()->set_seconds(s);
    bad.mutable_dur()->set_nanos(n);
    Check(bad, absl::StrCat("bad duration ", s, " ", n), /*printable=*/false);
  }
}

TEST(JsonPrinterTest, StructValueListValue) {
  Shapes m;
  auto& fields = *m.mutable_st()->mutable_fields();
  fields["null"].set_null_value(google::protobuf::NULL_VALUE);
  fields["num"].set_number_value(1.5);
  fields["nan"].set_number_value(std::nan(""));
  fields["str"].set_string_value("s<>");
  fields["bool"].set_bool_value(true);
  fields["empty"];
  fields["struct"].mutable_struct_value();
  fields["list"].mutable_list_value();
  auto* list = fields["list2"].mutable_list_value();
  list->add_values()->set_number_value(0);
  list->add_values();  // empty: left out
  list->add_values()->mutable_struct_value();
  list->add_values()->mutable_list_value()->add_values()->set_string_value("");
  m.mutable_val()->mutable_list_value();
  m.mutable_lv();
  m.add_rep_val();
  m.add_rep_val()->set_bool_value(false);
  m.add_rep_st();
  m.add_rep_lv()->add_values();
  Check(m, "struct");
  m.set_nv(google::protobuf::NULL_VALUE);  // the default: left out
  m.add_rep_null(google::protobuf::NULL_VALUE);
  m.add_rep_null(static_cast<google::protobuf::NullValue>(3));
  Check(m, "nulls");
  // Top-level well-known types.
  Check(m.st(), "top-level Struct");
  Check(m.val(), "top-level Value");
  Check(google::protobuf::Value(), "top-level empty Value");
  Check(m.lv(), "top-level ListValue");
  Check(google::protobuf::ListValue(), "top-level empty ListValue");
}

TEST(JsonPrinterTest, FieldMasks) {
  const char* paths[] = {"",           "a",
                         "foo_bar",    "foo_bar.baz_qux",
                         "FooBar",     "fooBar",
                         "foo__bar",   "_foo",
                         "foo_",       "a.b.c",
                         "ABC_def",    "abcDEFghi",
                         "map(key)",   "x.\"q_u.o\\\"te\"_y",
                         "foo_1_bar",  "a__",
                         "HTTPServer", "iOS_version",
                         "x(y_z).w"};
  Shapes m;
  for (const char* p : paths) {
    m.mutable_fm()->add_paths(p);
    auto* one = m.add_rep_fm();
    one->add_paths(p);
    one->add_paths(p);
  }
  Check(m, "field masks");
  std::mt19937_64 rng(5);
  const std::string alphabet = "abzAZ_09._()\"\\";
  for (int i = 0; i < 300; ++i) {
    Shapes r;
    for (int j = 0; j < 5; ++j) {
      std::string p;
      const int len = static_cast<int>(rng() % 12);
      for (int k = 0; k < len; ++k) p.push_back(alphabet[rng() % alphabet.size()]);
      r.mutable_fm()->add_paths(p);
    }
    Check(r, "random field mask");
  }
}

TEST(JsonPrinterTest, Wrappers) {
  Shapes m;
  m.mutable_w_db();
  m.mutable_w_fl();
  m.mutable_w_i64();
  m.mutable_w_u64();
  m.mutable_w_i32();
  m.mutable_w_u32();
  m.mutable_w_bo();
  m.mutable_w_str();
  m.mutable_w_by();
  m.mutable_empty();
  m.add_rep_w_str();
  m.add_rep_empty();
  Check(m, "default wrappers");
  m.mutable_w_db()->set_value(-2.5);
  m.mutable_w_fl()->set_value(0.1f);
  m.mutable_w_i64()->set_value(std::numeric_limits<int64_t>::min());
  m.mutable_w_u64()->set_value(std::numeric_limits<uint64_t>::max());
  m.mutable_w_i32()->set_value(-1);
  m.mutable_w_u32()->set_value(std::numeric_limits<uint32_t>::max());
  m.mutable_w_bo()->set_value(true);
  m.mutable_w_str()->set_value("\u2028<tag>");
  m.mutable_w_by()->set_value("\xfb\xff");
  Check(m, "wrappers");
  Check(m.w_str(), "top-level StringValue");
  Check(m.w_i64(), "top-level Int64Value");
}

TEST(JsonPrinterTest, Any) {
  Shapes m;
  m.mutable_any();
  Check(m, "empty Any");
  Nested nested;
  nested.set_a(1);
  nested.set_b("b");
  nested.mutable_child()->set_color(gravity::test::shapes::GREEN);
  m.mutable_any()->PackFrom(nested);
  google::protobuf::Timestamp ts;
  ts.set_seconds(1);
  m.add_rep_any()->PackFrom(ts);
  google::protobuf::Duration dur;
  dur.set_nanos(-1000);
  m.add_rep_any()->PackFrom(dur);
  google::protobuf::Value value;
  m.add_rep_any()->PackFrom(value);  // empty Value: no "value"
  value.set_string_value("v");
  m.add_rep_any()->PackFrom(value);
  google::protobuf::Struct st;
  (*st.mutable_fields())["k"].set_bool_value(true);
  m.add_rep_any()->PackFrom(st);
  m.add_rep_any()->PackFrom(google::protobuf::ListValue());
  m.add_rep_any()->PackFrom(google::protobuf::Empty());
  google::protobuf::Int64Value i64;
  i64.set_value(5);
  m.add_rep_any()->PackFrom(i64);
  m.add_rep_any()->PackFrom(google::protobuf::BytesValue());
  google::protobuf::FieldMask fm;
  fm.add_paths("a_b");
  m.add_rep_any()->PackFrom(fm);
  google::protobuf::Any inner;
  inner.PackFrom(nested);
  m.add_rep_any()->PackFrom(inner);
  m.add_rep_any()->PackFrom(google::protobuf::Any());
  Shapes payload;
  payload.set_i64(3);
  payload.mutable_any()->PackFrom(ts);
  m.add_rep_any()->PackFrom(payload);
  m.add_rep_any()->set_type_url("type.googleapis.com/gravity.test.shapes.Nested");
  Check(m, "Any");
  Check(m.any(), "top-level Any");
  Check(m.rep_any(1), "top-level Any of a Timestamp");

  Shapes unknown;
  unknown.mutable_any()->set_type_url("type.googleapis.com/no.such.Type");
  Check(unknown, "Any of an unknown type", /*printable=*/false);
  unknown.mutable_any()->set_type_url("example.com/gravity.test.shapes.Nested");
  Check(unknown, "Any with another prefix", /*printable=*/false);
  unknown.mutable_any()->set_type_url("");
  unknown.mutable_any()->set_value("x");
  Check(unknown, "Any without a type", /*printable=*/false);
  unknown.mutable_any()->set_type_url("type.googleapis.com/gravity.test.shapes.Nested");
  unknown.mutable_any()->set_value("\x10\x01\x08\x02");  // out of field order
  Check(unknown, "Any of non-canonical bytes", /*printable=*/false);
}

TEST(JsonPrinterTest, NamesAndOrder) {
  Shapes m;
  m.set_custom("c");
  m.set_snake_case_name_2x(1);
  m.set_x_y_z(2);
  m.set_declared_before(3);
  m.set_declared_after(4);
  m.mutable_recursive()->mutable_recursive()->set_declared_before(5);
  Check(m, "names");
}

TEST(JsonPrinterTest, UnknownFields) {
  Shapes m;
  m.set_i32(1);
  m.GetReflection()->MutableUnknownFields(&m)->AddVarint(1000, 5);
  Check(m, "unknown field");
  Shapes clash;
  clash.GetReflection()->MutableUnknownFields(&clash)->AddFixed32(1, 5);  // i32, wrong wire type
  std::string out;
  EXPECT_FALSE(AppendProto3Json(clash, &out).ok());
}

TEST(JsonPrinterTest, DeepNestingFallsBack) {
  Nested root;
  Nested* n = &root;
  for (int i = 0; i < 70; ++i) n = n->mutable_child();
  Check(root, "70 deep", /*printable=*/false);
  Nested shallow;
  n = &shallow;
  for (int i = 0; i < 30; ++i) n = n->mutable_child();
  Check(shallow, "30 deep");
}

TEST(JsonPrinterTest, RandomMessages) {
  // Freer than JSON reads back: Values without a kind, NaN in Values, any
  // FieldMask path, duplicate map keys.
  gravity::testing::ShapesFillerOptions options;
  options.json_round_trip = false;
  gravity::testing::ShapesFiller filler(20240601, options);
  int printed = 0;
  int dynamic_printed_count = 0;
  constexpr int kMessages = 3000;
  for (int i = 0; i < kMessages; ++i) {
    // Filled by reflection: maps in their repeated representation, with the
    // odd duplicate key, as after parsing.
    std::unique_ptr<Message> filled = Pool().ParseBytes("gravity.test.shapes.Shapes", "");
    filler.Fill(filled.get(), 0);
    Shapes m;
    ASSERT_TRUE(m.ParseFromString(filled->SerializeAsString()));
    const bool filled_printed = Compare(*filled, absl::StrCat("random #", i, " (filled)"));
    const bool generated_printed = Compare(m, absl::StrCat("random #", i, " (generated)"));
    const bool dynamic_printed =
        Compare(*Pool().Parse(m), absl::StrCat("random #", i, " (dynamic)"));
    printed += filled_printed + generated_printed + dynamic_printed;
    dynamic_printed_count += filled_printed + dynamic_printed;
    if (HasFailure()) break;
  }
  for (const auto& [reason, count] : Fallbacks()) {
    std::printf("fallback (all tests so far): %s: %d\n", reason.c_str(), count);
  }
  std::printf("random messages printed: %d of %d (DynamicMessages: %d of %d)\n", printed,
              3 * kMessages, dynamic_printed_count, 2 * kMessages);
  // Generated messages with maps fall back; DynamicMessages nearly never.
  EXPECT_GT(dynamic_printed_count, 2 * kMessages * 9 / 10);
}

TEST(JsonPrinterTest, PingReplyShape) {
  Nested m;
  m.set_b("hello, world");
  m.set_a(123);
  std::string out;
  ASSERT_TRUE(AppendProto3Json(m, &out).ok());
  EXPECT_EQ(out, R"({"a":123,"b":"hello, world"})");
}

}  // namespace
}  // namespace gravity::bridge::internal
