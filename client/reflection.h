// A gRPC server reflection client: what services a server has, with their
// descriptors, so a tool or a proxy can build requests and read messages of
// types it was not compiled with (gravity-cli, the SSE bridge).
//
//   auto files = gravity::client::FetchServiceDescriptors(channel, absl::Seconds(5));
//   if (!files.ok()) return files.status();
//   google::protobuf::SimpleDescriptorDatabase database;
//   for (const auto& file : files->file()) database.Add(file);
//   google::protobuf::DescriptorPool pool(&database);
//   const auto* service = pool.FindServiceByName("streaming.v1.Streaming");
//
// Speaks reflection v1alpha (the only version gRPC 1.51 servers serve; gravity
// servers enable it) over grpc::GenericStub with gravity's own copy of the
// messages, so it coexists with a reflection server in the same process.
//
// Thread-safe: a plain function; calls may run concurrently.
#ifndef GRAVITY_CLIENT_REFLECTION_H_
#define GRAVITY_CLIENT_REFLECTION_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpcpp/channel.h"

namespace gravity::client {

// The gRPC method of reflection v1alpha.
inline constexpr char kReflectionMethod[] =
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

// Lists the server's services (leaving out grpc.reflection.* and
// grpc.health.*) and returns every file that defines one of them plus all
// their transitive imports, each once, imports before the files that import
// them (so DescriptorPool::BuildFile works in order, as does a
// SimpleDescriptorDatabase).
//
// One reflection stream bounded by `timeout`. Errors: the call's status
// (UNAVAILABLE: no server; UNIMPLEMENTED: no reflection; DEADLINE_EXCEEDED),
// a reflection error response with its code, or INTERNAL for a malformed
// answer (an unparsable descriptor, a missing import).
absl::StatusOr<google::protobuf::FileDescriptorSet> FetchServiceDescriptors(
    const std::shared_ptr<grpc::Channel>& channel, absl::Duration timeout);

// Whether FetchServiceDescriptors leaves out the service: gRPC's own
// reflection and health services.
bool IsInfrastructureService(absl::string_view full_name);

}  // namespace gravity::client

#endif  // GRAVITY_CLIENT_REFLECTION_H_
