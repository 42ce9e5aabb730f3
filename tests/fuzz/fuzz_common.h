// What the bridge's libFuzzer targets share: a BridgeState over the
// streaming.v1.Streaming example service (as tests/bridge/router_test.cc
// builds it), Beast's request parser with the bridge's limits, and the
// invariants every routed request must keep. Built by tests/fuzz/build.sh.
#ifndef GRAVITY_TESTS_FUZZ_FUZZ_COMMON_H_
#define GRAVITY_TESTS_FUZZ_FUZZ_COMMON_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "boost/beast/http.hpp"
#include "bridge/internal/bridge_state.h"
#include "bridge/internal/router.h"
#include "bridge/internal/trace_context.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "streaming/v1/streaming.pb.h"

namespace gravity::fuzz {

namespace http = boost::beast::http;
using bridge::BridgeOptions;
using bridge::internal::BridgeState;
using bridge::internal::HttpRequest;
using bridge::internal::JsonEncoder;
using bridge::internal::PlainResponse;
using bridge::internal::Routed;
using bridge::internal::RouteTable;
using bridge::internal::StreamPlan;

// Aborts with `what` when `ok` is false: libFuzzer records the input.
inline void Require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
    __builtin_trap();
  }
}

// Lives for the whole run (libFuzzer never returns from its loop).
inline BridgeState* NewState(BridgeOptions options) {
  auto* state = new BridgeState(std::move(options));
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  streaming::v1::PingReply::descriptor();  // links the generated file
  state->routes = std::make_unique<RouteTable>(
      *pool, std::vector<std::string>{"streaming.v1.Streaming"}, &state->warnings);
  state->factory = std::make_unique<google::protobuf::DynamicMessageFactory>(pool);
  state->json = std::make_unique<JsonEncoder>(pool);
  return state;
}

// One request from the front of `input`, as the session's parser reads it
// (eager, the bridge's header and body limits); `used` gets the bytes it
// took. nullopt when Beast refuses the bytes (the session answers 400, 413
// or 431 itself) or they end before the request does.
inline std::optional<HttpRequest> ParseRequest(absl::string_view input,
                                               const BridgeOptions& options, size_t* used) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<uint32_t>(options.max_header_bytes));
  parser.body_limit(options.max_body_bytes);
  parser.eager(true);
  boost::system::error_code ec;
  *used = parser.put(boost::asio::const_buffer(input.data(), input.size()), ec);
  if (ec || !parser.is_done()) return std::nullopt;
  return parser.release();
}

inline bool IsPrintableAscii(absl::string_view text) {
  for (char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

inline bool HasLineBreakOrNul(absl::string_view text) {
  return text.find_first_of(absl::string_view("\r\n\0", 3)) != absl::string_view::npos;
}

// What any routed request must satisfy, whatever it held.
inline void CheckRouted(const Routed& routed, const BridgeState& state) {
  if (const auto* plain = std::get_if<PlainResponse>(&routed)) {
    const int status = static_cast<int>(plain->status);
    Require(status >= 200 && status <= 599, "a plain response has a final HTTP status");
    for (const auto& [name, value] : plain->headers) {
      Require(!name.empty() && IsPrintableAscii(name), "response header names are tokens");
      Require(!HasLineBreakOrNul(value), "response header values cannot split the head");
    }
    Require(!HasLineBreakOrNul(plain->content_type), "Content-Type is one line");
    if (plain->content_type == "application/json") {
      // One line of JSON: whatever of the request it echoes is escaped.
      const std::string& body = plain->body;
      Require(body.size() >= 3 && body.front() == '{' && body.back() == '\n',
              "a JSON body is one object and a newline");
      Require(body.find_first_of("\r\n") == body.size() - 1, "a JSON body is one line");
      if (body.rfind("{\"code\":", 0) == 0) {
        Require(body.find(",\"message\":\"") != std::string::npos, "a Status JSON has a message");
      }
    }
    return;
  }
  const auto& plan = std::get<StreamPlan>(routed);
  Require(plan.method != nullptr, "a stream plan names its method");
  std::unique_ptr<google::protobuf::Message> message(
      state.factory->GetPrototype(plan.method->method->input_type())->New());
  Require(message->ParseFromString(plan.request_bytes), "the planned request parses");
  size_t metadata_size = 0;
  int traceparents = 0;
  for (const auto& [key, value] : plan.metadata) {
    Require(!key.empty() && IsPrintableAscii(key) && absl::AsciiStrToLower(key) == key,
            "metadata keys are lower case");
    Require(!value.empty() && IsPrintableAscii(value), "metadata values are printable ASCII");
    metadata_size += key.size() + value.size() + 32;
    if (key == "traceparent") {
      ++traceparents;
      Require(bridge::internal::IsValidTraceparent(value), "the traceparent is valid");
    }
  }
  Require(traceparents == 1, "every call carries one traceparent");
  // The bridge's own traceparent (98 bytes) is outside the client's bound.
  Require(metadata_size <= state.options.max_metadata_bytes + 98,
          "the forwarded metadata is within max_metadata_bytes");
}

}  // namespace gravity::fuzz

#endif  // GRAVITY_TESTS_FUZZ_FUZZ_COMMON_H_
