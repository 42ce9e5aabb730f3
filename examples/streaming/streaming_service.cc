#include "examples/streaming/streaming_service.h"

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/guard.h"
#include "server/stream.h"
#include "streaming/v1/streaming.pb.h"

namespace gravity::examples {

namespace {

using server::CallInfo;
using server::Stream;
using streaming::v1::EchoReply;
using streaming::v1::EchoRequest;
using streaming::v1::PingReply;
using streaming::v1::PingRequest;
using streaming::v1::StreamUsersRequest;
using streaming::v1::User;

constexpr int kDefaultCount = 5;
constexpr int kDefaultIntervalMs = 1000;

grpc::Status InvalidArgument(std::string message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::move(message));
}

// The seq a resuming client saw last (0 for a new stream).
absl::StatusOr<int64_t> LastSeenSeq(const std::string& last_event_id) {
  int64_t last_seen = 0;
  if (!last_event_id.empty() && (!absl::SimpleAtoi(last_event_id, &last_seen) || last_seen < 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("last-event-id must be a seq number, got \"", last_event_id, "\""));
  }
  return last_seen;
}

grpc::Status Ping(const PingRequest& request, Stream<PingReply> stream) {
  if (request.count() < 0) return InvalidArgument("count must not be negative");
  if (request.interval_ms() < 0) return InvalidArgument("interval_ms must not be negative");
  if (request.fail_code() < 0 || request.fail_code() > 16) {
    return InvalidArgument("fail_code must be a gRPC code (0-16)");
  }
  const int64_t count = request.count() == 0 ? kDefaultCount : request.count();
  const absl::Duration interval =
      absl::Milliseconds(request.interval_ms() == 0 ? kDefaultIntervalMs : request.interval_ms());
  absl::StatusOr<int64_t> last_seen = LastSeenSeq(stream.last_event_id());
  if (!last_seen.ok()) return InvalidArgument(std::string(last_seen.status().message()));
  const grpc::Status final_status =
      request.fail_code() == 0 ? grpc::Status::OK
                               : grpc::Status(static_cast<grpc::StatusCode>(request.fail_code()),
                                              absl::StrCat("ping failed as asked (fail_code ",
                                                           request.fail_code(), ")"));
  if (*last_seen >= count) {
    stream.Close(final_status);
    return grpc::Status::OK;
  }

  // Only the timer thread touches `next`; the mutex documents that and keeps
  // it correct if a user of this example moves sends elsewhere.
  struct State {
    absl::Mutex mu;
    int64_t next ABSL_GUARDED_BY(mu);
  };
  auto state = std::make_shared<State>();
  state->next = *last_seen + 1;
  stream.Every(interval, [state, count, final_status, to = request.to()](Stream<PingReply>& s) {
    absl::MutexLock lock(&state->mu);
    PingReply reply;
    reply.set_message(absl::StrCat("Sending ping to ", to));
    reply.set_seq(state->next);
    s.Send(reply);
    if (state->next++ >= count) s.Close(final_status);
  });
  return grpc::Status::OK;
}

grpc::Status StreamUsers(const StreamUsersRequest& request, Stream<User> stream) {
  if (request.count() < 0) return InvalidArgument("count must not be negative");
  if (request.interval_ms() < 0) return InvalidArgument("interval_ms must not be negative");
  const int64_t count = request.count() == 0 ? kDefaultCount : request.count();
  const absl::Duration interval =
      absl::Milliseconds(request.interval_ms() == 0 ? kDefaultIntervalMs : request.interval_ms());
  absl::StatusOr<int64_t> last_seen = LastSeenSeq(stream.last_event_id());
  if (!last_seen.ok()) return InvalidArgument(std::string(last_seen.status().message()));
  if (*last_seen >= count) {
    stream.Close();
    return grpc::Status::OK;
  }

  struct State {
    absl::Mutex mu;
    absl::BitGen random ABSL_GUARDED_BY(mu);
    std::set<std::string> sent ABSL_GUARDED_BY(mu);
    int64_t next ABSL_GUARDED_BY(mu);
  };
  auto state = std::make_shared<State>();
  state->next = *last_seen + 1;
  stream.Every(interval, [state, count](Stream<User>& s) {
    absl::MutexLock lock(&state->mu);
    // Like the seed's Math.random().toString(), but never the same id twice.
    std::string id;
    do {
      id = absl::StrCat(absl::Uniform(state->random, 0.0, 1.0));
    } while (!state->sent.insert(id).second);
    User user;
    user.set_id(id);
    user.set_seq(state->next);
    s.Send(user);
    if (state->next++ >= count) s.Close();
  });
  return grpc::Status::OK;
}

absl::StatusOr<EchoReply> Echo(const EchoRequest& request, const CallInfo&) {
  if (request.fail_code() < 0 || request.fail_code() > 16) {
    return absl::InvalidArgumentError("fail_code must be a gRPC code (0-16)");
  }
  if (request.fail_code() != 0) {
    return absl::Status(static_cast<absl::StatusCode>(request.fail_code()),
                        absl::StrCat("echo failed as asked (fail_code ", request.fail_code(), ")"));
  }
  EchoReply reply;
  reply.set_text(request.text());
  return reply;
}

}  // namespace

absl::StatusOr<std::unique_ptr<server::Service>> MakeStreamingService(std::string admin_token) {
  return MakeStreamingService(
      std::vector<server::Guard>{server::RequireBearerToken(std::move(admin_token))});
}

absl::StatusOr<std::unique_ptr<server::Service>> MakeStreamingService(
    std::vector<server::Guard> admin_guards) {
  auto service = std::make_unique<server::Service>("streaming.v1.Streaming");
  for (server::Guard& guard : admin_guards) service->GuardMethod("StreamUsers", std::move(guard));
  absl::Status added = service->AddStream<PingRequest, PingReply>("Ping", Ping);
  if (!added.ok()) return added;
  added = service->AddStream<StreamUsersRequest, User>("StreamUsers", StreamUsers);
  if (!added.ok()) return added;
  added = service->AddUnary<EchoRequest, EchoReply>("Echo", Echo);
  if (!added.ok()) return added;
  return service;
}

}  // namespace gravity::examples
