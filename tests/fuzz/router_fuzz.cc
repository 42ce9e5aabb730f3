// router_fuzz: bytes as HTTP/1.1 requests, read the way the bridge's session
// reads them (Beast's parser with the bridge's limits, pipelined requests one
// after another), each given to Route; and the bytes, and each request's
// query, as a query string through ParseQuery / ApplyQuery into several
// request types. Nothing may crash, leak or hit undefined behaviour, and
// every routed request keeps CheckRouted's invariants.
#include <memory>
#include <string>
#include <vector>

#include "boost/url/parse.hpp"
#include "bridge/internal/request_mapping.h"
#include "fuzz_common.h"
#include "google/protobuf/descriptor.h"

namespace gravity::fuzz {
namespace {

using bridge::internal::ApplyQuery;
using bridge::internal::ParseQuery;
using bridge::internal::SetField;

// Request types for the query mapping: the example's, and richer generated
// ones (nested messages, oneofs, enums, bytes, repeated and map fields).
const std::vector<const google::protobuf::Descriptor*>& QueryTypes() {
  static const auto* types = [] {
    const auto* pool = google::protobuf::DescriptorPool::generated_pool();
    auto* found = new std::vector<const google::protobuf::Descriptor*>;
    for (const char* name :
         {"streaming.v1.PingRequest", "google.api.HttpRule", "google.protobuf.FieldDescriptorProto",
          "google.protobuf.FileOptions", "google.protobuf.Value", "google.rpc.Status"}) {
      if (const auto* type = pool->FindMessageTypeByName(name)) found->push_back(type);
    }
    return found;
  }();
  return *types;
}

// `query` is a std::string on purpose, as Route passes it: ParseQuery hands
// its view to Boost.URL 1.81's parse_query, which measures the text with
// strlen (boostorg/url#757, #946), so a view that is not NUL-terminated is
// read past its end.
void ExerciseQuery(const std::string& query, const BridgeState& state) {
  auto params = ParseQuery(query);
  if (!params.ok()) return;
  for (const auto* type : QueryTypes()) {
    std::unique_ptr<google::protobuf::Message> message(state.factory->GetPrototype(type)->New());
    if (ApplyQuery(*params, message.get()).ok()) {
      std::string bytes;
      Require(message->SerializeToString(&bytes), "an accepted query serializes");
      std::string json;
      (void)state.json->ToJson(*type, bytes, &json);  // may refuse (Timestamp range): no crash
    }
    if (!params->empty()) {
      std::unique_ptr<google::protobuf::Message> single(state.factory->GetPrototype(type)->New());
      (void)SetField(params->front().first, params->front().second, single.get());
    }
  }
}

}  // namespace
}  // namespace gravity::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gravity::fuzz;
  static BridgeState* const state = [] {
    BridgeOptions options;
    options.cors_origins = {"https://app.example"};
    options.forward_headers = {"X-Request-Id"};
    options.index_html = "<!doctype html><title>gravity</title>";
    return NewState(std::move(options));
  }();
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  ExerciseQuery(std::string(input), *state);
  absl::string_view rest = input;
  for (int i = 0; i < 4 && !rest.empty(); ++i) {  // pipelined requests
    size_t used = 0;
    std::optional<HttpRequest> request = ParseRequest(rest, state->options, &used);
    if (!request) break;
    rest.remove_prefix(used);
    CheckRouted(Route(*request, *state), *state);
    auto target = boost::urls::parse_origin_form(request->target());
    if (target && target->has_query()) ExerciseQuery(std::string(target->encoded_query()), *state);
    if (used == 0) break;
  }
  return 0;
}
