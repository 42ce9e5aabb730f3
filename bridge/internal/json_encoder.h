// JsonEncoder: protobuf messages of a run-time descriptor pool to proto3
// JSON, the bridge's one proto-JSON module. AppendJson holds its rule: the
// fast printer (json_printer.h), which prints json_util's bytes for the
// shapes it takes, and json_util itself for the rest.
//
// json_util's MessageToJsonString builds a new TypeResolver, and converts the
// message's descriptors again, on every call for a pool other than the
// generated one; at stream rates that dominated the bridge's CPU time. This
// keeps one resolver per pool and caches each resolved type.
// Thread-safe; the pool must outlive the encoder.
#ifndef GRAVITY_BRIDGE_INTERNAL_JSON_ENCODER_H_
#define GRAVITY_BRIDGE_INTERNAL_JSON_ENCODER_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/util/type_resolver.h"

namespace gravity::bridge::internal {

class JsonEncoder {
 public:
  explicit JsonEncoder(const google::protobuf::DescriptorPool* pool);
  ~JsonEncoder();

  // Appends `parsed`, which was parsed from `bytes`, as one line of proto3
  // JSON: the fast printer, else json_util (INTERNAL when neither can, e.g.
  // an Any of a type the pool does not hold). `out` is unchanged on failure.
  absl::Status AppendJson(const google::protobuf::Message& parsed, const std::string& bytes,
                          std::string* out) const;

  // `bytes` is a serialized `type`; `json` gets it as one line of proto3 JSON,
  // by json_util alone.
  absl::Status ToJson(const google::protobuf::Descriptor& type, const std::string& bytes,
                      std::string* json) const;

  // The details of a gRPC status (its grpc-status-details-bin trailer, a
  // serialized google.rpc.Status) as a JSON array of Any: each detail whose
  // type the pool knows in full, others as {"@type": url} only. "[]" when
  // there are none or they do not parse.
  std::string DetailsJson(const std::string& error_details) const;

 private:
  std::unique_ptr<google::protobuf::util::TypeResolver> resolver_;
};

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_JSON_ENCODER_H_
