// Fills a request message from an HTTP request, grpc-gateway style: query
// parameters (`?to=bob`, `a.b=1` for nested fields, repetition for repeated
// fields, enums by name or number, JSON or proto field names) and path
// template variables. Values are strict: numbers follow the JSON number
// grammar (no spaces, no '+', no leading zeros; integers take no fraction or
// exponent; out of range is an error), strings must be well-formed UTF-8.
// Pure functions; thread-safe.
#ifndef GRAVITY_BRIDGE_INTERNAL_REQUEST_MAPPING_H_
#define GRAVITY_BRIDGE_INTERNAL_REQUEST_MAPPING_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace gravity::bridge::internal {

// Query parameters the bridge consumes itself; they never reach the message.
inline constexpr absl::string_view kAccessTokenParam = "access_token";
inline constexpr absl::string_view kLastEventIdParam = "lastEventId";

// Sets field `path` ("count", "a.b", JSON or proto names) of `message` from
// its text form. Repeated fields get the value appended. Errors are
// INVALID_ARGUMENT naming the field.
absl::Status SetField(absl::string_view path, absl::string_view value,
                      google::protobuf::Message* message);

// Applies decoded query parameters in order, skipping the bridge's own. A
// singular field (under either of its names), two fields of one oneof, or a
// bridge parameter given more than once is INVALID_ARGUMENT naming it.
absl::Status ApplyQuery(const std::vector<std::pair<std::string, std::string>>& params,
                        google::protobuf::Message* message);

// Checks a JSON body that protobuf's parser took as a `type`: a field named
// twice in one object (the same key twice, or its JSON and proto names) is
// INVALID_ARGUMENT naming it, where the parser would let the last one win
// (so a proxy that reads the first could see another request than the
// backend). Map keys and the members of google.protobuf.Struct, Value and Any
// count as plain keys. `top_level` gets the fields the body's outer object
// names.
absl::Status CheckBodyFields(absl::string_view json, const google::protobuf::Descriptor& type,
                             std::vector<const google::protobuf::FieldDescriptor*>* top_level);

// The field of `type` that the first segment of a query key ("a" of "a.b")
// names, or null.
const google::protobuf::FieldDescriptor* QueryKeyField(absl::string_view key,
                                                       const google::protobuf::Descriptor& type);

// Splits and percent-decodes a query string ("a=1&b=x%20y", '+' is a space).
// A malformed escape is INVALID_ARGUMENT.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseQuery(
    absl::string_view query);

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_REQUEST_MAPPING_H_
