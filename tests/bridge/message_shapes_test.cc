// Every message shape (tests/proto/shapes.proto), streamed by a gravity server
// (tests/proto/shapes_service.proto) and read four ways: natively over gRPC,
// through the bridge as SSE and as NDJSON, and by gravity-cli (path in
// argv[1]) as a process. The expected JSON of each message is protobuf's
// json_util (MessageToJsonString, default options) on the very message the
// server sends:
// - native: each message equals the original (MessageDifferencer, NaN equal
//   to NaN, and byte-identical deterministic serialization);
// - SSE: `data:` of event i is expected(i), the stream ends with `end` code 0;
// - NDJSON: line i is {"result":expected(i)}, no error line;
// - gravity-cli: line i is expected(i), then {"code":0,"message":""}, exit 0.
// On a mismatch the message's label, the first differing byte and the fields
// that differ (the output parsed back and compared) are reported.
//
// The messages: hand-picked extremes (64-bit limits, NaN/Infinity, -0.0,
// non-ASCII and U+2028 strings, bytes with every value, every well-known type,
// Any of registered types, Struct with nested lists, maps of every key type,
// every oneof case, unknown enum numbers) and messages from a seeded random
// filler, which keeps to values whose JSON reads back the same (finite numbers
// in Values, no Value without a kind, FieldMask paths that are snake_case).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "bridge/bridge.h"
#include "client/client.h"
#include "client/reflection.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/empty.pb.h"
#include "google/protobuf/field_mask.pb.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/field_comparator.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/wrappers.pb.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "server/service.h"
#include "server/stream.h"
#include "shapes.pb.h"
#include "shapes_service.grpc.pb.h"
#include "shapes_service.pb.h"
#include "tests/bridge/http_test_client.h"
#include "tests/client/subprocess.h"
#include "tests/proto/shapes_filler.h"
#include "tests/server/test_server.h"

