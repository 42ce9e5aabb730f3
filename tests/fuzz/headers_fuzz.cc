// headers_fuzz: the headers the bridge forwards or answers to (Last-Event-ID,
// Accept, Origin, Authorization, Cookie, a --forward_header, and the preflight's
// Access-Control-Request-Headers) and the bridge's own query parameters
// (access_token, lastEventId), with fuzzed values, in a request Beast accepts,
// through Route. Invariants: what a stream forwards is printable ASCII within
// max_metadata_bytes and is what the request said; CORS never pairs "*" with
// credentials, and credentials only go to an allowlisted origin.
//
// Input: fields separated by NUL (a value Beast takes never holds one):
// [selector] [Last-Event-ID] [Accept] [Origin] [Authorization] [Cookie]
// [X-Request-Id] [access_token] [lastEventId] [Access-Control-Request-Headers];
// a field that is absent is not sent, an empty one is sent empty.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "boost/url/encode.hpp"
#include "boost/url/rfc/unreserved_chars.hpp"
#include "fuzz_common.h"

namespace gravity::fuzz {
namespace {

using bridge::internal::CorsHeaders;
using bridge::internal::Headers;

const std::vector<BridgeState*>& States() {
  static const auto* states = [] {
    auto* all = new std::vector<BridgeState*>;
    BridgeOptions a;
    a.cors_origins = {"https://app.example", "*"};
    a.forward_headers = {"X-Request-Id"};
    all->push_back(NewState(a));
    BridgeOptions b;
    b.cors_origins = {"*", "https://app.example", "null"};
    b.forward_headers = {"x-request-id"};
    b.max_metadata_bytes = 128;
    all->push_back(NewState(b));
    BridgeOptions c;  // no CORS; Cookie named twice; nothing may be forwarded
    c.forward_headers = {"Cookie"};
    c.max_metadata_bytes = 0;
    all->push_back(NewState(c));
    return all;
  }();
  return *states;
}

std::string Lookup(const Headers& headers, absl::string_view name) {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) return value;
  }
  return "";
}

void CheckCors(const std::string& origin, const BridgeOptions& options) {
  const Headers cors = CorsHeaders(origin, options);
  const std::string allow_origin = Lookup(cors, "Access-Control-Allow-Origin");
  const bool credentials = !Lookup(cors, "Access-Control-Allow-Credentials").empty();
  for (const auto& [name, value] : cors) {
    Require(!HasLineBreakOrNul(value), "CORS header values are one line");
  }
  Require(!(allow_origin == "*" && credentials), "\"*\" never comes with credentials");
  if (credentials) {
    Require(allow_origin == origin, "credentials go with the request's own origin");
    Require(std::find(options.cors_origins.begin(), options.cors_origins.end(), origin) !=
                options.cors_origins.end(),
            "credentials only for an allowlisted origin");
  }
  if (origin.empty() || options.cors_origins.empty()) Require(cors.empty(), "no CORS asked");
}

std::string Encoded(absl::string_view value) {
  return boost::urls::encode(boost::core::string_view(value.data(), value.size()),
                             boost::urls::unreserved_chars);
}

}  // namespace
}  // namespace gravity::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gravity::fuzz;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> fields = absl::StrSplit(input, absl::string_view("\0", 1));
  for (std::string& field : fields) {  // Beast takes no line breaks in a value
    field.erase(
        std::remove_if(field.begin(), field.end(), [](char c) { return c == '\r' || c == '\n'; }),
        field.end());
  }
  const unsigned selector = fields[0].empty() ? 0 : static_cast<unsigned char>(fields[0][0]);
  const BridgeState& state = *States()[selector % 3];
  const char* const methods[] = {"GET", "POST", "OPTIONS"};
  const char* const paths[] = {"/streaming.v1.Streaming/Ping", "/api/streaming/ping",
                               "/streaming.v1.Streaming/StreamUsers"};
  const bool http10 = (selector / 9) % 2 == 1;
  auto field = [&](size_t i) -> const std::string* {
    return i < fields.size() ? &fields[i] : nullptr;
  };

  std::string target = paths[(selector / 18) % 3];
  std::vector<std::string> query;
  if (const std::string* token = field(7)) query.push_back("access_token=" + Encoded(*token));
  if (const std::string* id = field(8)) query.push_back("lastEventId=" + Encoded(*id));
  if (!query.empty()) absl::StrAppend(&target, "?", absl::StrJoin(query, "&"));
  std::string raw = absl::StrCat(methods[(selector / 3) % 3], " ", target,
                                 http10 ? " HTTP/1.0" : " HTTP/1.1", "\r\nHost: bridge.test\r\n");
  const char* const names[] = {
      "",       "Last-Event-ID", "Accept", "Origin", "Authorization",
      "Cookie", "X-Request-Id",  "",       "",       "Access-Control-Request-Headers"};
  for (size_t i = 1; i < std::size(names); ++i) {
    if (names[i][0] != '\0' && field(i) != nullptr) {
      absl::StrAppend(&raw, names[i], ": ", *field(i), "\r\n");
    }
  }
  raw += "\r\n";

  size_t used = 0;
  std::optional<HttpRequest> request = ParseRequest(raw, state.options, &used);
  if (!request) return 0;
  const std::string origin(request->operator[](http::field::origin));
  for (const BridgeState* any : States()) CheckCors(origin, any->options);

  const Routed routed = Route(*request, state);
  CheckRouted(routed, state);
  if (const auto* plain = std::get_if<PlainResponse>(&routed)) {
    if (request->method() == http::verb::options && !plain->headers.empty()) {
      const std::string asked(request->operator[](http::field::access_control_request_headers));
      Require(Lookup(plain->headers, "Access-Control-Allow-Headers") == asked,
              "the preflight allows what was asked");
      Require(!CorsHeaders(origin, state.options).empty(), "a preflight only for CORS origins");
    }
    return 0;
  }
  // What a stream forwards is what the request said.
  const auto& plan = std::get<StreamPlan>(routed);
  const std::string authorization(request->operator[](http::field::authorization));
  std::string expected_authorization = authorization;
  if (authorization.empty() && field(7) != nullptr && !field(7)->empty()) {
    expected_authorization = "Bearer " + *field(7);
  }
  Require(Lookup(plan.metadata, "authorization") == expected_authorization,
          "authorization is the header, else the access_token");
  std::string last_event_id(request->operator[]("Last-Event-ID"));
  if (last_event_id.empty() && field(8) != nullptr) last_event_id = *field(8);
  Require(Lookup(plan.metadata, "last-event-id") == last_event_id,
          "last-event-id is the header, else the parameter");
  Require(Lookup(plan.metadata, "cookie") == std::string(request->operator[](http::field::cookie)),
          "cookie is forwarded as it came");
  return 0;
}
