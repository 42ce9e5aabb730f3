// BridgeState: what every session of a bridge shares: options, the routes and
// descriptors, the backend stub, metrics.
//
// Owner: the Bridge, by shared_ptr; sessions hold a shared_ptr too. Immutable
// after construction except the atomic metrics: thread-safe.
#ifndef GRAVITY_BRIDGE_INTERNAL_BRIDGE_STATE_H_
#define GRAVITY_BRIDGE_INTERNAL_BRIDGE_STATE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bridge/bridge.h"
#include "bridge/internal/routes.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor_database.h"
#include "google/protobuf/dynamic_message.h"
#include "grpcpp/generic/generic_stub.h"

namespace gravity::bridge::internal {

struct Metrics {
  std::atomic<int64_t> active_streams{0};
  std::atomic<int64_t> streams_total{0};
  std::atomic<int64_t> events_sent{0};
  std::atomic<int64_t> upstream_calls_live{0};
  std::atomic<int64_t> connections_active{0};
};

struct BridgeState {
  BridgeOptions options;
  // The pool reads from the database: declared first, destroyed last.
  std::unique_ptr<google::protobuf::SimpleDescriptorDatabase> database;
  std::unique_ptr<google::protobuf::DescriptorPool> pool;
  std::unique_ptr<RouteTable> routes;
  // GetPrototype is thread-safe; prototypes live as long as the factory.
  std::unique_ptr<google::protobuf::DynamicMessageFactory> factory;
  std::unique_ptr<grpc::GenericStub> stub;
  std::vector<std::string> warnings;
  Metrics metrics;
  std::atomic<bool> draining{false};
};

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_BRIDGE_STATE_H_