namespace gravity::bridge {
namespace {

const char* gravity_cli_path = nullptr;

using google::protobuf::Message;
using gravity::test::shapes::Color;
using gravity::test::shapes::Nested;
using gravity::test::shapes::Shapes;
using gravity::test::shapes::ShapeStream;
using gravity::test::shapes::StreamShapesRequest;
using gravity::testing::AllBytes;
using gravity::testing::Utf8;

constexpr char kService[] = "gravity.test.shapes.ShapeStream";
constexpr char kPath[] = "/gravity.test.shapes.ShapeStream/Stream";
constexpr int kRandomMessages = 50;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

struct Labeled {
  std::string label;
  Shapes message;
};

// Non-ASCII, escapes json_util spells out (\u2028, \u003c, ...), controls.
std::string Tricky() {
  std::string s = "h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\x89 \"q\" \\ / <a>&'";
  for (uint32_t cp : {0u, 0x01u, 0x1fu, 0x7fu, 0x80u, 0x9fu, 0xa0u, 0xadu, 0x2028u, 0x2029u,
                      0x202eu, 0xfeffu, 0xffffu, 0x1d173u, 0xe0001u, 0x10ffffu}) {
    s += Utf8(cp);
  }
  return s + "\n\t\r\b\f";
}

// --- Hand-picked messages --------------------------------------------------

void AddHandPicked(std::vector<Labeled>* out) {
  auto add = [out](std::string label) -> Shapes& {
    out->push_back({std::move(label), Shapes()});
    return out->back().message;
  };
  add("empty");
  {
    Shapes& m = add("scalar minimums");
    m.set_i32(std::numeric_limits<int32_t>::min());
    m.set_i64(std::numeric_limits<int64_t>::min());
    m.set_u32(1);
    m.set_u64(1);
    m.set_s32(std::numeric_limits<int32_t>::min());
    m.set_s64(std::numeric_limits<int64_t>::min());
    m.set_f32(1);
    m.set_f64(1);
    m.set_sf32(std::numeric_limits<int32_t>::min());
    m.set_sf64(std::numeric_limits<int64_t>::min());
    m.set_fl(std::numeric_limits<float>::lowest());
    m.set_db(std::numeric_limits<double>::lowest());
    m.set_bo(true);
  }
  {
    Shapes& m = add("scalar maximums");
    m.set_i32(std::numeric_limits<int32_t>::max());
    m.set_i64(std::numeric_limits<int64_t>::max());
    m.set_u32(std::numeric_limits<uint32_t>::max());
    m.set_u64(std::numeric_limits<uint64_t>::max());
    m.set_s32(std::numeric_limits<int32_t>::max());
    m.set_s64(std::numeric_limits<int64_t>::max());
    m.set_f32(std::numeric_limits<uint32_t>::max());
    m.set_f64(std::numeric_limits<uint64_t>::max());
    m.set_sf32(std::numeric_limits<int32_t>::max());
    m.set_sf64(std::numeric_limits<int64_t>::max());
    m.set_fl(std::numeric_limits<float>::max());
    m.set_db(std::numeric_limits<double>::max());
    m.set_opt_u64(std::numeric_limits<uint64_t>::max());
    for (int64_t v : {std::numeric_limits<int64_t>::min(), int64_t{-1}, int64_t{0},
                      (int64_t{1} << 53) + 1, std::numeric_limits<int64_t>::max()}) {
      m.add_rep_i64(v);
      m.add_rep_s64(v);
      m.add_rep_sf64(v);
      m.add_rep_u64(static_cast<uint64_t>(v));
      m.add_rep_f64(static_cast<uint64_t>(v));
    }
  }
  {
    Shapes& m = add("tiny floats");
    m.set_fl(std::numeric_limits<float>::denorm_min());
    m.set_db(std::numeric_limits<double>::denorm_min());
    for (double d : {0.1, 1.0 / 3, 1e21, 1e-7, 5e-324, 2.2250738585072009e-308, 9007199254740993.0,
                     0.30000000000000004, 123456789012345678.0}) {
      m.add_rep_db(d);
      m.add_rep_fl(static_cast<float>(d));
    }
  }
  {
    Shapes& m = add("NaN and infinities");
    m.set_db(kNaN);
    m.set_fl(static_cast<float>(-kInf));
    for (double d : {kNaN, -kNaN, kInf, -kInf, 0.0, -0.0}) {
      m.add_rep_db(d);
      m.add_rep_fl(static_cast<float>(d));
    }
    m.set_opt_db(kInf);
    m.mutable_w_db()->set_value(-kInf);
    m.mutable_w_fl()->set_value(static_cast<float>(kNaN));
    (*m.mutable_m_s64())[1] = kNaN;
    (*m.mutable_m_s64())[-1] = kInf;
    (*m.mutable_m_f32())[7] = static_cast<float>(-kInf);
  }
  {
    Shapes& m = add("negative zeros");
    m.set_db(-0.0);
    m.set_fl(-0.0f);
    m.set_opt_db(-0.0);
    m.mutable_w_db()->set_value(-0.0);
    m.mutable_w_fl()->set_value(-0.0f);
    m.mutable_val()->set_number_value(-0.0);
    m.add_rep_db(-0.0);
    (*m.mutable_m_s64())[0] = -0.0;
  }
  {
    Shapes& m = add("strings");
    m.set_str(Tricky());
    m.set_opt_str("");
    m.add_rep_str("");
    m.add_rep_str(Utf8(0x2028));
    m.add_rep_str(Tricky());
    m.mutable_w_str()->set_value(Utf8(0x2028) + Utf8(0x2029));
    m.add_rep_w_str();
    m.add_rep_w_str()->set_value(Tricky());
    m.set_custom(Utf8(0x2028));
    (*m.mutable_m_str())[""] = "";
    (*m.mutable_m_str())[Tricky()] = Tricky();
    (*m.mutable_m_str())[Utf8(0x2028)] = "line separator";
    (*m.mutable_m_i32())[-1] = Tricky();
    m.mutable_nested()->set_b(Tricky());
  }
  {
    Shapes& m = add("bytes with every value");
    m.set_by(AllBytes());
    m.set_opt_by("");
    m.add_rep_by("");
    m.add_rep_by(std::string(1, '\0'));
    m.add_rep_by("\xff");
    m.add_rep_by("ab");  // base64 padding
    m.add_rep_by("abc");
    m.add_rep_by(AllBytes());
    m.mutable_w_by()->set_value(AllBytes());
    (*m.mutable_m_f64())[1] = AllBytes();
    (*m.mutable_m_f64())[2] = "";
  }
  {
    Shapes& m = add("enums, unknown numbers");
    m.set_color(gravity::test::shapes::BLUE);  // negative
    m.set_opt_color(gravity::test::shapes::COLOR_UNSPECIFIED);
    for (int v : {0, 1, 2, -3, 12345, -7, std::numeric_limits<int32_t>::max(),
                  std::numeric_limits<int32_t>::min()}) {
      m.add_rep_color(static_cast<Color>(v));
    }
    m.add_rep_color(gravity::test::shapes::CRIMSON);  // an alias of RED
    (*m.mutable_m_sf32())[1] = static_cast<Color>(99);
    (*m.mutable_m_sf32())[-2] = gravity::test::shapes::BLUE;
    m.mutable_nested()->set_color(static_cast<Color>(1000));
    m.add_rep_nested()->set_color(static_cast<Color>(-1000));
  }
  {
    Shapes& m = add("unknown enum as the singular field");
    m.set_color(static_cast<Color>(42));
  }
  {
    Shapes& m = add("nesting");
    Nested* n = m.mutable_nested();
    for (int i = 0; i < 20; ++i) {
      n->set_a(i);
      n->add_children()->set_b(absl::StrCat("child ", i));
      n->add_children();
      n = n->mutable_child();
    }
    m.add_rep_nested();
    m.add_rep_nested()->mutable_child()->mutable_child();
    m.mutable_opt_nested();
    m.mutable_recursive()->mutable_recursive()->mutable_nested()->set_a(-1);
  }
  {
    Shapes& m = add("proto3 optionals at their defaults");
    m.set_opt_i32(0);
    m.set_opt_str("");
    m.set_opt_color(gravity::test::shapes::COLOR_UNSPECIFIED);
    m.set_opt_db(0);
    m.set_opt_by("");
    m.mutable_opt_nested();
    m.set_opt_bo(false);
    m.set_opt_u64(0);
    m.set_opt_null(google::protobuf::NULL_VALUE);
  }
  {
    Shapes& m = add("repeated defaults");
    m.add_rep_i32(0);
    m.add_rep_i32(0);
    m.add_rep_bo(false);
    m.add_rep_str("");
    m.add_rep_by("");
    m.add_rep_color(gravity::test::shapes::COLOR_UNSPECIFIED);
    m.add_rep_nested();
    m.add_rep_fl(0);
    m.add_rep_u32(0);
  }
  // Each oneof case.
  add("oneof int32").set_one_i32(std::numeric_limits<int32_t>::min());
  add("oneof int32 zero").set_one_i32(0);
  add("oneof string").set_one_str(Tricky());
  add("oneof empty string").set_one_str("");
  add("oneof message").mutable_one_nested()->set_b("x");
  add("oneof empty message").mutable_one_nested();
  {
    google::protobuf::Value* v = add("oneof Value").mutable_one_value();
    auto* fields = v->mutable_struct_value()->mutable_fields();
    (*fields)["list"].mutable_list_value()->add_values()->mutable_list_value();
    (*fields)["n"].set_number_value(1.5);
  }
  add("oneof Value bool").mutable_one_value()->set_bool_value(false);
  add("oneof null").set_one_null(google::protobuf::NULL_VALUE);
  add("oneof enum").set_one_color(gravity::test::shapes::COLOR_UNSPECIFIED);
  add("oneof unknown enum").set_one_color(static_cast<Color>(77));
  add("oneof bytes").set_one_by(AllBytes());
  add("oneof empty bytes").set_one_by("");
  add("oneof float").set_one_fl(3.4028235e38f);
  add("oneof float NaN").set_one_fl(static_cast<float>(kNaN));
  add("oneof float -0").set_one_fl(-0.0f);
  {
    Shapes& m = add("maps of every key type");
    (*m.mutable_m_i32())[std::numeric_limits<int32_t>::min()] = "min";
    (*m.mutable_m_i32())[0] = "";
    (*m.mutable_m_i32())[std::numeric_limits<int32_t>::max()] = "max";
    (*m.mutable_m_i64())[std::numeric_limits<int64_t>::min()] = 0;
    (*m.mutable_m_i64())[std::numeric_limits<int64_t>::max()] = -1;
    (*m.mutable_m_u32())[std::numeric_limits<uint32_t>::max()] =
        std::numeric_limits<uint64_t>::max();
    (*m.mutable_m_u32())[0] = 0;
    (*m.mutable_m_u64())[std::numeric_limits<uint64_t>::max()] =
        std::numeric_limits<int64_t>::min();
    (*m.mutable_m_s32())[-1] = false;
    (*m.mutable_m_s32())[std::numeric_limits<int32_t>::min()] = true;
    (*m.mutable_m_s64())[std::numeric_limits<int64_t>::min()] = 0.5;
    (*m.mutable_m_f32())[std::numeric_limits<uint32_t>::max()] = 1e-45f;
    (*m.mutable_m_f64())[std::numeric_limits<uint64_t>::max()] = "\x01\x02";
    (*m.mutable_m_sf32())[-3] = gravity::test::shapes::COLOR_UNSPECIFIED;
    (*m.mutable_m_sf32())[-4] = static_cast<Color>(99);
    (*m.mutable_m_sf64())[-5];
    (*m.mutable_m_sf64())[std::numeric_limits<int64_t>::max()].set_a(6);
    (*m.mutable_m_bo())[true] = "t";
    (*m.mutable_m_bo())[false] = "";
    (*m.mutable_m_str())[""] = "";
    (*m.mutable_m_str())["k"] = "v";
    (*m.mutable_m_nested())["n"];
    (*m.mutable_m_nested())["m"].add_children()->set_a(1);
    (*m.mutable_m_value())["null"].set_null_value(google::protobuf::NULL_VALUE);
    (*m.mutable_m_value())["list"].mutable_list_value()->add_values()->set_string_value("x");
    (*m.mutable_m_ts())["epoch"];
    (*m.mutable_m_ts())["max"].set_seconds(253402300799);
    (*m.mutable_m_any())["empty"];
    (*m.mutable_m_any())["nested"].PackFrom(m.m_sf64().at(std::numeric_limits<int64_t>::max()));
    (*m.mutable_m_null())["n"] = google::protobuf::NULL_VALUE;
    (*m.mutable_m_wrapper())["zero"];
    (*m.mutable_m_wrapper())["min"].set_value(std::numeric_limits<int32_t>::min());
    (*m.mutable_m_struct())["empty"];
    (*(*m.mutable_m_struct())["s"].mutable_fields())["b"].set_bool_value(true);
    (*m.mutable_m_u32v())["u"] = std::numeric_limits<uint32_t>::max();
    for (int i = 0; i < 40; ++i) (*m.mutable_m_str())[absl::StrCat("key", i)] = absl::StrCat(i);
  }
  {
    Shapes& m = add("timestamps and durations");
    m.mutable_ts()->set_seconds(-62135596800);  // 0001-01-01T00:00:00Z
    auto* max = m.add_rep_ts();
    max->set_seconds(253402300799);  // 9999-12-31T23:59:59.999999999Z
    max->set_nanos(999999999);
    for (int32_t nanos : {0, 1, 1000, 1000000, 10, 123456000, 500000000}) {
      auto* ts = m.add_rep_ts();
      ts->set_seconds(1700000000);
      ts->set_nanos(nanos);
    }
    m.mutable_dur()->set_seconds(315576000000);
    m.mutable_dur()->set_nanos(999999999);
    for (auto [s, n] : std::vector<std::pair<int64_t, int32_t>>{
             {-315576000000, -999999999}, {0, -500000000}, {0, 1}, {-1, 0}, {3, 1000}, {0, 0}}) {
      auto* d = m.add_rep_dur();
      d->set_seconds(s);
      d->set_nanos(n);
    }
  }
  {
    Shapes& m = add("Struct, Value, ListValue with nested lists");
    auto& fields = *m.mutable_st()->mutable_fields();
    fields["null"].set_null_value(google::protobuf::NULL_VALUE);
    fields["number"].set_number_value(-1.25e-300);
    fields["big"].set_number_value(1e300);
    fields["string"].set_string_value(Tricky());
    fields["bool"].set_bool_value(true);
    fields[""].mutable_struct_value();
    fields[Utf8(0x2028)].set_string_value("key with U+2028");
    google::protobuf::ListValue* list = fields["list"].mutable_list_value();
    list->add_values()->set_number_value(1);
    list->add_values()->set_string_value("a");
    google::protobuf::ListValue* inner = list->add_values()->mutable_list_value();
    inner->add_values()->mutable_list_value();  // []
    google::protobuf::ListValue* deeper = inner->add_values()->mutable_list_value();
    deeper->add_values()->set_null_value(google::protobuf::NULL_VALUE);
    (*deeper->add_values()->mutable_struct_value()->mutable_fields())["deep"]
        .mutable_list_value()
        ->add_values()
        ->set_bool_value(true);
    list->add_values()->mutable_struct_value();  // {}
    (*fields["object"].mutable_struct_value()->mutable_fields())["x"].mutable_struct_value();
    *m.mutable_val()->mutable_list_value() = *list;
    *m.mutable_lv() = *list;
    m.add_rep_val()->set_null_value(google::protobuf::NULL_VALUE);
    m.add_rep_val()->set_string_value("");
    *m.add_rep_val()->mutable_struct_value() = m.st();
    m.add_rep_st();
    *m.add_rep_st() = m.st();
    m.add_rep_lv();
    *m.add_rep_lv() = *inner;
    (*m.mutable_m_struct())["copy"] = m.st();
  }
  {
    Shapes& m = add("Value of each kind");
    m.mutable_val()->set_string_value(Utf8(0x2028));
    m.add_rep_val()->set_number_value(0);
    m.add_rep_val()->set_bool_value(false);
    m.add_rep_val()->mutable_list_value();
    m.add_rep_val()->mutable_struct_value();
    m.mutable_lv();
    m.mutable_st();
  }
  {
    Shapes& m = add("FieldMask");
    for (const char* path : {"a", "foo_bar", "foo_bar.baz_qux", "x.y.z", "nested_field.child"}) {
      m.mutable_fm()->add_paths(path);
    }
    m.add_rep_fm();
    m.add_rep_fm()->add_paths("a_b");
  }
  {
    Shapes& m = add("wrappers at extremes");
    m.mutable_w_db()->set_value(std::numeric_limits<double>::max());
    m.mutable_w_fl()->set_value(std::numeric_limits<float>::denorm_min());
    m.mutable_w_i64()->set_value(std::numeric_limits<int64_t>::min());
    m.mutable_w_u64()->set_value(std::numeric_limits<uint64_t>::max());
    m.mutable_w_i32()->set_value(std::numeric_limits<int32_t>::min());
    m.mutable_w_u32()->set_value(std::numeric_limits<uint32_t>::max());
    m.mutable_w_bo()->set_value(true);
    m.mutable_w_str()->set_value(Tricky());
    m.mutable_w_by()->set_value(AllBytes());
  }
  {
    Shapes& m = add("wrappers at zero");
    m.mutable_w_db();
    m.mutable_w_fl();
    m.mutable_w_i64();
    m.mutable_w_u64();
    m.mutable_w_i32();
    m.mutable_w_u32();
    m.mutable_w_bo();
    m.mutable_w_str();
    m.mutable_w_by();
    m.add_rep_w_str();
    (*m.mutable_m_wrapper())["z"];
  }
  {
    Shapes& m = add("Empty and nulls");
    m.mutable_empty();
    m.add_rep_empty();
    m.add_rep_empty();
    m.add_rep_null(google::protobuf::NULL_VALUE);
    m.add_rep_null(google::protobuf::NULL_VALUE);
    m.set_opt_null(google::protobuf::NULL_VALUE);
    (*m.mutable_m_null())["a"] = google::protobuf::NULL_VALUE;
    m.mutable_val()->set_null_value(google::protobuf::NULL_VALUE);
  }
  {
    Shapes& m = add("Any of registered types");
    Nested nested;
    nested.set_a(1);
    nested.set_b(Tricky());
    nested.mutable_child()->set_color(static_cast<Color>(55));
    m.mutable_any()->PackFrom(nested);
    google::protobuf::Timestamp ts;
    ts.set_seconds(1);
    ts.set_nanos(1000);
    m.add_rep_any()->PackFrom(ts);
    google::protobuf::Duration dur;
    dur.set_nanos(-1000);
    m.add_rep_any()->PackFrom(dur);
    google::protobuf::Value value;
    value.set_string_value("v");
    m.add_rep_any()->PackFrom(value);
    google::protobuf::Struct st;
    (*st.mutable_fields())["k"].mutable_list_value()->add_values()->set_bool_value(true);
    m.add_rep_any()->PackFrom(st);
    m.add_rep_any()->PackFrom(google::protobuf::ListValue());
    m.add_rep_any()->PackFrom(google::protobuf::Empty());
    google::protobuf::Int64Value i64;
    i64.set_value(std::numeric_limits<int64_t>::min());
    m.add_rep_any()->PackFrom(i64);
    google::protobuf::UInt64Value u64;
    u64.set_value(std::numeric_limits<uint64_t>::max());
    m.add_rep_any()->PackFrom(u64);
    google::protobuf::BytesValue bytes;
    bytes.set_value(AllBytes());
    m.add_rep_any()->PackFrom(bytes);
    google::protobuf::FieldMask fm;
    fm.add_paths("a_b.c");
    m.add_rep_any()->PackFrom(fm);
    google::protobuf::Any inner;
    inner.PackFrom(nested);
    m.add_rep_any()->PackFrom(inner);
    m.add_rep_any()->PackFrom(google::protobuf::Any());
    Shapes payload;
    payload.set_i64(std::numeric_limits<int64_t>::min());
    payload.set_db(kNaN);
    payload.mutable_any()->PackFrom(ts);
    payload.add_rep_color(static_cast<Color>(9));
    (*payload.mutable_m_bo())[true] = "yes";
    m.add_rep_any()->PackFrom(payload);
    m.add_rep_any();  // an empty Any
  }
  {
    Shapes& m = add("json names, snake case, declaration order");
    m.set_custom("c");
    m.set_snake_case_name_2x(1);
    m.set_x_y_z(2);
    m.set_declared_before(3);
    m.set_declared_after(4);
    m.mutable_recursive()->set_custom("r");
  }
  {
    Shapes& m = add("large");
    for (int i = 0; i < 3000; ++i) {
      m.add_rep_str(absl::StrCat("string ", i, " ", Utf8(0x2028)));
      m.add_rep_i64(std::numeric_limits<int64_t>::min() + i);
      m.add_rep_db(i / 7.0);
    }
    for (int i = 0; i < 500; ++i) (*m.mutable_m_i64())[i * 1000003LL] = i;
    m.set_by(std::string(100000, '\xfe'));
  }
}

// --- Random messages -------------------------------------------------------

// The test's messages, in the order the server sends them. Built once; the
// expected JSON is printed from these very objects (a map's order is that of
// its object), which the server serializes too.
const std::vector<Labeled>& Messages() {
  static const auto* messages = [] {
    auto* list = new std::vector<Labeled>();
    AddHandPicked(list);
    // Values whose JSON reads back as the same message.
    gravity::testing::ShapesFillerOptions options;
    options.json_round_trip = true;
    gravity::testing::ShapesFiller filler(20261202, options);
    for (int i = 0; i < kRandomMessages; ++i) {
      Shapes filled;
      filler.Fill(&filled, 0);
      // Re-parsed, so the maps are maps (the filler adds entries by reflection).
      Shapes parsed;
      EXPECT_TRUE(parsed.ParseFromString(filled.SerializeAsString()));
      list->push_back({absl::StrCat("random #", i), std::move(parsed)});
    }
    return list;
  }();
  return *messages;
}

std::string Expected(const Shapes& m) {
  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(m, &json);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return json;
}

// Where two strings first differ, with some context.
std::string FirstDifference(const std::string& expected, const std::string& got) {
  size_t i = 0;
  while (i < expected.size() && i < got.size() && expected[i] == got[i]) ++i;
  const size_t from = i < 40 ? 0 : i - 40;
  return absl::StrCat("first difference at byte ", i, " (expected length ", expected.size(),
                      ", got ", got.size(), "):\n  expected ...", expected.substr(from, 100),
                      "\n  got      ...", got.substr(from, 100));
}

// How `got` differs from `original`, field by field (NaN equal to NaN).
std::string FieldDifferences(const Shapes& original, const Shapes& got) {
  google::protobuf::util::DefaultFieldComparator comparator;
  comparator.set_treat_nan_as_equal(true);
  google::protobuf::util::MessageDifferencer differencer;
  differencer.set_field_comparator(&comparator);
  std::string report;
  differencer.ReportDifferencesToString(&report);
  return differencer.Compare(original, got) ? "" : report;
}

// The fields in which the JSON `json` read back differs from `original`. (A
// diagnosis only: json_util reads some of its own output back differently,
// e.g. a float or double "-0" as +0, which proto3 then leaves out.)
std::string JsonFieldDifferences(const Shapes& original, const std::string& json) {
  Shapes parsed;
  const auto status = google::protobuf::util::JsonStringToMessage(json, &parsed);
  if (!status.ok()) return absl::StrCat("does not parse back: ", status.message().as_string());
  const std::string differences = FieldDifferences(original, parsed);
  return differences.empty() ? "parses back to an equal message (so: formatting only)"
                             : absl::StrCat("parsed back, differs in:\n", differences);
}

// Reports one output that should be `expected` for message `index`.
void ExpectJson(const char* where, size_t index, const std::string& expected,
                const std::string& got, const std::string& got_json) {
  if (got == expected) return;
  const Labeled& labeled = Messages()[index];
  ADD_FAILURE() << where << ": message " << index << " (" << labeled.label << ") "
                << FirstDifference(expected, got) << "\n"
                << JsonFieldDifferences(labeled.message, got_json);
}

class MessageShapesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(gravity_cli_path, nullptr) << "usage: message_shapes_test <gravity-cli>";
    for (const Labeled& labeled : Messages()) expected_.push_back(Expected(labeled.message));
    service_ = std::make_unique<server::Service>(kService);
    const absl::Status added = service_->AddStream<StreamShapesRequest, Shapes>(
        "Stream", [](const StreamShapesRequest&, server::Stream<Shapes> stream) {
          for (const Labeled& labeled : Messages()) {
            EXPECT_TRUE(stream.Send(labeled.message)) << labeled.label;
          }
          stream.Close();
        });
    ASSERT_TRUE(added.ok()) << added;
    server_ = testing::StartServer({service_.get()});
    ASSERT_NE(server_, nullptr);
    channel_ = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
  }

