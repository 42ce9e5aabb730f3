#include "bridge/internal/routes.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "boost/url/decode_view.hpp"
#include "google/api/annotations.pb.h"
#include "gravity/v1/options.pb.h"

namespace gravity::bridge::internal {

namespace {

std::optional<std::string> Decode(absl::string_view segment) {
  auto checked =
      boost::urls::make_pct_string_view(boost::core::string_view(segment.data(), segment.size()));
  if (!checked) return std::nullopt;
  return checked->decode();
}

const google::protobuf::FieldDescriptor* EventIdField(const google::protobuf::Descriptor* type) {
  for (int i = 0; i < type->field_count(); ++i) {
    if (type->field(i)->options().GetExtension(gravity::v1::event_id)) return type->field(i);
  }
  return nullptr;
}

}  // namespace

RouteTable::RouteTable(const google::protobuf::DescriptorPool& pool,
                       const std::vector<std::string>& services,
                       std::vector<std::string>* warnings) {
  for (const std::string& name : services) {
    const google::protobuf::ServiceDescriptor* service = pool.FindServiceByName(name);
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      const google::protobuf::MethodDescriptor* method = service->method(i);
      if (method->client_streaming()) continue;
      RoutedMethod routed;
      routed.method = method;
      routed.unary = !method->server_streaming();
      routed.grpc_path = absl::StrCat("/", service->full_name(), "/", method->name());
      routed.event_id = EventIdField(method->output_type());
      const size_t index = methods_.size();
      by_grpc_path_.emplace(routed.grpc_path, index);
      methods_.push_back(routed);

      const google::api::HttpRule& rule = method->options().GetExtension(google::api::http);
      AddTemplate(rule, index, warnings);
      for (const google::api::HttpRule& binding : rule.additional_bindings()) {
        AddTemplate(binding, index, warnings);
      }
    }
  }
}

void RouteTable::AddTemplate(const google::api::HttpRule& rule, size_t index,
                             std::vector<std::string>* warnings) {
  RoutedMethod& routed = methods_[index];
  const std::string& pattern = rule.get().empty() ? rule.post() : rule.get();
  if (pattern.empty()) return;
  Template route;
  route.method_index = index;
  bool usable = absl::StartsWith(pattern, "/");
  if (rule.body() != "*" && !rule.body().empty()) {
    // Only a message field can take a JSON object body.
    const google::protobuf::FieldDescriptor* body =
        routed.method->input_type()->FindFieldByName(rule.body());
    usable = usable && body != nullptr && !body->is_repeated() &&
             body->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE;
    route.body_field = rule.body();
  }
  for (absl::string_view part : absl::StrSplit(absl::string_view(pattern).substr(1), '/')) {
    if (absl::StartsWith(part, "{") && absl::EndsWith(part, "}")) {
      absl::string_view field = part.substr(1, part.size() - 2);
      if (absl::EndsWith(field, "=*")) field.remove_suffix(2);
      usable = usable && !field.empty() && field.find_first_of("={}*") == absl::string_view::npos;
      route.segments.push_back({std::string(field), true});
    } else {
      usable = usable && part.find_first_of("{}*:") == absl::string_view::npos;
      route.segments.push_back({std::string(part), false});
    }
  }
  if (!usable) {
    warnings->push_back(absl::StrCat(
        "skipped the google.api.http template \"", pattern, "\" of ", routed.method->full_name(),
        ": only literal and {field} segments, and a body of \"*\" or one message field, are "
        "supported"));
    return;
  }
  routed.templates.push_back(pattern);
  templates_.push_back(std::move(route));
}

std::optional<RouteMatch> RouteTable::Match(absl::string_view path) const {
  if (auto exact = by_grpc_path_.find(path); exact != by_grpc_path_.end()) {
    return RouteMatch{&methods_[exact->second], {}, ""};
  }
  if (!absl::StartsWith(path, "/")) return std::nullopt;
  std::vector<absl::string_view> parts = absl::StrSplit(path.substr(1), '/');
  for (const Template& route : templates_) {
    if (route.segments.size() != parts.size()) continue;
    RouteMatch match{&methods_[route.method_index], {}, route.body_field};
    bool matched = true;
    for (size_t i = 0; i < parts.size() && matched; ++i) {
      std::optional<std::string> decoded = Decode(parts[i]);
      const auto& segment = route.segments[i];
      if (!decoded) {
        matched = false;
      } else if (segment.is_variable) {
        matched = !decoded->empty();
        match.path_fields.emplace_back(segment.text, std::move(*decoded));
      } else {
        matched = *decoded == segment.text;
      }
    }
    if (matched) return match;
  }
  return std::nullopt;
}

}  // namespace gravity::bridge::internal
