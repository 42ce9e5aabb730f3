#include <memory>
#include <string>
#include <utility>

#include "client/client.h"
#include "grpcpp/generic/generic_stub.h"

namespace gravity::client {

absl::StatusOr<Stream<grpc::ByteBuffer>> OpenGeneric(
    std::shared_ptr<grpc::ChannelInterface> channel, const std::string& method,
    grpc::ByteBuffer request, const CallOptions& options) {
  using Reactor =
      internal::ReadReactor<grpc::ByteBuffer, grpc::ByteBuffer,
                            grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>>;
  if (!request.Valid()) {
    // A default ByteBuffer is no message at all, which gRPC would abort on;
    // take it as the empty message (zero bytes), which it surely meant.
    grpc::Slice empty;
    request = grpc::ByteBuffer(&empty, 1);
  }
  std::shared_ptr<grpc::ClientContext> context = internal::MakeContext(options);
  auto sink =
      std::make_shared<internal::BufferedSink<grpc::ByteBuffer>>(options.max_buffered_messages);
  grpc::GenericStub stub(std::move(channel));
  Reactor::Start(context, std::move(request), sink,
                 [&stub, &method](grpc::ClientContext* c, const grpc::ByteBuffer*,
                                  grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* r) {
                   stub.PrepareBidiStreamingCall(c, method, grpc::StubOptions(), r);
                 });
  absl::Status opened = sink->AwaitOpen();
  if (!opened.ok()) return opened;
  return Stream<grpc::ByteBuffer>(std::move(context), std::move(sink));
}

}  // namespace gravity::client
