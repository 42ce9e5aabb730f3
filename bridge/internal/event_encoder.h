// EventEncoder: one stream's messages, as they come from the backend
// (serialized protobuf), appended to an output buffer as SSE events or NDJSON
// lines (bridge/internal/sse.h has the framing rules).
//
// Encodes straight into the caller's buffer and reuses its scratch message
// and strings, so an event costs no allocation once the buffers have grown.
// Owner: the stream's relay. Not thread-safe: one thread at a time (the
// upstream call's reactions, which never overlap).
#ifndef GRAVITY_BRIDGE_INTERNAL_EVENT_ENCODER_H_
#define GRAVITY_BRIDGE_INTERNAL_EVENT_ENCODER_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "bridge/internal/json_encoder.h"
#include "bridge/internal/routes.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/byte_buffer.h"

namespace gravity::bridge::internal {

enum class StreamFormat { kSse, kNdjson };

class EventEncoder {
 public:
  // `method`, `json` and `prototype` (the method's output type) outlive this.
  EventEncoder(const RoutedMethod& method, const JsonEncoder& json,
               const google::protobuf::Message& prototype, StreamFormat format);

  // Appends one message as an event (with its event id as the SSE `id:`), or
  // fails when `message` is not a serialized output type.
  absl::Status Append(const grpc::ByteBuffer& message, std::string* out);

 private:
  const RoutedMethod& method_;
  const JsonEncoder& json_;
  const StreamFormat format_;
  const std::unique_ptr<google::protobuf::Message> scratch_;  // reused for every message
  std::string bytes_;
  std::string json_text_;
};

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_EVENT_ENCODER_H_