  void StartBridge(const google::protobuf::FileDescriptorSet& descriptors) {
    BridgeOptions options;
    options.listen = "127.0.0.1:0";
    options.threads = 2;
    // Some shapes are 200 KB messages: this test is about their JSON, not the event bound.
    options.max_event_bytes = 0;
    auto bridge = Bridge::Start(options, channel_, descriptors);
    ASSERT_TRUE(bridge.ok()) << bridge.status();
    bridge_ = std::move(*bridge);
  }

  void CheckSse() {
    testing::HttpResponse response = testing::HttpRequest(bridge_->port(), "GET", kPath);
    ASSERT_EQ(response.status, 200) << response.error << response.body;
    ASSERT_TRUE(response.error.empty()) << response.error;
    EXPECT_EQ(response.header("content-type"), "text/event-stream; charset=utf-8");
    std::vector<testing::SseEvent> events = testing::ParseSse(response.body);
    ASSERT_EQ(events.size(), expected_.size() + 1) << response.body.substr(0, 2000);
    for (size_t i = 0; i < expected_.size(); ++i) {
      EXPECT_EQ(events[i].event, "") << i;
      ExpectJson("SSE", i, expected_[i], events[i].data, events[i].data);
    }
    EXPECT_EQ(events.back().event, "end");
    EXPECT_EQ(events.back().data, R"({"code":0,"message":"","details":[]})");
  }

