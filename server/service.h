// Service: serves the server-streaming and unary methods of one protobuf
// service, with guards on the whole service or on single methods.
//
//   gravity::server::Service service("streaming.v1.Streaming");
//   service.GuardMethod("StreamUsers", RequireBearerToken(token));
//   absl::Status added = service.AddStream<PingRequest, PingReply>(
//       "Ping", [](const PingRequest& request, Stream<PingReply> stream) { ... });
//   added = service.AddUnary<EchoRequest, EchoReply>(
//       "Echo", [](const EchoRequest& request, UnaryReply<EchoReply> reply) { ... });
//
// The service is checked against the generated descriptors (names, streaming
// kind, message types), so a typo is an error at start-up, not a silent 404.
// Register it with gravity::server::Server (or any grpc::ServerBuilder).
//
// On each call: the service's guards run in the order added, then the
// method's; the first rejection ends the call with its status and no message.
// Otherwise the handler runs on a gRPC thread and must not block (hand slow
// work to timers or other threads and keep the Stream). When it accepts the
// call, the initial metadata goes out at once, before any message.
//
// Register a Service with one server only; Server::Shutdown ends its streams
// with UNAVAILABLE and refuses calls from then on (a unary call still waiting
// for its handler's reply is cancelled by gRPC's shutdown deadline).
//
// Thread-safety: configure (Guard, GuardMethod, AddStream, set_stream_options)
// before the server starts; afterwards the service is read-only and serves
// calls concurrently.
#ifndef GRAVITY_SERVER_SERVICE_H_
#define GRAVITY_SERVER_SERVICE_H_

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "grpcpp/impl/service_type.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"
#include "server/guard.h"
#include "server/internal/stream_core.h"
#include "server/internal/timer_queue.h"
#include "server/internal/unary_core.h"
#include "server/stream.h"
#include "server/stream_options.h"
#include "server/unary.h"

namespace gravity::server {

class Service : public grpc::Service {
 public:
  // `full_name` is the protobuf service name, e.g. "streaming.v1.Streaming";
  // its generated code must be linked into the program.
  explicit Service(std::string full_name);
  ~Service() override;

  const std::string& full_name() const { return full_name_; }

  // A guard for every method of the service.
  Service& Guard(gravity::server::Guard guard);
  // A guard for one method, e.g. "StreamUsers"; runs after the service's.
  Service& GuardMethod(absl::string_view method, gravity::server::Guard guard);

  void set_stream_options(StreamOptions options) { stream_options_ = options; }

  // Ends every open stream with `status` after what is queued has gone out,
  // firing their cancel hooks, and refuses later calls with it. Server::Shutdown
  // calls it with UNAVAILABLE, so clients (and browsers behind the bridge)
  // reconnect and resume instead of taking the shutdown for the stream's end.
  // Thread-safe.
  void EndAllStreams(const grpc::Status& status);

  // Serves `method` (its short name, e.g. "Ping") with `handler`, a callable
  // `(const Request&, Stream<Response>)` returning void or grpc::Status. A
  // non-OK status rejects the call like a guard (e.g. INVALID_ARGUMENT for a
  // bad request): nothing sent so far goes out and the client gets only the
  // status. Returning normally accepts it; the handler has usually handed
  // the Stream to timers or producers by then.
  template <typename Request, typename Response, typename Handler>
  absl::Status AddStream(absl::string_view method, Handler handler) {
    auto run = [handler = std::move(handler)](
                   const google::protobuf::Message& request,
                   std::shared_ptr<internal::StreamCore> core) -> grpc::Status {
      const auto& typed = static_cast<const Request&>(request);
      if constexpr (std::is_void_v<decltype(handler(typed, Stream<Response>(core)))>) {
        handler(typed, Stream<Response>(std::move(core)));
        return grpc::Status::OK;
      } else {
        return handler(typed, Stream<Response>(std::move(core)));
      }
    };
    return AddStreamMethod(method, Request::descriptor(), Response::descriptor(),
                           MakeParser<Request>(), std::move(run));
  }

