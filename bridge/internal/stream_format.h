// The bridge's two stream formats, framed exactly per the wire contract
// (docs/wire-contract.md): Server-Sent Events (SseMessage, SseEnd, ...) and
// NDJSON (NdjsonResult, NdjsonError). Pure functions; thread-safe.
#ifndef GRAVITY_BRIDGE_INTERNAL_STREAM_FORMAT_H_
#define GRAVITY_BRIDGE_INTERNAL_STREAM_FORMAT_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace gravity::bridge::internal {

// "id: <id>\n" (when id is not empty and holds no CR, LF or NUL) then one
// "data: " line per non-empty line of `json`, then a blank line. proto3 JSON
// is one line; were it not, a raw line break would end the event early, so
// `json` is split on CR and LF, and empty lines between them are dropped.
std::string SseMessage(absl::string_view id, absl::string_view json);
void AppendSseMessage(absl::string_view id, absl::string_view json, std::string* out);
// Just the "id: <id>\n" line of SseMessage (nothing for an empty or bad id).
void AppendSseId(absl::string_view id, std::string* out);

// "event: end\ndata: <status_json>\n\n" (google.rpc.Status JSON, see
// StatusJson): always the last event.
std::string SseEnd(absl::string_view status_json);

// ": keep-alive\n\n", a comment EventSource ignores.
std::string SseKeepAlive();

// "retry: <ms>\n\n": tells EventSource how long to wait before reconnecting.
std::string SseRetry(absl::Duration delay);

// {"result":<json>}\n and {"error":<status>}\n, as grpc-gateway streams.
std::string NdjsonResult(absl::string_view json);
void AppendNdjsonResult(absl::string_view json, std::string* out);
std::string NdjsonError(absl::string_view status_json);

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_STREAM_FORMAT_H_
