// RouteTable (bridge/internal/routes.h) on a descriptor pool built here, from
// a FileDescriptorProto made in code: which paths name which server-streaming
// method, which template variables fill which request fields, and which
// templates are skipped with a warning.
#include "bridge/internal/routes.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "google/api/annotations.pb.h"
#include "google/api/http.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "gtest/gtest.h"

namespace gravity::bridge::internal {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

// Copies `name` from the generated pool into `pool`.
void AddGeneratedFile(const std::string& name, google::protobuf::DescriptorPool* pool) {
  const google::protobuf::FileDescriptor* file =
      google::protobuf::DescriptorPool::generated_pool()->FindFileByName(name);
  ASSERT_NE(file, nullptr) << name;
  google::protobuf::FileDescriptorProto proto;
  file->CopyTo(&proto);
  ASSERT_NE(pool->BuildFile(proto), nullptr) << name;
}

class RoutesTest : public ::testing::Test {
 protected:
  RoutesTest() {
    google::api::HttpRule::descriptor();  // links google/api/http.proto
    AddGeneratedFile("google/protobuf/descriptor.proto", &pool_);
    AddGeneratedFile("google/api/http.proto", &pool_);
    AddGeneratedFile("google/api/annotations.proto", &pool_);

    google::protobuf::FileDescriptorProto file;
    file.set_name("t/v1/t.proto");
    file.set_package("t.v1");
    file.set_syntax("proto3");
    file.add_dependency("google/api/annotations.proto");
    auto* user = file.add_message_type();
    user->set_name("User");
    AddField(user, "id", 1, google::protobuf::FieldDescriptorProto::TYPE_STRING);
    auto* request = file.add_message_type();
    request->set_name("Request");
    AddField(request, "org", 1, google::protobuf::FieldDescriptorProto::TYPE_STRING);
    AddField(request, "user", 2, google::protobuf::FieldDescriptorProto::TYPE_MESSAGE)
        ->set_type_name(".t.v1.User");
    AddField(request, "name", 3, google::protobuf::FieldDescriptorProto::TYPE_STRING);
    auto* reply = file.add_message_type();
    reply->set_name("Reply");
    AddField(reply, "text", 1, google::protobuf::FieldDescriptorProto::TYPE_STRING);

    auto* service = file.add_service();
    service->set_name("Svc");
    AddMethod(service, "Watch", "/v1/orgs/{org}/users/{user.id=*}");
    AddMethod(service, "ByOrg", "/v1/orgs/{org}");
    AddMethod(service, "Status", "/v1/status");
    AddMethod(service, "Deep", "/v1/files/{name=**}");
    AddMethod(service, "Prefixed", "/v1/things/{name=foo/*}");
    AddMethod(service, "Unary", "/v1/unary/{org}", /*server_streaming=*/false);
    AddMethod(service, "Chat", "", /*server_streaming=*/true, /*client_streaming=*/true);
    // Overlapping templates: both match "/v1/items/special".
    AddMethod(service, "AnyItem", "/v1/items/{name}");
    AddMethod(service, "SpecialItem", "/v1/items/special");
    AddMethod(service, "Plain", "");
    AddPostMethod(service, "Create", "/v1/teams/{org}/users", "user");
    AddPostMethod(service, "Rename", "/v1/rename", "*");
    // A body can only be a message field.
    AddPostMethod(service, "BadBody", "/v1/bad", "org");
    // A second binding of the same method.
    AddPostMethod(service, "Bound", "/v1/bound", "*");
    service->mutable_method(service->method_size() - 1)
        ->mutable_options()
        ->MutableExtension(google::api::http)
        ->add_additional_bindings()
        ->set_get("/v1/bound/{name}");

    EXPECT_NE(pool_.BuildFile(file), nullptr);
    routes_.emplace(pool_, std::vector<std::string>{"t.v1.Svc", "t.v1.Missing"}, &warnings_);
  }

  static google::protobuf::FieldDescriptorProto* AddField(
      google::protobuf::DescriptorProto* message, const std::string& name, int number,
      google::protobuf::FieldDescriptorProto::Type type) {
    auto* field = message->add_field();
    field->set_name(name);
    field->set_number(number);
    field->set_type(type);
    field->set_label(google::protobuf::FieldDescriptorProto::LABEL_OPTIONAL);
    return field;
  }

  static void AddMethod(google::protobuf::ServiceDescriptorProto* service, const std::string& name,
                        const std::string& get, bool server_streaming = true,
                        bool client_streaming = false) {
    auto* method = service->add_method();
    method->set_name(name);
    method->set_input_type(".t.v1.Request");
    method->set_output_type(".t.v1.Reply");
    method->set_server_streaming(server_streaming);
    method->set_client_streaming(client_streaming);
    if (!get.empty()) method->mutable_options()->MutableExtension(google::api::http)->set_get(get);
  }

