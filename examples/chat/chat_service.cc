#include "examples/chat/chat_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/call_info.h"
#include "server/stream.h"
#include "server/unary.h"

namespace gravity::examples {

namespace {

using chat::v1::Message;
using chat::v1::PostRequest;
using chat::v1::SubscribeRequest;

constexpr size_t kMaxRoomName = 64;
constexpr size_t kMaxText = 4096;

absl::Status CheckRoomName(const std::string& room) {
  const bool ok = !room.empty() && room.size() <= kMaxRoomName &&
                  std::all_of(room.begin(), room.end(), [](char c) {
                    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
                           c == '_' || c == '.';
                  });
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("room must be 1-", kMaxRoomName, " characters of A-Z a-z 0-9 - _ ."));
}

}  // namespace

ChatRooms::ChatRooms(ChatOptions options)
    : options_(std::move(options)), id_parser_(NewBackend("id-parser")) {
  for (int i = 0; i < kCreatorThreads; ++i) creators_.emplace_back([this] { CreateLoop(); });
}

ChatRooms::~ChatRooms() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  // A creation in progress ends within publish_timeout; queued ones are
  // failed by the creators on their way out.
  for (std::thread& creator : creators_) creator.join();
  std::map<std::string, std::shared_ptr<Slot>> rooms;
  {
    absl::MutexLock lock(&mu_);
    rooms.swap(rooms_);
  }
  // Rooms go one by one; each Stop takes milliseconds (the Redis backend
  // interrupts its reader instead of waiting out XREAD BLOCK).
}

std::unique_ptr<server::TopicBackend> ChatRooms::NewBackend(const std::string& name) const {
  return options_.redis ? server::NewRedisTopicBackend(*options_.redis, "chat:" + name)
                        : server::NewInMemoryTopicBackend(options_.memory);
}

absl::Status ChatRooms::CheckEventId(const std::string& room, const std::string& id) const {
  if (id.empty()) return absl::OkStatus();
  absl::StatusOr<server::EventPosition> parsed = id_parser_->ParseId(id);
  if (parsed.ok()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("last-event-id \"", id,
                                                 "\" is not an event id of room ", room, ": ",
                                                 parsed.status().message()));
}

absl::Status ChatRooms::GetAsync(const std::string& name, RoomCallback done) {
  if (absl::Status valid = CheckRoomName(name); !valid.ok()) return valid;
  std::shared_ptr<Room> room;
  absl::Status refused;
  std::vector<std::shared_ptr<Room>> freed;  // destroyed after mu_ is released
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    auto found = rooms_.find(name);
    if (stopping_) {
      refused = absl::UnavailableError("the chat server is stopping");
    } else if (found != rooms_.end()) {
      Slot& slot = *found->second;
      slot.last_used = now;
      if (slot.room != nullptr) {
        room = slot.room;
      } else {
        slot.waiting.push_back(std::move(done));  // its creation is under way
        return absl::OkStatus();
      }
    } else {
      if (rooms_.size() >= options_.max_rooms) freed = TakeIdleLocked(now);
      if (rooms_.size() >= options_.max_rooms) {
        refused = absl::ResourceExhaustedError(
            absl::StrCat("this server has ", rooms_.size(),
                         " rooms, its limit (max_rooms); try again later or use an existing room"));
      } else {
        auto slot = std::make_shared<Slot>();
        slot->last_used = now;
        slot->waiting.push_back(std::move(done));
        rooms_.emplace(name, std::move(slot));
        to_create_.push_back(name);
        return absl::OkStatus();
      }
    }
  }
  freed.clear();
  if (!refused.ok()) return refused;
  done(std::move(room));
  return absl::OkStatus();
}

void ChatRooms::CreateLoop() {
  auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || !to_create_.empty();
  };
  for (;;) {
    std::string name;
    std::vector<RoomCallback> failed_on_exit;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(&has_work));
      if (stopping_) {
        for (const std::string& queued : to_create_) {
          auto found = rooms_.find(queued);
          if (found == rooms_.end()) continue;
          for (RoomCallback& waiting : found->second->waiting) {
            failed_on_exit.push_back(std::move(waiting));
          }
          rooms_.erase(found);
        }
        to_create_.clear();
      } else {
        name = std::move(to_create_.front());
        to_create_.pop_front();
      }
    }
    if (name.empty()) {
      for (RoomCallback& waiting : failed_on_exit) {
        waiting(absl::UnavailableError("the chat server is stopping"));
      }
      return;
    }
    // Outside mu_: with Redis this is a round trip (bounded by
    // publish_timeout), and a hung Redis must not stall calls for rooms that
    // exist.
    absl::StatusOr<std::unique_ptr<Room>> created = Room::Create(name, NewBackend(name));
    std::shared_ptr<Room> room;
    std::vector<RoomCallback> waiting;
    {
      absl::MutexLock lock(&mu_);
      auto found = rooms_.find(name);
      if (found != rooms_.end()) {  // always: only a creator removes a slot being created
        waiting.swap(found->second->waiting);
        if (created.ok()) {
          room = std::move(*created);
          found->second->room = room;
        } else {
          rooms_.erase(found);  // the next call tries again
        }
      }
    }
    for (RoomCallback& done : waiting) {
      if (created.ok()) {
        done(room);
      } else {
        done(created.status());
      }
    }
  }
}