  void CheckNdjson() {
    testing::HttpResponse response =
        testing::HttpRequest(bridge_->port(), "GET", kPath, {{"Accept", "application/x-ndjson"}});
    ASSERT_EQ(response.status, 200) << response.error << response.body;
    ASSERT_TRUE(response.error.empty()) << response.error;
    EXPECT_EQ(response.header("content-type"), "application/x-ndjson");
    std::vector<std::string> lines = absl::StrSplit(response.body, '\n', absl::SkipEmpty());
    ASSERT_EQ(lines.size(), expected_.size()) << (lines.empty() ? "" : lines.back());
    for (size_t i = 0; i < expected_.size(); ++i) {
      const std::string& line = lines[i];
      const std::string prefix = "{\"result\":";
      std::string inner;
      if (line.size() > prefix.size() && line.compare(0, prefix.size(), prefix) == 0 &&
          line.back() == '}') {
        inner = line.substr(prefix.size(), line.size() - prefix.size() - 1);
      }
      ExpectJson("NDJSON", i, "{\"result\":" + expected_[i] + "}", line, inner);
    }
  }

  std::vector<std::string> expected_;
  std::unique_ptr<server::Service> service_;
  std::unique_ptr<server::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Bridge> bridge_;
};

TEST_F(MessageShapesTest, TheMessagesAreThere) {
  // Every message prints with json_util, and the list has what it claims.
  EXPECT_EQ(Messages().size(), expected_.size());
  EXPECT_GE(Messages().size(), static_cast<size_t>(kRandomMessages + 30));
  size_t bytes = 0;
  for (size_t i = 0; i < expected_.size(); ++i) {
    EXPECT_FALSE(expected_[i].empty()) << Messages()[i].label;
    bytes += expected_[i].size();
  }
  std::printf("%zu messages (%d random), %zu bytes of JSON\n", expected_.size(), kRandomMessages,
              bytes);
}

