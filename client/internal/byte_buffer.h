// Protobuf messages to and from grpc::ByteBuffer, for calls made through
// grpc::GenericStub (the reflection client, gravity-cli).
#ifndef GRAVITY_CLIENT_INTERNAL_BYTE_BUFFER_H_
#define GRAVITY_CLIENT_INTERNAL_BYTE_BUFFER_H_

#include "google/protobuf/message_lite.h"
#include "grpcpp/support/byte_buffer.h"

namespace gravity::client::internal {

grpc::ByteBuffer ToByteBuffer(const google::protobuf::MessageLite& message);

// False when `bytes` is not a valid encoding of `message`'s type.
bool ParseByteBuffer(const grpc::ByteBuffer& bytes, google::protobuf::MessageLite* message);

}  // namespace gravity::client::internal

#endif  // GRAVITY_CLIENT_INTERNAL_BYTE_BUFFER_H_
