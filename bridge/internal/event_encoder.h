// EventEncoder: one stream's messages, as they come from the backend
// (serialized protobuf), appended to an output buffer as SSE events or NDJSON
// lines (bridge/internal/stream_format.h has the framing rules).
//
// Encodes straight into the caller's buffer and reuses its scratch message,
// slices and strings, so an event the fast printer takes costs no allocation
// once the buffers have grown (json_util's fallback allocates).
//
// One event is bounded: a message whose bytes or encoding are over
// `max_event_bytes` fails with RESOURCE_EXHAUSTED, which ends its stream, so
// what a stalled browser holds of the bridge stays bounded whatever the
// backend (or a client choosing a request field) makes a message weigh.
//
// Owner: shared by the stream's relay and its upstream call. Not thread-safe:
// one thread at a time (the upstream call's reactions, which never overlap).
#ifndef GRAVITY_BRIDGE_INTERNAL_EVENT_ENCODER_H_
#define GRAVITY_BRIDGE_INTERNAL_EVENT_ENCODER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bridge/internal/json_encoder.h"
#include "bridge/internal/routes.h"
#include "bridge/internal/upstream_call.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/byte_buffer.h"

namespace gravity::bridge::internal {

enum class StreamFormat { kSse, kNdjson };

class EventEncoder final : public MessageEncoder {
 public:
  // `method`, `json` and `prototype` (the method's output type) outlive this.
  // 0 `max_event_bytes`: no bound.
  EventEncoder(const RoutedMethod& method, const JsonEncoder& json,
               const google::protobuf::Message& prototype, StreamFormat format,
               size_t max_event_bytes = 0);

  // Appends one message as an event (with its event id as the SSE `id:`), or
  // fails: INTERNAL when `message` is not a serialized output type,
  // RESOURCE_EXHAUSTED when it is over the event bound (`out` unchanged).
  absl::Status Append(const grpc::ByteBuffer& message, std::string* out) override;

 private:
  absl::Status Encode(std::string* out);

  const RoutedMethod& method_;
  const JsonEncoder& json_;
  const StreamFormat format_;
  const size_t max_event_bytes_;
  const std::unique_ptr<google::protobuf::Message> scratch_;  // reused for every message
  std::vector<grpc::Slice> slices_;
  std::string bytes_;
  std::string id_;
};

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_EVENT_ENCODER_H_