TEST_F(MessageShapesTest, NativeGrpcReadsEveryMessageUnchanged) {
  auto stub = ShapeStream::NewStub(channel_);
  auto stream = client::Open(stub, &ShapeStream::Stub::async::Stream, {},
                             client::CallOptions().WithTimeout(absl::Seconds(60)));
  ASSERT_TRUE(stream.ok()) << stream.status();
  size_t i = 0;
  Shapes got;
  while (stream->Next(&got)) {
    ASSERT_LT(i, Messages().size());
    const Labeled& labeled = Messages()[i];
    const std::string differences = FieldDifferences(labeled.message, got);
    EXPECT_TRUE(differences.empty()) << "message " << i << " (" << labeled.label << "):\n"
                                     << differences;
    // Exactly: NaN payloads, -0.0 and unknown enum numbers included.
    std::string want;
    std::string have;
    {
      google::protobuf::io::StringOutputStream out(&want);
      google::protobuf::io::CodedOutputStream coded(&out);
      coded.SetSerializationDeterministic(true);
      labeled.message.SerializeToCodedStream(&coded);
    }
    {
      google::protobuf::io::StringOutputStream out(&have);
      google::protobuf::io::CodedOutputStream coded(&out);
      coded.SetSerializationDeterministic(true);
      got.SerializeToCodedStream(&coded);
    }
    EXPECT_TRUE(want == have) << "message " << i << " (" << labeled.label
                              << "): deterministic serializations differ";
    ++i;
  }
  EXPECT_EQ(i, Messages().size());
  EXPECT_TRUE(stream->status().ok()) << stream->status();
}

