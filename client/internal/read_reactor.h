// ReadReactor: one server-streaming call on gRPC's callback API, feeding a
// Sink. One class for both kinds of call gravity makes:
// - typed, through a generated stub: Base = grpc::ClientReadReactor<Response>;
// - generic, through grpc::GenericStub (any method, raw bytes): Base =
//   grpc::ClientBidiReactor<ByteBuffer, ByteBuffer>; the request goes out as
//   the one and last message, which on the wire is a server-streaming call.
//
// Owner: gRPC; the reactor deletes itself in OnDone, after the sink's OnDone.
// It keeps the ClientContext (shared with the user's handle for Cancel) and
// the sink alive until then, and releases the context before the sink's
// OnDone. One read in flight at a time; reactions do not
// block and hold no lock.
#ifndef GRAVITY_CLIENT_INTERNAL_READ_REACTOR_H_
#define GRAVITY_CLIENT_INTERNAL_READ_REACTOR_H_

#include <memory>
#include <type_traits>
#include <utility>

#include "client/internal/call_context.h"
#include "client/internal/sink.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/client_callback.h"

namespace gravity::client::internal {

template <typename Request, typename Response, typename Base>
class ReadReactor final : public Base, private Resumable {
 public:
  // Creates the reactor and starts the call: `prepare(context, &request,
  // reactor)` binds the call to the reactor (a stub's async method or
  // GenericStub::PrepareBidiStreamingCall), then the first read, the request
  // (generic calls) and the call start.
  template <typename Prepare>
  static void Start(std::shared_ptr<grpc::ClientContext> context, Request request,
                    std::shared_ptr<Sink<Response>> sink, Prepare&& prepare) {
    auto* reactor = new ReadReactor(std::move(context), std::move(request), std::move(sink));
    prepare(reactor->context_.get(), &reactor->request_, reactor);
    reactor->StartRead(&reactor->message_);
    if constexpr (kGeneric) reactor->StartWriteLast(&reactor->request_, grpc::WriteOptions());
    reactor->StartCall();
  }

  void OnReadInitialMetadataDone(bool ok) override { sink_->OnOpen(ok); }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the call is over; OnDone follows
    // The hold lets the sink resume from another thread after this reaction.
    this->AddHold();
    if (sink_->OnMessage(std::move(message_), this)) Resume(true);
  }

  void OnDone(const grpc::Status& status) override {
    // Our reference to the context, which holds one to the channel, goes
    // before the sink learns of the end: the consumer may drop its channel
    // then, and the last reference to a channel must not go on a gRPC thread
    // (gRPC 1.51's Channel destructor joins the callback threads, aborting
    // when it runs on one of them).
    context_.reset();
    sink_->OnDone(ToAbslStatus(status));
    delete this;
  }

 private:
  static constexpr bool kGeneric =
      std::is_base_of_v<grpc::ClientBidiReactor<Request, Response>, Base>;

  ReadReactor(std::shared_ptr<grpc::ClientContext> context, Request request,
              std::shared_ptr<Sink<Response>> sink)
      : context_(std::move(context)), request_(std::move(request)), sink_(std::move(sink)) {}

  void Resume(bool read_more) override {
    if (read_more) this->StartRead(&message_);
    this->RemoveHold();
  }

  std::shared_ptr<grpc::ClientContext> context_;
  // gRPC reads the request until the call ends; the message being read is
  // written by gRPC until OnReadDone, then moved to the sink.
  Request request_;
  Response message_;
  const std::shared_ptr<Sink<Response>> sink_;
};

}  // namespace gravity::client::internal

#endif  // GRAVITY_CLIENT_INTERNAL_READ_REACTOR_H_
