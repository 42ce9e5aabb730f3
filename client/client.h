// gravity's native client: open a server stream, then read it with a plain
// loop that ends in an explicit status. The C++ form of the seed's
//
//   const userStream = await api.streaming.streamUsers();
//   if (userStream.error) { console.error(userStream.error); return; }
//   for await (const user of userStream.data) console.log(user);
//
// is
//
//   #include "client/client.h"
//   using streaming::v1::Streaming;
//
//   auto stub = Streaming::NewStub(grpc::CreateChannel(
//       "127.0.0.1:50051", grpc::InsecureChannelCredentials()));
//   auto users = gravity::client::Open(stub, &Streaming::Stub::async::StreamUsers, {},
//                                      gravity::client::CallOptions().WithBearerToken(token));
//   if (!users.ok()) {                       // rejected before any message
//     std::cerr << users.status() << "\n";   // e.g. UNAUTHENTICATED: ...
//     return;
//   }
//   for (const User& user : *users) std::cout << user.id() << "\n";
//   if (!users->status().ok()) std::cerr << users->status() << "\n";  // mid-stream end
//
// The method is named by the generated stub's callback method
// (Stub::async::<Method>), which fixes the request and message types at
// compile time; no per-service code beyond protoc's is needed.
//
// Thread-safety: these functions may be called from any thread, concurrently;
// a stub or channel may be shared by any number of calls. See Stream<T> and
// AsyncStream for the results.
#ifndef GRAVITY_CLIENT_CLIENT_H_
#define GRAVITY_CLIENT_CLIENT_H_

#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/async_stream.h"
#include "client/call_options.h"
#include "client/internal/buffered_sink.h"
#include "client/internal/call_context.h"
#include "client/internal/callback_sink.h"
#include "client/internal/read_reactor.h"
#include "client/stream.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/client_callback.h"

namespace gravity::client {

namespace internal {

// Keeps a parameter out of template argument deduction, so `{}` and lambdas
// convert to the type the method pointer fixed (std::type_identity in C++20).
template <typename T>
struct IdentityOf {
  using type = T;
};
template <typename T>
using Identity = typename IdentityOf<T>::type;

template <typename S, typename = void>
struct HasAsync : std::false_type {};
template <typename S>
struct HasAsync<S, std::void_t<decltype(std::declval<S&>().async())>> : std::true_type {};

// The stub's callback interface, from a stub or a (smart) pointer to one.
template <typename S>
auto* AsyncOf(S& stub) {
  if constexpr (HasAsync<S>::value) {
    return stub.async();
  } else {
    return stub->async();
  }
}

template <typename AsyncStub, typename Request, typename Response>
using StreamingMethod = void (AsyncStub::*)(grpc::ClientContext*, const Request*,
                                            grpc::ClientReadReactor<Response>*);

template <typename Stub, typename AsyncStub, typename Request, typename Response>
void StartTyped(Stub& stub, StreamingMethod<AsyncStub, Request, Response> method,
                std::shared_ptr<grpc::ClientContext> context, Request request,
                std::shared_ptr<Sink<Identity<Response>>> sink) {
  auto* async = AsyncOf(stub);
  ReadReactor<Request, Response, grpc::ClientReadReactor<Response>>::Start(
      std::move(context), std::move(request), std::move(sink),
      [async, method](grpc::ClientContext* c, const Request* r,
                      grpc::ClientReadReactor<Response>* reactor) {
        (async->*method)(c, r, reactor);
      });
}

}  // namespace internal

// Opens a server stream and waits until the server accepted or rejected it
// (its initial metadata, which gravity servers send once the guards and the
// handler let the call through, or the call's end).
//
// Returns the readable stream, or the error of a call that ended before any
// message: a guard's UNAUTHENTICATED / PERMISSION_DENIED, INVALID_ARGUMENT
// from the handler, UNIMPLEMENTED for an unknown method, UNAVAILABLE when the
// server cannot be reached, DEADLINE_EXCEEDED, ... with gRPC's code and
// message. A stream that ends with OK before any message is a readable, empty
// stream.
//
// `stub` is a generated stub (Service::Stub) or a pointer / unique_ptr /
// shared_ptr to one; `method` is &Service::Stub::async::<Method>. Blocks for
// at most the call's deadline (CallOptions); without one, until the server
// answers.
template <typename Stub, typename AsyncStub, typename Request, typename Response>
[[nodiscard]] absl::StatusOr<Stream<Response>> Open(
    Stub& stub, internal::StreamingMethod<AsyncStub, Request, Response> method,
    internal::Identity<Request> request, const CallOptions& options = {}) {
  std::shared_ptr<grpc::ClientContext> context = internal::MakeContext(options);
  auto sink = std::make_shared<internal::BufferedSink<Response>>(options.max_buffered_messages);
  internal::StartTyped(stub, method, context, std::move(request), sink);
  absl::Status opened = sink->AwaitOpen();
  if (!opened.ok()) return opened;
  return Stream<Response>(std::move(context), std::move(sink));
}

// The same call for event loops: returns at once, and the call reports
// through callbacks on gRPC's threads (no thread of its own): `on_message`
// per message, then `on_done` exactly once with the final status, which for
// a call rejected before any message is the rejection (no on_message then).
// Same statuses as Open + Stream<T> for the same call. See AsyncStream.
template <typename Stub, typename AsyncStub, typename Request, typename Response>
AsyncStream OpenAsync(Stub& stub, internal::StreamingMethod<AsyncStub, Request, Response> method,
                      internal::Identity<Request> request, const CallOptions& options,
                      std::function<void(const internal::Identity<Response>&)> on_message,
                      std::function<void(absl::Status)> on_done) {
  std::shared_ptr<grpc::ClientContext> context = internal::MakeContext(options);
  auto sink =
      std::make_shared<internal::CallbackSink<Response>>(std::move(on_message), std::move(on_done));
  internal::StartTyped(stub, method, context, std::move(request), std::move(sink));
  return AsyncStream(std::move(context));
}

// Open for any server-streaming method by name, with serialized messages:
// for tools and proxies that learn the types at run time (gravity-cli). The
// call goes through grpc::GenericStub. `method` is the gRPC path,
// "/<package>.<Service>/<Method>"; `request` the serialized request message
// (a default-constructed ByteBuffer counts as the empty message).
[[nodiscard]] absl::StatusOr<Stream<grpc::ByteBuffer>> OpenGeneric(
    std::shared_ptr<grpc::ChannelInterface> channel, const std::string& method,
    grpc::ByteBuffer request, const CallOptions& options = {});

}  // namespace gravity::client

#endif  // GRAVITY_CLIENT_CLIENT_H_
