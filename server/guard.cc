#include "server/guard.h"

#include <utility>

#include "absl/strings/match.h"

namespace gravity::server {

bool ConstantTimeEquals(absl::string_view given, absl::string_view expected) {
  unsigned char difference = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    const char g = i < given.size() ? given[i] : 0;
    difference |= static_cast<unsigned char>(g ^ expected[i]);
  }
  return difference == 0;
}

Guard RequireBearerToken(std::string token) {
  return [token = std::move(token)](const CallInfo& call) -> grpc::Status {
    if (token.empty()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "this method needs a token and the server has none configured");
    }
    constexpr absl::string_view kScheme = "Bearer ";
    std::optional<absl::string_view> header = call.Metadata("authorization");
    if (!header || !absl::StartsWithIgnoreCase(*header, kScheme)) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "missing authorization: Bearer <token>");
    }
    if (!ConstantTimeEquals(header->substr(kScheme.size()), token)) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "invalid token");
    }
    return grpc::Status::OK;
  };
}

}  // namespace gravity::server
