// CallInfo: what a guard or a stream handler may know about an incoming call.
//
// A copy taken when the call arrives, so it stays valid for the whole stream
// and can be read from any thread. Immutable once the guards have run (a JWT
// guard records the claims it verified while the call is being admitted,
// before a handler or another thread sees it): thread-safe from then on.
#ifndef GRAVITY_SERVER_CALL_INFO_H_
#define GRAVITY_SERVER_CALL_INFO_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/server_context.h"
#include "server/jwt_claims.h"

namespace gravity::server {

// The metadata key that carries the last event the client has seen. The bridge
// fills it from the browser's `Last-Event-ID`; native clients set it directly.
inline constexpr char kLastEventIdKey[] = "last-event-id";

// The message of the UNAUTHENTICATED status that ends a stream when its
// credentials expire (CallInfo::credentials_expire_at).
inline constexpr char kCredentialsExpiredMessage[] =
    "the token expired; reconnect with a fresh one to resume";

class CallInfo {
 public:
  // Copies what it needs from `context`; `method` is the full gRPC method
  // name, e.g. "/streaming.v1.Streaming/Ping".
  CallInfo(const grpc::ServerContextBase& context, std::string method);
  // For tests of guards: a call with the given method and metadata.
  CallInfo(std::string method, std::multimap<std::string, std::string> metadata,
           std::string peer = "");

  const std::string& method() const { return method_; }
  const std::string& peer() const { return peer_; }
  // Keys are lower case, as gRPC delivers them.
  const std::multimap<std::string, std::string>& metadata() const { return metadata_; }

  // The first value of metadata `key`, or nullopt.
  std::optional<absl::string_view> Metadata(absl::string_view key) const;

  // The client's `last-event-id` metadata, or empty when it has none.
  const std::string& last_event_id() const { return last_event_id_; }

  // The call's W3C trace context (`traceparent` metadata; gravity-bridge
  // sends one with every call), or empty. Pass it to Topic::Publish to keep
  // it with the event.
  const std::string& traceparent() const { return traceparent_; }
  // Its 32-hex trace id, or empty when there is no well-formed traceparent.
  std::string trace_id() const;

  // The claims of the token that RequireJwt (server/jwt.h) verified for this
  // call, or nullptr when no JWT guard ran.
  const JwtClaims* jwt() const { return jwt_.get(); }
  // When the call's credentials stop being valid: a verified token's `exp`
  // plus the guard's leeway, or InfiniteFuture. A stream is ended at that
  // moment with UNAUTHENTICATED ("the token expired"), which gravity-bridge
  // turns into a `retry:` cut: the client reconnects with a fresh token.
  absl::Time credentials_expire_at() const { return credentials_expire_at_; }

 private:
  friend class JwtGuard;  // records what it verified, during admission only

  void RecordJwt(std::shared_ptr<const JwtClaims> claims, absl::Time expire_at) const {
    jwt_ = std::move(claims);
    credentials_expire_at_ = expire_at;
  }

  std::string method_;
  std::string peer_;
  std::multimap<std::string, std::string> metadata_;
  std::string last_event_id_;
  std::string traceparent_;
  // Written by a JWT guard before the call is shared (see the class comment).
  mutable std::shared_ptr<const JwtClaims> jwt_;
  mutable absl::Time credentials_expire_at_ = absl::InfiniteFuture();
};

}  // namespace gravity::server

#endif  // GRAVITY_SERVER_CALL_INFO_H_
