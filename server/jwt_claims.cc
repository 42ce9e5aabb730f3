#include "server/jwt_claims.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace gravity::server {

namespace {

// A NumericDate claim (RFC 7519: seconds since the epoch, fractions allowed).
absl::Status ReadTime(const google::protobuf::Struct& fields, const char* name, absl::Time* out) {
  auto it = fields.fields().find(name);
  if (it == fields.fields().end()) return absl::OkStatus();
  // Seconds within ±10^11 (some 3,000 years): anything else is not a time,
  // and would overflow the conversion.
  if (it->second.kind_case() != google::protobuf::Value::kNumberValue ||
      !(std::fabs(it->second.number_value()) < 1e11)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the token's \"", name, "\" is not a time in seconds"));
  }
  *out = absl::FromUnixMicros(static_cast<int64_t>(it->second.number_value() * 1e6));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<JwtClaims> JwtClaims::FromJson(absl::string_view json) {
  JwtClaims claims;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  if (!google::protobuf::util::JsonStringToMessage(std::string(json), &claims.fields_, options)
           .ok()) {
    return absl::InvalidArgumentError("the token's claims are not a JSON object");
  }
  absl::Status read = ReadTime(claims.fields_, "exp", &claims.expires_at_);
  if (read.ok()) read = ReadTime(claims.fields_, "nbf", &claims.not_before_);
  if (!read.ok()) return read;
  return claims;
}

std::optional<std::string> JwtClaims::String(absl::string_view name) const {
  auto it = fields_.fields().find(std::string(name));
  if (it == fields_.fields().end() ||
      it->second.kind_case() != google::protobuf::Value::kStringValue) {
    return std::nullopt;
  }
  return it->second.string_value();
}

bool JwtClaims::Has(absl::string_view name, absl::string_view value) const {
  auto it = fields_.fields().find(std::string(name));
  if (it == fields_.fields().end()) return false;
  const google::protobuf::Value& claim = it->second;
  if (claim.kind_case() == google::protobuf::Value::kStringValue) {
    return claim.string_value() == value;
  }
  if (claim.kind_case() != google::protobuf::Value::kListValue) return false;
  for (const google::protobuf::Value& item : claim.list_value().values()) {
    if (item.kind_case() == google::protobuf::Value::kStringValue && item.string_value() == value) {
      return true;
    }
  }
  return false;
}

}  // namespace gravity::server
