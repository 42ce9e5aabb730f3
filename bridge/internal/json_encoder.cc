#include "bridge/internal/json_encoder.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "bridge/internal/json_printer.h"
#include "bridge/internal/json_text.h"
#include "bridge/internal/status_mapping.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/type.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/type_resolver_util.h"
#include "google/rpc/status.pb.h"

namespace gravity::bridge::internal {

namespace {

constexpr char kTypeUrlPrefix[] = "type.googleapis.com";

// Resolves each type once; json_util asks again for every message.
class CachingTypeResolver final : public google::protobuf::util::TypeResolver {
 public:
  explicit CachingTypeResolver(const google::protobuf::DescriptorPool* pool)
      : resolver_(google::protobuf::util::NewTypeResolverForDescriptorPool(kTypeUrlPrefix, pool)) {}

  google::protobuf::util::Status ResolveMessageType(const std::string& type_url,
                                                    google::protobuf::Type* type) override {
    return Resolve(type_url, type, &messages_, [this](const std::string& url, auto* out) {
      return resolver_->ResolveMessageType(url, out);
    });
  }

  google::protobuf::util::Status ResolveEnumType(const std::string& type_url,
                                                 google::protobuf::Enum* type) override {
    return Resolve(type_url, type, &enums_, [this](const std::string& url, auto* out) {
      return resolver_->ResolveEnumType(url, out);
    });
  }

 private:
  template <typename T, typename Fetch>
  google::protobuf::util::Status Resolve(const std::string& url, T* out,
                                         absl::flat_hash_map<std::string, T>* cache, Fetch fetch) {
    {
      absl::MutexLock lock(&mu_);
      if (auto it = cache->find(url); it != cache->end()) {
        *out = it->second;
        return google::protobuf::util::Status();
      }
    }
    google::protobuf::util::Status status = fetch(url, out);
    if (status.ok()) {
      absl::MutexLock lock(&mu_);
      cache->emplace(url, *out);
    }
    return status;
  }

  const std::unique_ptr<google::protobuf::util::TypeResolver> resolver_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, google::protobuf::Type> messages_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, google::protobuf::Enum> enums_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

JsonEncoder::JsonEncoder(const google::protobuf::DescriptorPool* pool)
    : resolver_(std::make_unique<CachingTypeResolver>(pool)) {}

JsonEncoder::~JsonEncoder() = default;

absl::Status JsonEncoder::AppendJson(const google::protobuf::Message& parsed,
                                     const std::string& bytes, std::string* out) const {
  const size_t start = out->size();
  if (AppendProto3Json(parsed, out).ok()) return absl::OkStatus();
  out->resize(start);
  std::string json;
  if (absl::Status printed = ToJson(*parsed.GetDescriptor(), bytes, &json); !printed.ok()) {
    return printed;
  }
  out->append(json);
  return absl::OkStatus();
}

absl::Status JsonEncoder::ToJson(const google::protobuf::Descriptor& type, const std::string& bytes,
                                 std::string* json) const {
  json->clear();
  auto status = google::protobuf::util::BinaryToJsonString(
      resolver_.get(), absl::StrCat(kTypeUrlPrefix, "/", type.full_name()), bytes, json);
  if (!status.ok()) return absl::InternalError(status.message().as_string());
  return absl::OkStatus();
}

std::string JsonEncoder::DetailsJson(const std::string& error_details) const {
  if (error_details.empty()) return "[]";
  google::rpc::Status status;
  if (!status.ParseFromString(error_details)) return "[]";
  std::string out = "[";
  for (const google::protobuf::Any& detail : status.details()) {
    if (out.size() > 1) out += ",";
    std::string json;
    auto converted = google::protobuf::util::BinaryToJsonString(
        resolver_.get(), absl::StrCat(kTypeUrlPrefix, "/google.protobuf.Any"),
        detail.SerializeAsString(), &json);
    out += converted.ok() ? json : absl::StrCat("{\"@type\":", JsonString(detail.type_url()), "}");
  }
  out += "]";
  return out;
}

}  // namespace gravity::bridge::internal
