#include "server/service.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/impl/codegen/server_callback_handlers.h"
#include "grpcpp/impl/rpc_service_method.h"

namespace gravity::server {

namespace {

// Ends a call that a guard rejected or whose request did not parse. gRPC
// deletes it in OnDone.
class RejectedCall final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit RejectedCall(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

Service::Service(std::string full_name)
    : full_name_(std::move(full_name)), timers_(std::make_shared<internal::TimerQueue>()) {}

// Joins the timer thread here, on the owner's thread, so the queue is never
// destroyed by a callback's last reference on its own thread.
Service::~Service() { timers_->Stop(); }

Service& Service::Guard(gravity::server::Guard guard) {
  service_guards_.push_back(std::move(guard));
  return *this;
}

Service& Service::GuardMethod(absl::string_view method, gravity::server::Guard guard) {
  for (Method& served : methods_) {
    if (absl::EndsWith(served.full_path, absl::StrCat("/", method))) {
      served.guards.push_back(std::move(guard));
      return *this;
    }
  }
  method_guards_[std::string(method)].push_back(std::move(guard));
  return *this;
}

void Service::EndAllStreams(const grpc::Status& status) {
  std::vector<std::shared_ptr<internal::StreamCore>> open;
  {
    absl::MutexLock lock(&streams_mu_);
    ending_status_ = status;
    for (auto& [key, weak] : open_streams_) {
      if (auto core = weak.lock()) open.push_back(std::move(core));
    }
  }
  for (auto& core : open) core->EndFromServer(status);
}

bool Service::ParseRequest(const grpc::ByteBuffer& bytes, google::protobuf::Message* request) {
  grpc::ByteBuffer copy(bytes);  // Deserialize consumes its input; copies share slices.
  return grpc::SerializationTraits<google::protobuf::Message>::Deserialize(&copy, request).ok();
}

absl::StatusOr<Service::Method*> Service::AddCheckedMethod(
    absl::string_view method, bool server_streaming,
    const google::protobuf::Descriptor* request_type,
    const google::protobuf::Descriptor* response_type, decltype(Method::parse) parse) {
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(full_name_);
  if (service == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("service ", full_name_, " is not linked into this program"));
  }
  const google::protobuf::MethodDescriptor* descriptor =
      service->FindMethodByName(std::string(method));
  if (descriptor == nullptr) {
    return absl::NotFoundError(absl::StrCat(full_name_, " has no method ", method));
  }
  if (descriptor->client_streaming() || descriptor->server_streaming() != server_streaming) {
    return absl::InvalidArgumentError(absl::StrCat(descriptor->full_name(), " is not a ",
                                                   server_streaming ? "server-streaming" : "unary",
                                                   " method"));
  }
  if (descriptor->input_type() != request_type || descriptor->output_type() != response_type) {
    return absl::InvalidArgumentError(
        absl::StrCat(descriptor->full_name(), " takes ", descriptor->input_type()->full_name(),
                     server_streaming ? " and streams " : " and returns ",
                     descriptor->output_type()->full_name(), ", not ", request_type->full_name(),
                     " and ", response_type->full_name()));
  }
  const std::string full_path = absl::StrCat("/", full_name_, "/", method);
  for (const Method& served : methods_) {
    if (served.full_path == full_path) {
      return absl::AlreadyExistsError(absl::StrCat(full_path, " is already served"));
    }
  }

  Method& added = methods_.emplace_back();
  added.full_path = full_path;
  added.parse = std::move(parse);
  if (auto guards = method_guards_.find(method); guards != method_guards_.end()) {
    added.guards = std::move(guards->second);
    method_guards_.erase(guards);
  }
  AddMethod(new grpc::internal::RpcServiceMethod(added.full_path.c_str(),
                                                 server_streaming
                                                     ? grpc::internal::RpcMethod::SERVER_STREAMING
                                                     : grpc::internal::RpcMethod::NORMAL_RPC,
                                                 nullptr));
  return &added;
}

absl::Status Service::AddStreamMethod(absl::string_view method,
                                      const google::protobuf::Descriptor* request_type,
                                      const google::protobuf::Descriptor* response_type,
                                      decltype(Method::parse) parse, decltype(Method::run) run) {
  absl::StatusOr<Method*> added = AddCheckedMethod(method, /*server_streaming=*/true, request_type,
                                                   response_type, std::move(parse));
  if (!added.ok()) return added.status();
  Method& served = **added;
  served.run = std::move(run);
  // gRPC numbers methods in the order added, as methods_ does.
  MarkMethodCallback(
      static_cast<int>(methods_.size() - 1),
      new grpc::internal::CallbackServerStreamingHandler<grpc::ByteBuffer, grpc::ByteBuffer>(
          [this, &served](grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
            return HandleCall(served, context, request);
          }));
  return absl::OkStatus();
}

absl::Status Service::AddUnaryMethod(absl::string_view method,
                                     const google::protobuf::Descriptor* request_type,
                                     const google::protobuf::Descriptor* response_type,
                                     decltype(Method::parse) parse,
                                     decltype(Method::run_unary) run) {
  absl::StatusOr<Method*> added = AddCheckedMethod(method, /*server_streaming=*/false, request_type,
                                                   response_type, std::move(parse));
  if (!added.ok()) return added.status();
  Method& served = **added;
  served.run_unary = std::move(run);
  MarkMethodCallback(
      static_cast<int>(methods_.size() - 1),
      new grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer, grpc::ByteBuffer>(
          [this, &served](grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                          grpc::ByteBuffer* response) {
            return HandleUnaryCall(served, context, request, response);
          }));
  return absl::OkStatus();
}

std::unique_ptr<google::protobuf::Message> Service::Admit(const Method& method,
                                                          const CallInfo& call,
                                                          const grpc::ByteBuffer& request,
                                                          grpc::Status* refusal) {
  {
    // A call that arrives while the server shuts down gets the same status
    // as the streams that were open.
    absl::MutexLock lock(&streams_mu_);
    if (ending_status_) {
      *refusal = *ending_status_;
      return nullptr;
    }
  }
  const std::vector<gravity::server::Guard>* in_order[] = {&service_guards_, &method.guards};
  for (const std::vector<gravity::server::Guard>* guards : in_order) {
    for (const gravity::server::Guard& guard : *guards) {
      grpc::Status verdict = guard(call);
      if (!verdict.ok()) {
        *refusal = std::move(verdict);
        return nullptr;
      }
    }
  }
  std::unique_ptr<google::protobuf::Message> parsed = method.parse(request);
  if (parsed == nullptr) {
    *refusal = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            absl::StrCat("the request of ", method.full_path, " does not parse"));
  }
  return parsed;
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* Service::HandleCall(
    const Method& method, grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  CallInfo call(*context, method.full_path);
  grpc::Status refusal;
  std::unique_ptr<google::protobuf::Message> parsed = Admit(method, call, *request, &refusal);
  if (parsed == nullptr) return new RejectedCall(std::move(refusal));
  std::shared_ptr<internal::StreamCore> core =
      internal::StreamCore::Start(std::move(call), stream_options_, timers_);
  {
    absl::MutexLock lock(&streams_mu_);
    open_streams_.emplace(core.get(), core);
  }
  core->set_on_done([this, key = core.get()] {
    absl::MutexLock lock(&streams_mu_);
    open_streams_.erase(key);
  });
  grpc::Status verdict = method.run(*parsed, core);
  if (verdict.ok()) {
    core->Accept();
  } else {
    core->Reject(std::move(verdict));
  }
  return core->reactor();
}

grpc::ServerUnaryReactor* Service::HandleUnaryCall(const Method& method,
                                                   grpc::CallbackServerContext* context,
                                                   const grpc::ByteBuffer* request,
                                                   grpc::ByteBuffer* response) {
  CallInfo call(*context, method.full_path);
  grpc::Status refusal;
  std::unique_ptr<google::protobuf::Message> parsed = Admit(method, call, *request, &refusal);
  if (parsed == nullptr) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(std::move(refusal));
    return reactor;
  }
  std::shared_ptr<internal::UnaryCore> core = internal::UnaryCore::Start(std::move(call), response);
  grpc::ServerUnaryReactor* reactor = core->reactor();
  method.run_unary(*parsed, std::move(core));
  return reactor;
}

}  // namespace gravity::server
