// RouteTable: which server-streaming or unary method an HTTP path names.
//
// Every server-streaming and unary method of the descriptor pool is routed at
// its gRPC path, "/<package>.<Service>/<Method>", and also at the `get` or
// `post` template of its `google.api.http` option and its
// `additional_bindings`
// ("/v1/users/{org}": each `{field}` or `{field=*}` matches one path segment
// and fills that request field; other template forms are skipped with a
// warning). A POST body is the whole request, or with the rule's `body:
// "field"` that message field, as grpc-gateway maps it. Client-streaming
// methods are not routed.
// Immutable after construction: thread-safe.
#ifndef GRAVITY_BRIDGE_INTERNAL_ROUTES_H_
#define GRAVITY_BRIDGE_INTERNAL_ROUTES_H_

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/api/http.pb.h"
#include "google/protobuf/descriptor.h"

namespace gravity::bridge::internal {

struct RoutedMethod {
  const google::protobuf::MethodDescriptor* method = nullptr;
  bool unary = false;     // else server-streaming
  std::string grpc_path;  // "/package.Service/Method"
  // The google.api.http templates it is routed at, in order.
  std::vector<std::string> templates;
  // The response field marked with (gravity.v1.event_id), or null.
  const google::protobuf::FieldDescriptor* event_id = nullptr;
};

struct RouteMatch {
  const RoutedMethod* method = nullptr;
  // Request fields taken from path template variables, decoded.
  std::vector<std::pair<std::string, std::string>> path_fields;
  // The request field a POST body fills; empty: the whole request.
  std::string body_field;
};

class RouteTable {
 public:
  // Routes every server-streaming and unary method of `pool`'s services named in
  // `services` (full names). `warnings` gets one line per skipped template.
  RouteTable(const google::protobuf::DescriptorPool& pool, const std::vector<std::string>& services,
             std::vector<std::string>* warnings);

  // `path` is the request path, still percent-encoded.
  std::optional<RouteMatch> Match(absl::string_view path) const;

  const std::vector<RoutedMethod>& methods() const { return methods_; }

 private:
  struct Template {
    // A literal segment, or a field path when `is_variable`.
    struct Segment {
      std::string text;
      bool is_variable = false;
    };
    std::vector<Segment> segments;
    size_t method_index = 0;
    std::string body_field;  // the rule's `body`, "" for "*" or none
  };

  // Adds `rule`'s template for methods_[index], or a warning why not.
  void AddTemplate(const google::api::HttpRule& rule, size_t index,
                   std::vector<std::string>* warnings);

  std::vector<RoutedMethod> methods_;
  std::map<std::string, size_t, std::less<>> by_grpc_path_;
  std::vector<Template> templates_;
};

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_ROUTES_H_