std::vector<std::shared_ptr<ChatRooms::Room>> ChatRooms::TakeIdleLocked(absl::Time now) {
  std::vector<std::shared_ptr<Room>> idle;
  for (auto it = rooms_.begin(); it != rooms_.end();) {
    Slot& slot = *it->second;
    // Being created, or held by a call right now (a handler, a publish):
    // in use.
    if (slot.room == nullptr || slot.room.use_count() > 1 || slot.room->Stats().subscribers > 0) {
      slot.idle_since = absl::InfiniteFuture();
      ++it;
      continue;
    }
    // Idle since the later of its last call and the moment its last
    // subscriber was first seen gone (subscribers leave without telling us).
    if (slot.idle_since == absl::InfiniteFuture()) slot.idle_since = now;
    const absl::Time idle_from = std::max(slot.last_used, slot.idle_since);
    if (now - idle_from >= options_.room_idle_timeout) {
      idle.push_back(std::move(slot.room));
      it = rooms_.erase(it);
    } else {
      ++it;
    }
  }
  return idle;
}

size_t ChatRooms::StopIdleRooms() {
  std::vector<std::shared_ptr<Room>> idle;
  {
    absl::MutexLock lock(&mu_);
    idle = TakeIdleLocked(absl::Now());
  }
  return idle.size();  // destroyed here, without mu_: each Stop joins threads
}

size_t ChatRooms::size() const {
  absl::MutexLock lock(&mu_);
  return rooms_.size();
}

std::vector<std::pair<std::string, server::TopicStats>> ChatRooms::Stats() const {
  std::vector<std::pair<std::string, server::TopicStats>> stats;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, slot] : rooms_) {
    if (slot->room != nullptr) stats.emplace_back(name, slot->room->Stats());
  }
  return stats;
}

absl::StatusOr<std::unique_ptr<server::Service>> MakeChatService(std::shared_ptr<ChatRooms> rooms) {
  auto service = std::make_unique<server::Service>("chat.v1.Chat");
  // Post answers from the publish's callback: the gRPC thread never waits
  // for Redis (PublishAsync: the room's publisher thread does).
  absl::Status added = service->AddUnary<PostRequest, Message>(
      "Post", [rooms](const PostRequest& request, server::UnaryReply<Message> reply) {
        if (request.text().empty() || request.text().size() > kMaxText) {
          reply.Finish(
              absl::InvalidArgumentError(absl::StrCat("text must be 1-", kMaxText, " bytes")));
          return;
        }
        Message message;
        message.set_room(request.room());
        message.set_text(request.text());
        absl::Status taken = rooms->GetAsync(
            request.room(),
            [reply, message](absl::StatusOr<std::shared_ptr<ChatRooms::Room>> room) {
              if (!room.ok()) {
                reply.Finish(room.status());
                return;
              }
              // The poster's trace context goes with the event (on Redis a
              // field of the entry): a post can be followed to its deliveries.
              (*room)->PublishAsync(message, reply.call().traceparent(),
                                    [reply, message](absl::StatusOr<std::string> id) mutable {
                                      if (!id.ok()) {
                                        reply.Finish(id.status());
                                        return;
                                      }
                                      message.set_id(*std::move(id));
                                      reply.Finish(message);
                                    });
            });
        if (!taken.ok()) reply.Finish(taken);
      });
  if (!added.ok()) return added;
  added = service->AddStream<SubscribeRequest, Message>(
      "Subscribe",
      [rooms](const SubscribeRequest& request, server::Stream<Message> stream) -> grpc::Status {
        // A malformed last-event-id is refused before the call is accepted,
        // and before a room is created for it: bad input costs no room.
        if (absl::Status id = rooms->CheckEventId(request.room(), stream.last_event_id());
            !id.ok()) {
          return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(id.message()));
        }
        // A refusal (bad name, max_rooms) is the call's status; a room that
        // cannot be created (Redis down or refusing) ends the accepted
        // stream with UNAVAILABLE, like any outage: clients retry.
        absl::Status taken = rooms->GetAsync(
            request.room(), [stream](absl::StatusOr<std::shared_ptr<ChatRooms::Room>> room) {
              if (!room.ok()) {
                stream.Close(room.status());
                return;
              }
              // Replays after the client's last-event-id (if any), then live.
              (*room)->Subscribe(stream);
            });
        if (!taken.ok()) {
          return grpc::Status(static_cast<grpc::StatusCode>(taken.code()),
                              std::string(taken.message()));
        }
        return grpc::Status::OK;
      });
  if (!added.ok()) return added;
  return service;
}

}  // namespace gravity::examples
