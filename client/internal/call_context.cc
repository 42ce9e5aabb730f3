#include "client/internal/call_context.h"

#include <algorithm>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/time/clock.h"

namespace gravity::client::internal {

std::shared_ptr<grpc::ClientContext> MakeContext(const CallOptions& options) {
  auto context = std::make_shared<grpc::ClientContext>();
  absl::Time deadline = options.deadline;
  if (options.timeout != absl::InfiniteDuration()) {
    deadline = std::min(deadline, absl::Now() + options.timeout);
  }
  if (deadline != absl::InfiniteFuture()) context->set_deadline(absl::ToChronoTime(deadline));
  for (const auto& [key, value] : options.metadata) {
    context->AddMetadata(absl::AsciiStrToLower(key), value);
  }
  if (!options.last_event_id.empty()) context->AddMetadata(kLastEventIdKey, options.last_event_id);
  context->set_wait_for_ready(options.wait_for_ready);
  return context;
}

absl::Status ToAbslStatus(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace gravity::client::internal