TEST_F(MessageShapesTest, BridgeWithLinkedDescriptorsPrintsJsonUtilsJson) {
  auto descriptors = DescriptorsOfLinkedServices({kService});
  ASSERT_TRUE(descriptors.ok()) << descriptors.status();
  StartBridge(*descriptors);
  ASSERT_NE(bridge_, nullptr);
  CheckSse();
  CheckNdjson();
}

TEST_F(MessageShapesTest, BridgeWithReflectedDescriptorsPrintsJsonUtilsJson) {
  auto descriptors = client::FetchServiceDescriptors(channel_, absl::Seconds(10));
  ASSERT_TRUE(descriptors.ok()) << descriptors.status();
  StartBridge(*descriptors);
  ASSERT_NE(bridge_, nullptr);
  CheckSse();
  CheckNdjson();
}

TEST_F(MessageShapesTest, GravityCliPrintsJsonUtilsJson) {
  auto cli = testing::Subprocess::Start({gravity_cli_path, "--target=" + server_->address(),
                                         "gravity.test.shapes.ShapeStream/Stream"});
  ASSERT_NE(cli, nullptr);
  testing::Subprocess::Result result = cli->Finish(absl::Seconds(60));
  EXPECT_EQ(result.exit_code, 0) << result.err;
  std::vector<std::string> lines = absl::StrSplit(result.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), expected_.size() + 1) << result.err;
  for (size_t i = 0; i < expected_.size(); ++i) {
    ExpectJson("gravity-cli", i, expected_[i], lines[i], lines[i]);
  }
  EXPECT_EQ(lines.back(), R"({"code":0,"message":""})");
}

}  // namespace
}  // namespace gravity::bridge

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc > 1) gravity::bridge::gravity_cli_path = argv[1];
  return RUN_ALL_TESTS();
}
