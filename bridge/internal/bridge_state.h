// BridgeState: what every session of a bridge shares: options, the routes and
// descriptors, the backend stub, metrics.
//
// Owner: the Bridge, by shared_ptr; sessions hold a shared_ptr too. Immutable
// after construction except the atomic metrics: thread-safe.
#ifndef GRAVITY_BRIDGE_INTERNAL_BRIDGE_STATE_H_
#define GRAVITY_BRIDGE_INTERNAL_BRIDGE_STATE_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bridge/bridge.h"
#include "bridge/internal/access_log.h"
#include "bridge/internal/json_encoder.h"
#include "bridge/internal/metrics.h"
#include "bridge/internal/routes.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor_database.h"
#include "google/protobuf/dynamic_message.h"
#include "grpcpp/generic/generic_stub.h"

namespace gravity::bridge::internal {

// Streams per client address, for BridgeOptions::max_streams_per_client.
// Thread-safe.
class ClientStreamCounter {
 public:
  // Releases its stream when destroyed. Movable.
  class Slot {
   public:
    Slot(ClientStreamCounter* counter, std::string address)
        : counter_(counter), address_(std::move(address)) {}
    Slot(Slot&& other) noexcept
        : counter_(std::exchange(other.counter_, nullptr)), address_(std::move(other.address_)) {}
    Slot& operator=(Slot&& other) noexcept {
      if (this != &other) {
        if (counter_ != nullptr) counter_->Release(address_);
        counter_ = std::exchange(other.counter_, nullptr);
        address_ = std::move(other.address_);
      }
      return *this;
    }
    ~Slot() {
      if (counter_ != nullptr) counter_->Release(address_);
    }

   private:
    ClientStreamCounter* counter_;
    std::string address_;
  };

  explicit ClientStreamCounter(int limit) : limit_(limit) {}

  // A slot, or nullopt when `address` already has `limit` streams (0: no limit).
  std::optional<Slot> Acquire(const std::string& address) {
    if (limit_ <= 0) return Slot(nullptr, "");
    absl::MutexLock lock(&mu_);
    int& count = counts_[address];
    if (count >= limit_) return std::nullopt;
    ++count;
    return Slot(this, address);
  }

 private:
  void Release(const std::string& address) {
    absl::MutexLock lock(&mu_);
    auto it = counts_.find(address);
    if (it != counts_.end() && --it->second <= 0) counts_.erase(it);
  }

  const int limit_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, int> counts_ ABSL_GUARDED_BY(mu_);
};

// A token bucket: `rate` starts per second, with one second of burst.
// Thread-safe.
class StartBudget {
 public:
  explicit StartBudget(int rate) : rate_(rate), tokens_(rate) {}
  // True (and one token less) when a start fits; always true with rate 0.
  bool TryTake() {
    if (rate_ <= 0) return true;
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    tokens_ = std::min<double>(rate_, tokens_ + absl::ToDoubleSeconds(now - refilled_) * rate_);
    refilled_ = now;
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
  }

 private:
  const int rate_;
  absl::Mutex mu_;
  double tokens_ ABSL_GUARDED_BY(mu_);
  absl::Time refilled_ ABSL_GUARDED_BY(mu_) = absl::Now();
};

struct BridgeState {
  explicit BridgeState(BridgeOptions bridge_options)
      : options(std::move(bridge_options)),
        client_streams(options.max_streams_per_client),
        start_budget(options.max_stream_starts_per_second) {}

  BridgeOptions options;
  // The pool reads from the database: declared first, destroyed last.
  std::unique_ptr<google::protobuf::SimpleDescriptorDatabase> database;
  std::unique_ptr<google::protobuf::DescriptorPool> pool;
  std::unique_ptr<RouteTable> routes;
  // GetPrototype is thread-safe; prototypes live as long as the factory.
  std::unique_ptr<google::protobuf::DynamicMessageFactory> factory;
  std::unique_ptr<JsonEncoder> json;
  std::unique_ptr<grpc::GenericStub> stub;
  std::vector<std::string> warnings;
  Metrics metrics;
  // Null when BridgeOptions::access_log is empty. Declared after metrics,
  // whose drop counter it uses.
  std::unique_ptr<AccessLog> access_log;
  ClientStreamCounter client_streams;
  StartBudget start_budget;
  // Upstream calls not yet deleted. Shared with the calls themselves, which
  // must not own the BridgeState: the last owner of the backend channel must
  // never be a gRPC thread (gRPC 1.51 aborts when a channel dies on one).
  std::shared_ptr<std::atomic<int64_t>> upstream_calls_live =
      std::make_shared<std::atomic<int64_t>>(0);
  std::atomic<bool> draining{false};
};

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_BRIDGE_STATE_H_
