// AppendProto3Json: a protobuf message as proto3 JSON, by reflection, without
// protobuf's json_util.
//
// The bridge sends every message of a server stream as one line of JSON. With
// json_util (protobuf 3.21) each message is serialized, then read back through
// a TypeResolver (a google.protobuf.Type copied per lookup) and a
// ProtoStreamObjectSource; this walks the message itself and appends to the
// caller's buffer. Its output is byte for byte what json_util's
// MessageToJsonString prints with default JsonPrintOptions: no whitespace,
// json_name keys, fields with presence only, in field-number order, 64-bit
// integers as strings, enums by name (number when unknown), bytes as padded
// standard base64, floats as SimpleDtoa/SimpleFtoa (NaN and infinities as
// strings), json_util's string escaping (\u003c, \u003e, \u2028, ...), maps
// as objects, and the well-known types (Timestamp, Duration, wrappers,
// Struct/Value/ListValue, FieldMask, Any). Works on generated messages and on
// DynamicMessages of any pool.
//
// Map entries come in the order of the map's repeated representation: for a
// parsed DynamicMessage that is the wire's order (duplicate keys included),
// what json_util prints too. (Had the map since been read through protobuf's
// map reflection API, json_util would use the map's own order instead.)
//
// Whatever it cannot print exactly like json_util it refuses with an error,
// having appended nothing: maps of generated messages (their serializer's
// order is not visible through public reflection), an Any whose type is not
// in the message's pool or whose payload is not canonically encoded, strings
// that are not valid UTF-8, out-of-range Timestamps and Durations, Durations
// with mixed signs, proto2 groups, unknown fields numbered like known ones,
// and deep nesting. The caller then uses json_util, which prints those (or
// fails) its own way.
//
// Stateless and thread-safe: messages are only read (a map field of a const
// message may sync its internal representation, which protobuf guards).
#ifndef GRAVITY_BRIDGE_INTERNAL_JSON_PRINTER_H_
#define GRAVITY_BRIDGE_INTERNAL_JSON_PRINTER_H_

#include <string>

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace gravity::bridge::internal {

// Appends `message` as proto3 JSON to `*out`. On error `*out` is unchanged.
absl::Status AppendProto3Json(const google::protobuf::Message& message, std::string* out);

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_JSON_PRINTER_H_
