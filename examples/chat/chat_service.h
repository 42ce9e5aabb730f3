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
// Blocking: no call waits for Redis on its gRPC thread (gRPC runs handlers
// on a small pool: one blocked handler delays every call behind it). Post
// publishes with Topic::PublishAsync and answers from the callback (with
// Redis, on the process' one publisher thread, after the XADD; UNAVAILABLE while
// Redis is down, within about 2 x RedisTopicOptions::publish_timeout when it
// hangs, and at once when the publish queue is full). In memory the
// callback runs at once and hands the message to the local subscribers (a few
// microseconds each). The first call for a room on an instance creates the
// room's topic (with Redis one XREVRANGE round trip, bounded by
// publish_timeout) on one of ChatRooms' few creator threads and continues
// from there: while Redis hangs, only calls for rooms being created wait, and
// calls for rooms that exist are answered as usual.
//
// Rooms anyone can create are bounded: at most ChatOptions::max_rooms live in
// a process (a new one past that is RESOURCE_EXHAUSTED), and a room with no
// subscriber and no post for room_idle_timeout is stopped and freed (with
// Redis it leaves the shared reader; its events stay in Redis, so a
// client resumes later as from any other instance). A Subscribe's
// last-event-id is checked before a room is created for it.
#ifndef GRAVITY_EXAMPLES_CHAT_CHAT_SERVICE_H_
#define GRAVITY_EXAMPLES_CHAT_CHAT_SERVICE_H_

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "chat/v1/chat.pb.h"
#include "server/service.h"
#include "server/topic.h"

namespace gravity::examples {

// How a chat-server keeps its rooms. A plain value type.
struct ChatOptions {
  // Unset: every room lives in this process's memory.
  std::optional<server::RedisTopicOptions> redis;
  server::InMemoryTopicOptions memory;
  // Live rooms in this process, counting those being created. With Redis a
  // room costs no thread and no connection of its own (the process' topics
  // share them), only memory and one key in the shared XREAD.
  size_t max_rooms = 1000;
  // A room nobody subscribes to or posts to for this long is stopped and
  // freed by StopIdleRooms (in memory its events go with it).
  absl::Duration room_idle_timeout = absl::Minutes(5);
};

// The rooms of one chat-server: one Topic per room, made on first use, freed
// when idle (StopIdleRooms), at most max_rooms at a time. Rooms are created
// on kCreatorThreads threads of its own (never on the caller's), started with
// the ChatRooms and joined by its destructor.
// Thread-safe: every method may be called from any thread.
class ChatRooms {
 public:
  using Room = server::Topic<chat::v1::Message>;
  using RoomCallback = std::function<void(absl::StatusOr<std::shared_ptr<Room>>)>;

  // Rooms created at once (each creation is a Redis round trip, bounded by
  // publish_timeout): with Redis hung, N new rooms answer within about
  // N / kCreatorThreads x publish_timeout.
  static constexpr int kCreatorThreads = 4;

  explicit ChatRooms(ChatOptions options);
  // Fails the creations still queued (UNAVAILABLE), joins the creator
  // threads, then stops every room.
  ~ChatRooms();

  ChatRooms(const ChatRooms&) = delete;
  ChatRooms& operator=(const ChatRooms&) = delete;

  // Refuses at once (and never calls `done`): INVALID_ARGUMENT for a bad
  // name, RESOURCE_EXHAUSTED when max_rooms are live, UNAVAILABLE while
  // stopping. Otherwise OK, and `done` gets the room's topic exactly once: at
  // once, on this thread, when the room exists; else on a creator thread once
  // it is created, or UNAVAILABLE when Redis cannot be reached or refuses
  // connections (a later call tries again). `done` must not block.
  absl::Status GetAsync(const std::string& name, RoomCallback done);

  // OK for "" and for an id of the form this server's rooms use; checked
  // before a room is created, so a bad last-event-id costs nothing.
  absl::Status CheckEventId(const std::string& room, const std::string& id) const;

  // Stops and frees the rooms that have had no subscriber, no post and no
  // caller holding them for room_idle_timeout; returns how many. Call it
  // periodically (chat-server does, from its housekeeping thread); GetAsync
  // also frees idle rooms when max_rooms are live. Joins the freed rooms'
  // threads (milliseconds each), never with a lock held that GetAsync needs.
  size_t StopIdleRooms();

  // Live rooms (created, or being created).
  size_t size() const;
  // Each room's counters, by room name.
  std::vector<std::pair<std::string, server::TopicStats>> Stats() const;

 private:
  // One room's entry; the map holds it from the first call on. All of it is
  // guarded by ChatRooms::mu_.
  struct Slot {
    std::shared_ptr<Room> room;         // null while being created
    std::vector<RoomCallback> waiting;  // calls waiting for the creation
    absl::Time last_used;               // last call for it
    // When a sweep first saw it unused (InfiniteFuture: in use).
    absl::Time idle_since = absl::InfiniteFuture();
  };

  void CreateLoop();
  // Takes the rooms that are idle now out of the map; the caller destroys
  // them once mu_ is released.
  std::vector<std::shared_ptr<Room>> TakeIdleLocked(absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::unique_ptr<server::TopicBackend> NewBackend(const std::string& name) const;

  const ChatOptions options_;
  // Parses ids the way every room's backend does, without starting it.
  const std::unique_ptr<server::TopicBackend> id_parser_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Slot>> rooms_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> to_create_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> creators_;
};

absl::StatusOr<std::unique_ptr<server::Service>> MakeChatService(std::shared_ptr<ChatRooms> rooms);

}  // namespace gravity::examples

#endif  // GRAVITY_EXAMPLES_CHAT_CHAT_SERVICE_H_
