// gravity-cli: the grpcurl of server streams. Discovers the server's services
// through gRPC server reflection, so it works with any server that has it
// (gravity servers always do).
//
//   gravity-cli --target=127.0.0.1:50051 list
//   gravity-cli --target=127.0.0.1:50051 list streaming.v1.Streaming
//   gravity-cli --target=127.0.0.1:50051 describe streaming.v1.Streaming/Ping
//   gravity-cli --target=127.0.0.1:50051 streaming.v1.Streaming/Ping '{"to":"bob","count":3}'
//   gravity-cli --target=127.0.0.1:50051 --header='authorization: Bearer secret'
//       --deadline=30s --last_event_id=41 streaming.v1.Streaming/StreamUsers
//   (one command line)
//
// A call prints one line of proto3 JSON per message on stdout, as it arrives,
// then always a last line with the final status, google.rpc.Status JSON as in
// the SSE bridge's `end` event: {"code":0,"message":""}. A call rejected
// before any message prints only that line.
//
// Exit code: 0 when the call ended with OK (and for list / describe);
// 1 when it ended with another status; 2 for a usage error (bad flags, an
// unknown service or method, a request that is not valid JSON for the
// request type); 3 when the services cannot be discovered (no server, no
// reflection). Errors are also written to stderr.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "client/call_options.h"
#include "client/client.h"
#include "client/internal/byte_buffer.h"
#include "client/reflection.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor_database.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/util/json_util.h"
#include "gravity_version.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

ABSL_FLAG(std::string, target, "", "the server, host:port (any gRPC target, e.g. dns:///host:443)");
ABSL_FLAG(std::vector<std::string>, header, {},
          "call metadata \"key: value\"; repeat the flag for several headers");
ABSL_FLAG(absl::Duration, deadline, absl::InfiniteDuration(),
          "deadline of the call, e.g. 5s or 1m30s (default: none)");
ABSL_FLAG(std::string, last_event_id, "",
          "resume after this event: sent as metadata last-event-id");
ABSL_FLAG(absl::Duration, reflection_timeout, absl::Seconds(10),
          "how long service discovery through reflection may take");
ABSL_FLAG(bool, tls, false, "use TLS with the system's root certificates");
ABSL_FLAG(std::string, tls_ca, "", "use TLS, trusting the PEM root certificates in this file");

namespace {

constexpr int kExitOk = 0;
constexpr int kExitCallFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitDiscovery = 3;

constexpr char kUsage[] = R"(the grpcurl of server streams.

  gravity-cli --target=HOST:PORT list [SERVICE]
  gravity-cli --target=HOST:PORT describe SYMBOL
  gravity-cli --target=HOST:PORT [--header='k: v']... [--deadline=5s] [--last_event_id=ID]
      PACKAGE.SERVICE/METHOD ['{"request":"json"}']

Prints one JSON line per message, then the final status as a last line
{"code":0,"message":""}. Exit code 0 on OK, 1 on another status, 2 on a usage
error, 3 when the services cannot be discovered.)";

int Fail(int code, absl::string_view message) {
  std::cerr << "gravity-cli: " << message << "\n";
  return code;
}

// absl flags keep only the last value of a repeated flag, and header values
// may contain commas: take every --header out of argv first.
std::vector<std::string> TakeHeaders(std::vector<char*>* args) {
  std::vector<std::string> headers;
  std::vector<char*> rest;
  for (size_t i = 0; i < args->size(); ++i) {
    absl::string_view arg = (*args)[i];
    if (i > 0 && (arg == "--header" || arg == "-header") && i + 1 < args->size()) {
      headers.emplace_back((*args)[++i]);
    } else if (i > 0 &&
               (absl::ConsumePrefix(&arg, "--header=") || absl::ConsumePrefix(&arg, "-header="))) {
      headers.emplace_back(arg);
    } else {
      rest.push_back((*args)[i]);
    }
  }
  *args = std::move(rest);
  return headers;
}

