// The fan-out example: chat rooms on gravity::server::Topic.
//
//   chat.v1.Chat/Post       {room, text} -> the stored Message (with its id)
//   chat.v1.Chat/Subscribe  {room}       -> stream of Message, from now on, or
//                                           after metadata last-event-id
//
// One Topic per room, created on first use. With Redis (ChatOptions::redis)
// every chat-server sharing that Redis shares the rooms: a message posted on
// one instance reaches the subscribers of all of them, and a subscriber can
// resume on any instance with the id of the last message it got.
//
// Blocking: Post never waits for Redis on its gRPC thread: it publishes with
// Topic::PublishAsync and answers from the callback (with Redis, on the
// room's publisher thread, after the XADD; UNAVAILABLE while Redis is down,
// within about 2 x RedisTopicOptions::publish_timeout when it hangs, and at
// once when the room's publish queue is full). In memory the callback runs
// at once and hands the message to the local subscribers (a few microseconds
// each). One exception: the first call for a room on an instance creates the
// room's topic, with Redis one XREVRANGE round trip on the gRPC thread
// (bounded by publish_timeout).
#ifndef GRAVITY_EXAMPLES_CHAT_CHAT_SERVICE_H_
#define GRAVITY_EXAMPLES_CHAT_CHAT_SERVICE_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "chat/v1/chat.pb.h"
#include "server/service.h"
#include "server/topic.h"

namespace gravity::examples {

// How a chat-server keeps its rooms. A plain value type.
struct ChatOptions {
  // Unset: every room lives in this process's memory.
  std::optional<server::RedisTopicOptions> redis;
  server::InMemoryTopicOptions memory;
};

// The rooms of one chat-server: one Topic per room, made on first use and
// kept for the life of the process.
// Thread-safe: Room and Stats may be called from any thread.
class ChatRooms {
 public:
  using Room = server::Topic<chat::v1::Message>;

  explicit ChatRooms(ChatOptions options) : options_(std::move(options)) {}

  // The room's topic; INVALID_ARGUMENT for a bad name, UNAVAILABLE when
  // Redis cannot be reached to create it (a later call tries again).
  absl::StatusOr<std::shared_ptr<Room>> Get(const std::string& name);

  // Each room's counters, by room name.
  std::vector<std::pair<std::string, server::TopicStats>> Stats() const;

 private:
  const ChatOptions options_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Room>> rooms_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::unique_ptr<server::Service>> MakeChatService(std::shared_ptr<ChatRooms> rooms);

}  // namespace gravity::examples

#endif  // GRAVITY_EXAMPLES_CHAT_CHAT_SERVICE_H_
