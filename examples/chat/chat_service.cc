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

absl::StatusOr<std::shared_ptr<ChatRooms::Room>> ChatRooms::Get(const std::string& name) {
  if (absl::Status valid = CheckRoomName(name); !valid.ok()) return valid;
  absl::MutexLock lock(&mu_);
  auto found = rooms_.find(name);
  if (found != rooms_.end()) return found->second;
  std::unique_ptr<server::TopicBackend> backend =
      options_.redis ? server::NewRedisTopicBackend(*options_.redis, "chat:" + name)
                     : server::NewInMemoryTopicBackend(options_.memory);
  absl::StatusOr<std::unique_ptr<Room>> room = Room::Create(name, std::move(backend));
  if (!room.ok()) return room.status();
  std::shared_ptr<Room> shared = std::move(*room);
  rooms_.emplace(name, shared);
  return shared;
}

std::vector<std::pair<std::string, server::TopicStats>> ChatRooms::Stats() const {
  std::vector<std::pair<std::string, server::TopicStats>> stats;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, room] : rooms_) stats.emplace_back(name, room->Stats());
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
        absl::StatusOr<std::shared_ptr<ChatRooms::Room>> room = rooms->Get(request.room());
        if (!room.ok()) {
          reply.Finish(room.status());
          return;
        }
        Message message;
        message.set_room(request.room());
        message.set_text(request.text());
        (*room)->PublishAsync(message, [reply, message](absl::StatusOr<std::string> id) mutable {
          if (!id.ok()) {
            reply.Finish(id.status());
            return;
          }
          message.set_id(*std::move(id));
          reply.Finish(message);
        });
      });
  if (!added.ok()) return added;
  added = service->AddStream<SubscribeRequest, Message>(
      "Subscribe",
      [rooms](const SubscribeRequest& request, server::Stream<Message> stream) -> grpc::Status {
        absl::StatusOr<std::shared_ptr<ChatRooms::Room>> room = rooms->Get(request.room());
        if (!room.ok()) {
          return grpc::Status(static_cast<grpc::StatusCode>(room.status().code()),
                              std::string(room.status().message()));
        }
        // A malformed last-event-id is refused before the call is accepted.
        if (absl::Status id = (*room)->CheckEventId(stream.last_event_id()); !id.ok()) {
          return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(id.message()));
        }
        // Replays after the client's last-event-id (if any), then live.
        (*room)->Subscribe(std::move(stream));
        return grpc::Status::OK;
      });
  if (!added.ok()) return added;
  return service;
}

}  // namespace gravity::examples