std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string StatusLine(const absl::Status& status) {
  return absl::StrCat("{\"code\":", static_cast<int>(status.code()),
                      ",\"message\":", JsonString(status.message()), "}");
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> Credentials() {
  const std::string ca_file = absl::GetFlag(FLAGS_tls_ca);
  if (ca_file.empty() && !absl::GetFlag(FLAGS_tls)) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  if (!ca_file.empty()) {
    std::ifstream in(ca_file, std::ios::binary);
    if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read --tls_ca ", ca_file));
    std::ostringstream pem;
    pem << in.rdbuf();
    ssl.pem_root_certs = pem.str();
  }
  return grpc::SslCredentials(ssl);
}

// The server's services and their types, from reflection.
class Schema {
 public:
  absl::Status Load(const std::shared_ptr<grpc::Channel>& channel) {
    absl::StatusOr<google::protobuf::FileDescriptorSet> files =
        gravity::client::FetchServiceDescriptors(channel, absl::GetFlag(FLAGS_reflection_timeout));
    if (!files.ok()) return files.status();
    for (const auto& file : files->file()) {
      if (!database_.Add(file)) {
        return absl::InternalError(absl::StrCat("cannot use the descriptor of ", file.name()));
      }
    }
    for (const auto& file : files->file()) {
      const google::protobuf::FileDescriptor* built = pool_.FindFileByName(file.name());
      if (built == nullptr) {
        return absl::InternalError(absl::StrCat("cannot build the descriptor of ", file.name()));
      }
      for (int i = 0; i < built->service_count(); ++i) {
        if (!gravity::client::IsInfrastructureService(built->service(i)->full_name())) {
          services_.insert(built->service(i)->full_name());
        }
      }
    }
    return absl::OkStatus();
  }

  const std::set<std::string>& services() const { return services_; }
  const google::protobuf::DescriptorPool& pool() const { return pool_; }

  // "pkg.Service/Method", "/pkg.Service/Method" or "pkg.Service.Method".
  const google::protobuf::MethodDescriptor* FindMethod(absl::string_view name) const {
    absl::ConsumePrefix(&name, "/");
    std::string dotted(name);
    if (size_t slash = dotted.rfind('/'); slash != std::string::npos) dotted[slash] = '.';
    return pool_.FindMethodByName(dotted);
  }

  google::protobuf::Message* New(const google::protobuf::Descriptor* type) {
    return factory_.GetPrototype(type)->New();
  }

 private:
  google::protobuf::SimpleDescriptorDatabase database_;
  google::protobuf::DescriptorPool pool_{&database_};
  google::protobuf::DynamicMessageFactory factory_{&pool_};
  std::set<std::string> services_;
};

int List(const Schema& schema, const std::vector<char*>& args) {
  if (args.size() == 2) {
    for (const std::string& service : schema.services()) std::cout << service << "\n";
    return kExitOk;
  }
  if (args.size() != 3) return Fail(kExitUsage, "usage: list [SERVICE]");
  const auto* service = schema.pool().FindServiceByName(args[2]);
  if (service == nullptr || schema.services().count(service->full_name()) == 0) {
    return Fail(kExitUsage, absl::StrCat("unknown service ", args[2]));
  }
  for (int i = 0; i < service->method_count(); ++i) {
    std::cout << service->full_name() << "/" << service->method(i)->name() << "\n";
  }
  return kExitOk;
}

int Describe(const Schema& schema, const std::vector<char*>& args) {
  if (args.size() != 3) return Fail(kExitUsage, "usage: describe SYMBOL");
  absl::string_view symbol = args[2];
  absl::ConsumePrefix(&symbol, ".");
  const auto& pool = schema.pool();
  if (const auto* service = pool.FindServiceByName(std::string(symbol))) {
    std::cout << service->DebugString();
  } else if (const auto* method = schema.FindMethod(symbol)) {
    std::cout << method->DebugString() << "\n"
              << method->input_type()->DebugString() << "\n"
              << method->output_type()->DebugString();
  } else if (const auto* message = pool.FindMessageTypeByName(std::string(symbol))) {
    std::cout << message->DebugString();
  } else if (const auto* enum_type = pool.FindEnumTypeByName(std::string(symbol))) {
    std::cout << enum_type->DebugString();
  } else {
    return Fail(kExitUsage, absl::StrCat("unknown symbol ", symbol));
  }
  return kExitOk;
}

int Call(Schema& schema, const std::shared_ptr<grpc::Channel>& channel,
         const std::vector<char*>& args, const std::vector<std::string>& headers) {
  if (args.size() > 3) return Fail(kExitUsage, "usage: METHOD [REQUEST_JSON]");
  const google::protobuf::MethodDescriptor* method = schema.FindMethod(args[1]);
  if (method == nullptr) return Fail(kExitUsage, absl::StrCat("unknown method ", args[1]));
  if (method->client_streaming()) {
    return Fail(kExitUsage, absl::StrCat(method->full_name(), " is client-streaming"));
  }

  std::unique_ptr<google::protobuf::Message> request(schema.New(method->input_type()));
  const std::string json = args.size() == 3 ? args[2] : "{}";
  if (auto parsed = google::protobuf::util::JsonStringToMessage(json, request.get());
      !parsed.ok()) {
    return Fail(kExitUsage,
                absl::StrCat("the request is not a valid ", method->input_type()->full_name(), ": ",
                             parsed.message().as_string()));
  }

  gravity::client::CallOptions options;
  options.timeout = absl::GetFlag(FLAGS_deadline);
  options.last_event_id = absl::GetFlag(FLAGS_last_event_id);
  for (const std::string& header : headers) {
    std::pair<std::string, std::string> kv = absl::StrSplit(header, absl::MaxSplits(':', 1));
    absl::string_view key = absl::StripAsciiWhitespace(kv.first);
    if (key.empty() || header.find(':') == std::string::npos) {
      return Fail(kExitUsage, absl::StrCat("--header wants \"key: value\", got \"", header, "\""));
    }
    options.WithMetadata(std::string(key), std::string(absl::StripAsciiWhitespace(kv.second)));
  }

  const std::string path = absl::StrCat("/", method->service()->full_name(), "/", method->name());
  auto stream = gravity::client::OpenGeneric(
      channel, path, gravity::client::internal::ToByteBuffer(*request), options);
  absl::Status status = stream.ok() ? absl::OkStatus() : stream.status();
  if (stream.ok()) {
    std::unique_ptr<google::protobuf::Message> message(schema.New(method->output_type()));
    google::protobuf::util::JsonPrintOptions print;
    print.preserve_proto_field_names = false;
    for (const grpc::ByteBuffer& bytes : *stream) {
      std::string line;
      if (!gravity::client::internal::ParseByteBuffer(bytes, message.get()) ||
          !google::protobuf::util::MessageToJsonString(*message, &line, print).ok()) {
        stream->Cancel();
        status = absl::InternalError(
            absl::StrCat("a message is not a valid ", method->output_type()->full_name()));
        break;
      }
      std::cout << line << std::endl;  // flushed: the stream is live
    }
    if (status.ok()) status = stream->status();
  }
  std::cout << StatusLine(status) << std::endl;
  if (!status.ok()) {
    std::cerr << "gravity-cli: " << method->full_name() << " ended with " << status << "\n";
    return kExitCallFailed;
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  // absl handles --version itself: it prints this and exits 0.
  absl::FlagsUsageConfig usage_config;
  usage_config.version_string = [] { return std::string("gravity-cli " GRAVITY_VERSION "\n"); };
  absl::SetFlagsUsageConfig(usage_config);
  std::vector<char*> all(argv, argv + argc);
  std::vector<std::string> headers = TakeHeaders(&all);
  int rest_argc = static_cast<int>(all.size());
  std::vector<char*> args = absl::ParseCommandLine(rest_argc, all.data());

  const std::string target = absl::GetFlag(FLAGS_target);
  if (target.empty()) return Fail(kExitUsage, "--target is required (see --help)");
  if (args.size() < 2) return Fail(kExitUsage, "a command or a method is required (see --help)");
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = Credentials();
  if (!credentials.ok()) return Fail(kExitUsage, credentials.status().message());
  std::shared_ptr<grpc::Channel> channel = grpc::CreateChannel(target, *credentials);

  Schema schema;
  if (absl::Status loaded = schema.Load(channel); !loaded.ok()) {
    return Fail(kExitDiscovery,
                absl::StrCat("cannot discover the services of ", target, ": ", loaded.ToString()));
  }
  const absl::string_view command = args[1];
  if (command == "list") return List(schema, args);
  if (command == "describe") return Describe(schema, args);
  return Call(schema, channel, args, headers);
}
