#include "client/reflection.h"

#include <map>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/internal/byte_buffer.h"
#include "client/internal/call_context.h"
#include "gravity/internal/reflection.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/generic/generic_stub.h"

namespace gravity::client {

namespace {

using google::protobuf::FileDescriptorProto;
using ::gravity::internal::reflection::ServerReflectionRequest;
using ::gravity::internal::reflection::ServerReflectionResponse;

// One reflection stream, request after request, on a private completion
// queue. Every operation completes by the context's deadline, so no wait here
// outlives the timeout.
class ReflectionStream {
 public:
  ReflectionStream(const std::shared_ptr<grpc::Channel>& channel, absl::Duration timeout)
      : stub_(channel) {
    context_.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    call_ = stub_.PrepareCall(&context_, kReflectionMethod, &cq_);
  }

  ~ReflectionStream() {
    if (call_ != nullptr && !finished_) {
      context_.TryCancel();
      [[maybe_unused]] absl::Status ignored = Finish();
    }
    cq_.Shutdown();
    void* tag;
    bool ok;
    while (cq_.Next(&tag, &ok)) {
    }
  }

  absl::Status Start() {
    if (call_ == nullptr) return absl::InternalError("cannot create a reflection call");
    call_->StartCall(this);
    if (!Wait()) return Finish();
    return absl::OkStatus();
  }

  absl::StatusOr<ServerReflectionResponse> Ask(const ServerReflectionRequest& request) {
    call_->Write(internal::ToByteBuffer(request), this);
    if (!Wait()) return Finish();
    grpc::ByteBuffer bytes;
    call_->Read(&bytes, this);
    if (!Wait()) return Finish();
    ServerReflectionResponse response;
    if (!internal::ParseByteBuffer(bytes, &response)) {
      return absl::InternalError("unparsable server reflection response");
    }
    if (response.has_error_response()) {
      const auto& error = response.error_response();
      return absl::Status(static_cast<absl::StatusCode>(error.error_code()),
                          absl::StrCat("server reflection: ", error.error_message()));
    }
    return response;
  }

  // Half-closes and collects the status.
  absl::Status Close() {
    call_->WritesDone(this);
    Wait();
    return Finish(/*expected=*/true);
  }

 private:
  bool Wait() {
    void* tag;
    bool ok = false;
    if (!cq_.Next(&tag, &ok)) return false;
    return ok;
  }

  // The status of a call whose last operation failed (or, when expected,
  // that was closed).
  absl::Status Finish(bool expected = false) {
    grpc::Status status;
    call_->Finish(&status, this);
    Wait();
    finished_ = true;
    if (status.ok() && !expected)
      return absl::InternalError("the server reflection stream ended early");
    return internal::ToAbslStatus(status);
  }

  grpc::GenericStub stub_;
  grpc::ClientContext context_;
  grpc::CompletionQueue cq_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call_;
  bool finished_ = false;
};

absl::Status AddFiles(const ServerReflectionResponse& response,
                      std::map<std::string, FileDescriptorProto>* files) {
  if (!response.has_file_descriptor_response()) {
    return absl::InternalError("server reflection answered without file descriptors");
  }
  for (const std::string& bytes : response.file_descriptor_response().file_descriptor_proto()) {
    FileDescriptorProto file;
    if (!file.ParseFromString(bytes)) {
      return absl::InternalError("server reflection sent an unparsable FileDescriptorProto");
    }
    std::string name = file.name();
    files->emplace(std::move(name), std::move(file));
  }
  return absl::OkStatus();
}

// Imports before importers, starting from `name`.
void AppendInOrder(const std::string& name, const std::map<std::string, FileDescriptorProto>& files,
                   std::set<std::string>* visited, google::protobuf::FileDescriptorSet* out) {
  if (!visited->insert(name).second) return;
  const FileDescriptorProto& file = files.at(name);
  for (const std::string& dependency : file.dependency()) {
    AppendInOrder(dependency, files, visited, out);
  }
  *out->add_file() = file;
}

}  // namespace

bool IsInfrastructureService(absl::string_view full_name) {
  return absl::StartsWith(full_name, "grpc.reflection.") ||
         absl::StartsWith(full_name, "grpc.health.");
}

absl::StatusOr<google::protobuf::FileDescriptorSet> FetchServiceDescriptors(
    const std::shared_ptr<grpc::Channel>& channel, absl::Duration timeout) {
  ReflectionStream stream(channel, timeout);
  absl::Status started = stream.Start();
  if (!started.ok()) return started;

  ServerReflectionRequest list;
  list.set_list_services("*");
  absl::StatusOr<ServerReflectionResponse> listed = stream.Ask(list);
  if (!listed.ok()) return listed.status();
  if (!listed->has_list_services_response()) {
    return absl::InternalError("server reflection answered list_services with something else");
  }

  std::map<std::string, FileDescriptorProto> files;
  for (const auto& service : listed->list_services_response().service()) {
    if (IsInfrastructureService(service.name())) continue;
    ServerReflectionRequest ask;
    ask.set_file_containing_symbol(service.name());
    absl::StatusOr<ServerReflectionResponse> answer = stream.Ask(ask);
    if (!answer.ok()) return answer.status();
    // Empty when the defining file went out earlier on this stream (two
    // services in one file): the server sends each file once per stream.
    absl::Status added = AddFiles(*answer, &files);
    if (!added.ok()) return added;
  }

  // Answers leave out files already sent on this stream; fetch by name any
  // import still missing (a server that sends only the asked file, too).
  // Each round adds a file or fails, so this ends.
  while (true) {
    std::string missing;
    for (const auto& [name, file] : files) {
      for (const std::string& dependency : file.dependency()) {
        if (files.count(dependency) == 0) missing = dependency;
      }
    }
    if (missing.empty()) break;
    ServerReflectionRequest ask;
    ask.set_file_by_filename(missing);
    absl::StatusOr<ServerReflectionResponse> answer = stream.Ask(ask);
    if (!answer.ok()) return answer.status();
    absl::Status added = AddFiles(*answer, &files);
    if (!added.ok()) return added;
    if (files.count(missing) == 0) {
      return absl::InternalError(absl::StrCat("server reflection did not send ", missing));
    }
  }
  [[maybe_unused]] absl::Status closed = stream.Close();

  google::protobuf::FileDescriptorSet result;
  std::set<std::string> visited;
  for (const auto& [name, file] : files) AppendInOrder(name, files, &visited, &result);
  return result;
}

}  // namespace gravity::client
