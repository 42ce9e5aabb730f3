#include "bridge/internal/event_encoder.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "bridge/internal/stream_format.h"

namespace gravity::bridge::internal {

namespace {

// The event id of `message`, appended to `id`; empty when the field has no
// scalar value to give.
void AppendEventId(const google::protobuf::Message& message,
                   const google::protobuf::FieldDescriptor* field, std::string* id) {
  if (field == nullptr || field->is_repeated()) return;
  const auto* reflection = message.GetReflection();
  using FD = google::protobuf::FieldDescriptor;
  switch (field->cpp_type()) {
    case FD::CPPTYPE_INT32:
      absl::StrAppend(id, reflection->GetInt32(message, field));
      return;
    case FD::CPPTYPE_INT64:
      absl::StrAppend(id, reflection->GetInt64(message, field));
      return;
    case FD::CPPTYPE_UINT32:
      absl::StrAppend(id, reflection->GetUInt32(message, field));
      return;
    case FD::CPPTYPE_UINT64:
      absl::StrAppend(id, reflection->GetUInt64(message, field));
      return;
    case FD::CPPTYPE_STRING:
      id->append(reflection->GetString(message, field));
      return;
    default:
      return;
  }
}

}  // namespace

EventEncoder::EventEncoder(const RoutedMethod& method, const JsonEncoder& json,
                           const google::protobuf::Message& prototype, StreamFormat format,
                           size_t max_event_bytes)
    : method_(method),
      json_(json),
      format_(format),
      max_event_bytes_(max_event_bytes),
      scratch_(prototype.New()) {}

absl::Status EventEncoder::Append(const grpc::ByteBuffer& message, std::string* out) {
  // Refused before any work when its bytes alone are over the bound (its
  // JSON is seldom smaller than its protobuf form).
  if (max_event_bytes_ > 0 && message.Length() > max_event_bytes_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("a message of ", message.Length(), " bytes is over the bridge's bound of ",
                     max_event_bytes_, " bytes per event (--max_event_bytes)"));
  }
  bytes_.clear();
  slices_.clear();
  if (!message.Dump(&slices_).ok()) return absl::InternalError("unreadable message");
  for (const grpc::Slice& slice : slices_) {
    bytes_.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  slices_.clear();
  const size_t start = out->size();
  absl::Status encoded = Encode(out);
  if (encoded.ok() && max_event_bytes_ > 0 && out->size() - start > max_event_bytes_) {
    encoded = absl::ResourceExhaustedError(
        absl::StrCat("a message whose event takes ", out->size() - start,
                     " bytes is over the bridge's bound of ", max_event_bytes_,
                     " bytes per event (--max_event_bytes)"));
  }
  if (!encoded.ok()) out->resize(start);
  // One big message's scratch is not kept for the life of the stream.
  if (bytes_.capacity() > 64 * 1024) std::string().swap(bytes_);
  return encoded;
}

absl::Status EventEncoder::Encode(std::string* out) {
  const google::protobuf::Descriptor& type = *method_.method->output_type();
  scratch_->Clear();
  if (!scratch_->ParseFromString(bytes_)) {
    return absl::InternalError(
        absl::StrCat("the backend sent a message that is not a ", type.full_name()));
  }
  // The JSON goes straight into the output (proto3 JSON is one line, so one
  // data line).
  id_.clear();
  if (format_ == StreamFormat::kSse) AppendEventId(*scratch_, method_.event_id, &id_);
  const size_t start = out->size();
  if (format_ == StreamFormat::kNdjson) {
    out->append("{\"result\":");
  } else {
    AppendSseId(id_, out);
    out->append("data: ");
  }
  if (absl::Status printed = json_.AppendJson(*scratch_, bytes_, out); !printed.ok()) {
    out->resize(start);
    // It parsed, so it is a well-formed message; what fails is its JSON, e.g.
    // an Any of a type the descriptors do not hold.
    return absl::InternalError(
        absl::StrCat("a ", type.full_name(),
                     " from the backend has no proto3 JSON form here: ", printed.message()));
  }
  out->append(format_ == StreamFormat::kNdjson ? "}\n" : "\n\n");
  return absl::OkStatus();
}

}  // namespace gravity::bridge::internal
