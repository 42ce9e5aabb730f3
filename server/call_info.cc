#include "server/call_info.h"

#include <utility>

namespace gravity::server {

namespace {

std::multimap<std::string, std::string> CopyMetadata(const grpc::ServerContextBase& context) {
  std::multimap<std::string, std::string> copy;
  for (const auto& [key, value] : context.client_metadata()) {
    copy.emplace(std::string(key.data(), key.size()), std::string(value.data(), value.size()));
  }
  return copy;
}

}  // namespace

CallInfo::CallInfo(const grpc::ServerContextBase& context, std::string method)
    : CallInfo(std::move(method), CopyMetadata(context), context.peer()) {}

CallInfo::CallInfo(std::string method, std::multimap<std::string, std::string> metadata,
                   std::string peer)
    : method_(std::move(method)), peer_(std::move(peer)), metadata_(std::move(metadata)) {
  if (auto id = Metadata(kLastEventIdKey)) last_event_id_ = std::string(*id);
  if (auto trace = Metadata("traceparent")) traceparent_ = std::string(*trace);
}

std::string CallInfo::trace_id() const {
  // "vv-<32 hex trace id>-<16 hex parent id>-ff".
  if (traceparent_.size() < 55 || traceparent_[2] != '-' || traceparent_[35] != '-') return "";
  const std::string id = traceparent_.substr(3, 32);
  if (id.find_first_not_of("0123456789abcdef") != std::string::npos) return "";
  return id;
}

std::optional<absl::string_view> CallInfo::Metadata(absl::string_view key) const {
  auto it = metadata_.find(std::string(key));
  if (it == metadata_.end()) return std::nullopt;
  return absl::string_view(it->second);
}

}  // namespace gravity::server
