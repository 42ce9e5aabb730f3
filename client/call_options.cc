#include "client/call_options.h"

#include "absl/strings/str_cat.h"

namespace gravity::client {

std::string BearerToken(absl::string_view token) { return absl::StrCat("Bearer ", token); }

}  // namespace gravity::client