  // A unary method with a `post:` template and `body:`.
  static void AddPostMethod(google::protobuf::ServiceDescriptorProto* service,
                            const std::string& name, const std::string& post,
                            const std::string& body) {
    auto* method = service->add_method();
    method->set_name(name);
    method->set_input_type(".t.v1.Request");
    method->set_output_type(".t.v1.Reply");
    auto* rule = method->mutable_options()->MutableExtension(google::api::http);
    rule->set_post(post);
    rule->set_body(body);
  }

  // The name of the method `path` routes to, and its path fields; "" when
  // nothing matches.
  std::pair<std::string, Fields> Routed(const std::string& path) {
    std::optional<RouteMatch> match = routes_->Match(path);
    if (!match) return {"", {}};
    return {std::string(match->method->method->name()), match->path_fields};
  }

  google::protobuf::DescriptorPool pool_;
  std::vector<std::string> warnings_;
  std::optional<RouteTable> routes_;
};

using Result = std::pair<std::string, Fields>;

TEST_F(RoutesTest, EveryServerStreamingAndUnaryMethodIsRoutedAtItsGrpcPath) {
  std::vector<std::string> paths;
  for (const RoutedMethod& method : routes_->methods()) paths.push_back(method.grpc_path);
  const std::vector<std::string> expected = {
      "/t.v1.Svc/Watch",    "/t.v1.Svc/ByOrg",  "/t.v1.Svc/Status",  "/t.v1.Svc/Deep",
      "/t.v1.Svc/Prefixed", "/t.v1.Svc/Unary",  "/t.v1.Svc/AnyItem", "/t.v1.Svc/SpecialItem",
      "/t.v1.Svc/Plain",    "/t.v1.Svc/Create", "/t.v1.Svc/Rename",  "/t.v1.Svc/BadBody",
      "/t.v1.Svc/Bound"};
  EXPECT_EQ(paths, expected);
  std::optional<RouteMatch> match = routes_->Match("/t.v1.Svc/Watch");
  ASSERT_TRUE(match.has_value());
  EXPECT_EQ(match->method->grpc_path, "/t.v1.Svc/Watch");
  EXPECT_EQ(match->method->method->full_name(), "t.v1.Svc.Watch");
  EXPECT_EQ(match->method->event_id, nullptr);
  EXPECT_TRUE(match->path_fields.empty());
  EXPECT_EQ(Routed("/t.v1.Svc/Plain"), Result("Plain", {}));
  // The gRPC path is exact: no trailing slash, no other case, no extra segment.
  EXPECT_EQ(Routed("/t.v1.Svc/Watch/"), Result());
  EXPECT_EQ(Routed("/t.v1.svc/Watch"), Result());
  EXPECT_EQ(Routed("/t.v1.Svc/Watch/x"), Result());
  EXPECT_EQ(Routed("t.v1.Svc/Watch"), Result());
}

TEST_F(RoutesTest, UnaryMethodsAreRoutedAndClientStreamingOnesAreNot) {
  EXPECT_EQ(Routed("/t.v1.Svc/Unary"), Result("Unary", {}));
  EXPECT_EQ(Routed("/v1/unary/acme"), Result("Unary", {{"org", "acme"}}));
  EXPECT_TRUE(routes_->Match("/t.v1.Svc/Unary")->method->unary);
  EXPECT_FALSE(routes_->Match("/t.v1.Svc/Watch")->method->unary);
  EXPECT_EQ(Routed("/t.v1.Svc/Chat"), Result());
}

TEST_F(RoutesTest, APostTemplatesBodyNamesTheFieldItFills) {
  std::optional<RouteMatch> create = routes_->Match("/v1/teams/acme/users");
  ASSERT_TRUE(create.has_value());
  EXPECT_EQ(create->method->method->name(), "Create");
  EXPECT_EQ(create->body_field, "user");
  EXPECT_EQ(create->path_fields, (Fields{{"org", "acme"}}));
  // "*": the body is the whole request, as on the gRPC path.
  EXPECT_EQ(routes_->Match("/v1/rename")->body_field, "");
  EXPECT_EQ(routes_->Match("/t.v1.Svc/Create")->body_field, "");
  // A scalar body field is not supported: only the gRPC path routes it.
  EXPECT_EQ(Routed("/v1/bad"), Result());
  EXPECT_EQ(Routed("/t.v1.Svc/BadBody"), Result("BadBody", {}));
}

TEST_F(RoutesTest, AdditionalBindingsRouteTheSameMethod) {
  EXPECT_EQ(Routed("/v1/bound"), Result("Bound", {}));
  EXPECT_EQ(Routed("/v1/bound/x%20y"), Result("Bound", {{"name", "x y"}}));
  const std::vector<std::string> templates = {"/v1/bound", "/v1/bound/{name}"};
  EXPECT_EQ(routes_->Match("/v1/bound")->method->templates, templates);
}

TEST_F(RoutesTest, OneVariableFillsItsField) {
  EXPECT_EQ(Routed("/v1/orgs/acme"), Result("ByOrg", {{"org", "acme"}}));
}

TEST_F(RoutesTest, TwoVariablesFillTheirFieldsIncludingANestedOne) {
  EXPECT_EQ(Routed("/v1/orgs/acme/users/42"),
            Result("Watch", {{"org", "acme"}, {"user.id", "42"}}));
}

TEST_F(RoutesTest, VariablesArePercentDecodedAndAnEncodedSlashStaysInItsSegment) {
  EXPECT_EQ(Routed("/v1/orgs/a%2Fb/users/u%20%C3%A9"),
            Result("Watch", {{"org", "a/b"}, {"user.id", "u \xC3\xA9"}}));
  EXPECT_EQ(Routed("/v1/orgs/a%2fb"), Result("ByOrg", {{"org", "a/b"}}));
  // '+' in a path is a plus, not a space.
  EXPECT_EQ(Routed("/v1/orgs/a+b"), Result("ByOrg", {{"org", "a+b"}}));
  // A malformed escape matches nothing.
  EXPECT_EQ(Routed("/v1/orgs/a%zz"), Result());
  EXPECT_EQ(Routed("/v1/orgs/a%2"), Result());
}

TEST_F(RoutesTest, AnEmptyVariableSegmentMatchesNothing) {
  EXPECT_EQ(Routed("/v1/orgs/"), Result());
  EXPECT_EQ(Routed("/v1/orgs//users/42"), Result());
  EXPECT_EQ(Routed("/v1/orgs/acme/users/"), Result());
}

TEST_F(RoutesTest, ALiteralOnlyTemplateMatchesExactly) {
  EXPECT_EQ(Routed("/v1/status"), Result("Status", {}));
  // Literals are compared decoded.
  EXPECT_EQ(Routed("/v1/st%61tus"), Result("Status", {}));
  EXPECT_EQ(Routed("/v1/Status"), Result());
  EXPECT_EQ(Routed("/v1/status/"), Result());
  EXPECT_EQ(Routed("/v1/status/x"), Result());
  EXPECT_EQ(Routed("/v1"), Result());
  EXPECT_EQ(Routed("v1/status"), Result());
}

TEST_F(RoutesTest, TrailingSlashesAndExtraOrMissingSegmentsDoNotMatch) {
  EXPECT_EQ(Routed("/v1/orgs/acme/"), Result());
  EXPECT_EQ(Routed("/v1/orgs/acme/users"), Result());
  EXPECT_EQ(Routed("/v1/orgs/acme/users/42/"), Result());
  EXPECT_EQ(Routed("/v1/orgs/acme/users/42/x"), Result());
  EXPECT_EQ(Routed("/v1/orgs/acme/members/42"), Result());
  EXPECT_EQ(Routed("/v2/orgs/acme"), Result());
  EXPECT_EQ(Routed("//v1/orgs/acme"), Result());
}

TEST_F(RoutesTest, MultiSegmentTemplatesAreSkippedWithAWarning) {
  ASSERT_EQ(warnings_.size(), 3u) << ::testing::PrintToString(warnings_);
  EXPECT_TRUE(absl::StrContains(warnings_[0], "\"/v1/files/{name=**}\"")) << warnings_[0];
  EXPECT_TRUE(absl::StrContains(warnings_[0], "t.v1.Svc.Deep")) << warnings_[0];
  EXPECT_TRUE(absl::StrContains(warnings_[1], "\"/v1/things/{name=foo/*}\"")) << warnings_[1];
  EXPECT_TRUE(absl::StrContains(warnings_[1], "t.v1.Svc.Prefixed")) << warnings_[1];
  EXPECT_TRUE(absl::StrContains(warnings_[2], "\"/v1/bad\" of t.v1.Svc.BadBody")) << warnings_[2];
  EXPECT_EQ(Routed("/v1/files/a"), Result());
  EXPECT_EQ(Routed("/v1/files/a/b"), Result());
  EXPECT_EQ(Routed("/v1/things/foo/a"), Result());
  EXPECT_EQ(Routed("/v1/things/a"), Result());
  // The method itself is still routed at its gRPC path.
  EXPECT_EQ(Routed("/t.v1.Svc/Deep"), Result("Deep", {}));
  EXPECT_EQ(Routed("/t.v1.Svc/Prefixed"), Result("Prefixed", {}));
}

// As implemented: templates are tried in the order their methods are declared
// (services in the order given), and the first that matches wins — not the
// most specific. AnyItem ("/v1/items/{name}") is declared before SpecialItem
// ("/v1/items/special"), so SpecialItem's template is never reached.
TEST_F(RoutesTest, OfTwoOverlappingTemplatesTheFirstDeclaredWins) {
  EXPECT_EQ(Routed("/v1/items/special"), Result("AnyItem", {{"name", "special"}}));
  EXPECT_EQ(Routed("/v1/items/other"), Result("AnyItem", {{"name", "other"}}));
  EXPECT_EQ(Routed("/t.v1.Svc/SpecialItem"), Result("SpecialItem", {}));
}

}  // namespace
}  // namespace gravity::bridge::internal