  // Serves the unary `method` with `handler`, either
  //   `(const Request&, UnaryReply<Response>)` returning void: reply through
  //   the handle, now or later from any thread (see server/unary.h), or
  //   `(const Request&, const CallInfo&)` returning absl::StatusOr<Response>.
  // Guards run first, as for streams.
  template <typename Request, typename Response, typename Handler>
  absl::Status AddUnary(absl::string_view method, Handler handler) {
    auto run = [handler = std::move(handler)](const google::protobuf::Message& request,
                                              std::shared_ptr<internal::UnaryCore> core) {
      const auto& typed = static_cast<const Request&>(request);
      if constexpr (std::is_invocable_v<const Handler&, const Request&, UnaryReply<Response>>) {
        handler(typed, UnaryReply<Response>(std::move(core)));
      } else {
        absl::StatusOr<Response> reply = handler(typed, core->call());
        if (reply.ok()) {
          core->Finish(*reply);
        } else {
          UnaryReply<Response>(std::move(core)).Finish(reply.status());
        }
      }
    };
    return AddUnaryMethod(method, Request::descriptor(), Response::descriptor(),
                          MakeParser<Request>(), std::move(run));
  }

 private:
  struct Method {
    std::string full_path;  // "/package.Service/Method", as gRPC names it
    std::vector<gravity::server::Guard> guards;
    std::function<std::unique_ptr<google::protobuf::Message>(const grpc::ByteBuffer&)> parse;
    // One of the two is set, by the method's kind.
    std::function<grpc::Status(const google::protobuf::Message&,
                               std::shared_ptr<internal::StreamCore>)>
        run;
    std::function<void(const google::protobuf::Message&, std::shared_ptr<internal::UnaryCore>)>
        run_unary;
  };

  template <typename Request>
  static decltype(Method::parse) MakeParser() {
    return [](const grpc::ByteBuffer& bytes) -> std::unique_ptr<google::protobuf::Message> {
      auto request = std::make_unique<Request>();
      if (!ParseRequest(bytes, request.get())) return nullptr;
      return request;
    };
  }
  static bool ParseRequest(const grpc::ByteBuffer& bytes, google::protobuf::Message* request);

  absl::Status AddStreamMethod(absl::string_view method,
                               const google::protobuf::Descriptor* request_type,
                               const google::protobuf::Descriptor* response_type,
                               decltype(Method::parse) parse, decltype(Method::run) run);
  absl::Status AddUnaryMethod(absl::string_view method,
                              const google::protobuf::Descriptor* request_type,
                              const google::protobuf::Descriptor* response_type,
                              decltype(Method::parse) parse, decltype(Method::run_unary) run);
  // Checks `method` against the descriptors and adds its entry, or says why not.
  absl::StatusOr<Method*> AddCheckedMethod(absl::string_view method, bool server_streaming,
                                           const google::protobuf::Descriptor* request_type,
                                           const google::protobuf::Descriptor* response_type,
                                           decltype(Method::parse) parse);
  // The parsed request of `method`'s call, or null and `*refusal` when the
  // call is refused before its handler runs (shutdown, a guard, a request
  // that does not parse).
  std::unique_ptr<google::protobuf::Message> Admit(const Method& method, const CallInfo& call,
                                                   const grpc::ByteBuffer& request,
                                                   grpc::Status* refusal);
  grpc::ServerWriteReactor<grpc::ByteBuffer>* HandleCall(const Method& method,
                                                         grpc::CallbackServerContext* context,
                                                         const grpc::ByteBuffer* request);
  grpc::ServerUnaryReactor* HandleUnaryCall(const Method& method,
                                            grpc::CallbackServerContext* context,
                                            const grpc::ByteBuffer* request,
                                            grpc::ByteBuffer* response);

  const std::string full_name_;
  std::vector<gravity::server::Guard> service_guards_;
  // Guards added before their method, by short name.
  std::map<std::string, std::vector<gravity::server::Guard>, std::less<>> method_guards_;
  // Stable addresses: gRPC keeps a pointer to each method's name.
  std::deque<Method> methods_;
  StreamOptions stream_options_;
  std::shared_ptr<internal::TimerQueue> timers_;

  absl::Mutex streams_mu_;
  std::map<internal::StreamCore*, std::weak_ptr<internal::StreamCore>> open_streams_
      ABSL_GUARDED_BY(streams_mu_);
  // Set by EndAllStreams: later calls are refused with it.
  std::optional<grpc::Status> ending_status_ ABSL_GUARDED_BY(streams_mu_);
};

}  // namespace gravity::server

#endif  // GRAVITY_SERVER_SERVICE_H_
