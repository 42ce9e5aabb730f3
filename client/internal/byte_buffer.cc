#include "client/internal/byte_buffer.h"

#include <string>
#include <vector>

#include "grpcpp/support/slice.h"

namespace gravity::client::internal {

grpc::ByteBuffer ToByteBuffer(const google::protobuf::MessageLite& message) {
  grpc::Slice slice(message.SerializeAsString());
  return grpc::ByteBuffer(&slice, 1);
}

bool ParseByteBuffer(const grpc::ByteBuffer& bytes, google::protobuf::MessageLite* message) {
  std::vector<grpc::Slice> slices;
  if (!bytes.Dump(&slices).ok()) return false;
  if (slices.size() == 1) return message->ParseFromArray(slices[0].begin(), slices[0].size());
  std::string joined;
  joined.reserve(bytes.Length());
  for (const grpc::Slice& slice : slices) {
    joined.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return message->ParseFromString(joined);
}

}  // namespace gravity::client::internal
