#include "bridge/bridge.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <functional>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "bridge/internal/bridge_state.h"
#include "bridge/internal/connection_start.h"
#include "bridge/internal/status_mapping.h"
#include "bridge/internal/tls_context.h"
#include "google/api/annotations.pb.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/descriptor_database.h"

namespace gravity::bridge {

namespace net = boost::asio;
using internal::BridgeState;
using internal::Connection;

std::vector<std::string> ServicesIn(const google::protobuf::FileDescriptorSet& set) {
  std::vector<std::string> services;
  for (const auto& file : set.file()) {
    for (const auto& service : file.service()) {
      services.push_back(file.package().empty()
                             ? service.name()
                             : absl::StrCat(file.package(), ".", service.name()));
    }
  }
  return services;
}

absl::StatusOr<google::protobuf::FileDescriptorSet> LoadDescriptorSet(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  google::protobuf::FileDescriptorSet set;
  if (!set.ParseFromIstream(&in)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a FileDescriptorSet"));
  }
  return set;
}

absl::StatusOr<google::protobuf::FileDescriptorSet> DescriptorsOfLinkedServices(
    const std::vector<std::string>& services) {
  google::protobuf::FileDescriptorSet set;
  std::set<std::string> added;
  // Imports first, as protoc writes them.
  std::function<void(const google::protobuf::FileDescriptor*)> add =
      [&](const google::protobuf::FileDescriptor* file) {
        if (!added.insert(file->name()).second) return;
        for (int i = 0; i < file->dependency_count(); ++i) add(file->dependency(i));
        file->CopyTo(set.add_file());
      };
  for (const std::string& name : services) {
    const auto* service =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
    if (service == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("service ", name, " is not linked into this program"));
    }
    add(service->file());
  }
  return set;
}

grpc::ChannelArguments BackendChannelArguments() {
  grpc::ChannelArguments arguments;
  arguments.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  arguments.SetInt(GRPC_ARG_ENABLE_CENSUS, 0);
  arguments.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  arguments.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 64 * 1024);
  // gRPC's default reconnect backoff grows to two minutes; browsers retry
  // every --retry, so a restarted backend must be found again quickly.
  arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return arguments;
}

// Connections a drain cuts per second at most (see Shutdown).
constexpr double kDrainCutsPerSecond = 2000;

class Bridge::Impl {
 public:
  Impl(std::shared_ptr<BridgeState> state, std::unique_ptr<internal::TlsContext> tls)
      : state_(std::move(state)),
        tls_(std::move(tls)),
        work_(net::make_work_guard(io_)),
        accept_strand_(net::make_strand(io_)),
        acceptor_(accept_strand_),
        accept_retry_(accept_strand_) {}

  ~Impl() {
    if (reserve_fd_ >= 0) ::close(reserve_fd_);
  }

  absl::Status Listen() {
    const std::string& listen = state_->options.listen;
    const size_t colon = listen.rfind(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("--listen wants host:port, got ", listen));
    }
    std::string host = listen.substr(0, colon);
    if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
    boost::system::error_code ec;
    auto address = net::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
    if (ec) return absl::InvalidArgumentError(absl::StrCat("bad listen address ", host));
    int port = 0;
    if (!absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 || port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("bad listen port in ", listen));
    }
    net::ip::tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    // AnswerOutOfDescriptors accepts by hand and must never block.
    if (!ec) acceptor_.non_blocking(true, ec);
    if (!ec) ::fcntl(acceptor_.native_handle(), F_SETFD, FD_CLOEXEC);
    if (ec)
      return absl::UnavailableError(absl::StrCat("cannot listen on ", listen, ": ", ec.message()));
    host_ = host.empty() ? "0.0.0.0" : host;
    port_ = acceptor_.local_endpoint().port();
    return absl::OkStatus();
  }

  void Run() {
    DoAccept();
    int threads = state_->options.threads;
    if (threads <= 0) threads = std::max(1u, std::thread::hardware_concurrency());
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { io_.run(); });
  }

  void Shutdown() {
    {
      absl::MutexLock lock(&mu_);
      if (shutdown_started_) {
        // A second caller returns when the first one is done.
        mu_.Await(absl::Condition(&shutdown_done_));
        return;
      }
      shutdown_started_ = true;
    }
    // From here on no stream starts (StartStream refuses), so the snapshot
    // below holds every session that can have one.
    state_->draining = true;
    net::post(accept_strand_, [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      accept_retry_.cancel();
    });
    std::vector<std::weak_ptr<Connection>> sessions;
    {
      absl::MutexLock lock(&mu_);
      sessions.swap(sessions_);
    }
    // The cuts are spread, at most kDrainCutsPerSecond and over at most half
    // the drain window: the browsers of a draining bridge then reconnect (to
    // another bridge) spread out, on top of their jittered retry: hints.
    const absl::Time cuts_start = absl::Now();
    const absl::Duration spread =
        std::min(state_->options.drain_timeout / 2,
                 absl::Seconds(static_cast<double>(sessions.size()) / kDrainCutsPerSecond));
    for (size_t i = 0; i < sessions.size(); ++i) {
      const absl::Time due =
          cuts_start + spread * (static_cast<double>(i) / static_cast<double>(sessions.size()));
      if (due > absl::Now() + absl::Milliseconds(1)) absl::SleepFor(due - absl::Now());
      if (auto session = sessions[i].lock()) session->Drain();
    }
    // Bounded: streams were cut with a retry hint. Then wait a little longer
    // for the cancelled upstream calls to end, so no gRPC callback outlives
    // the io_context (and the channel is not released on a gRPC thread).
    const absl::Time drained = absl::Now() + state_->options.drain_timeout;
    while (absl::Now() < drained && (state_->upstream_calls_live->load() > 0 ||
                                     state_->metrics.connections_active.load() > 0)) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    const absl::Time cancelled = absl::Now() + absl::Seconds(5);
    while (absl::Now() < cancelled && state_->upstream_calls_live->load() > 0) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    work_.reset();
    io_.stop();
    for (auto& thread : threads_) thread.join();
    threads_.clear();
    absl::MutexLock lock(&mu_);
    shutdown_done_ = true;
  }

  std::shared_ptr<BridgeState> state_;
  // Null in cleartext.
  const std::unique_ptr<internal::TlsContext> tls_;
  std::string host_;
  int port_ = 0;

 private:
  void DoAccept() {
    acceptor_.async_accept(
        net::make_strand(io_), [this](boost::system::error_code ec, net::ip::tcp::socket socket) {
          if (ec) {
            if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
            if (ec == net::error::no_descriptors || ec.value() == ENFILE) {
              AnswerOutOfDescriptors();
            }
            // Keep serving the open connections and try again shortly instead
            // of spinning.
            accept_retry_.expires_after(std::chrono::milliseconds(50));
            accept_retry_.async_wait([this](boost::system::error_code wait_ec) {
              if (!wait_ec && acceptor_.is_open()) DoAccept();
            });
            return;
          }
          boost::system::error_code ignored;
          socket.set_option(net::ip::tcp::no_delay(true), ignored);
          // Asio makes sockets without close-on-exec: a child process that an
          // embedding application starts would inherit the connection and
          // hold it open after the session closed it.
          ::fcntl(socket.native_handle(), F_SETFD, FD_CLOEXEC);
          internal::StartConnection(
              std::move(socket), state_, tls_ != nullptr ? tls_->Current() : nullptr,
              [this](std::shared_ptr<Connection> connection) { Adopt(std::move(connection)); });
          DoAccept();
        });
  }

  // A connection past its handshake or sniff: registered for the drain, then
  // served. On the connection's strand.
  void Adopt(std::shared_ptr<Connection> connection) {
    {
      absl::MutexLock lock(&mu_);
      // Forget closed connections now and then, so the list stays the size of
      // the open ones.
      if (sessions_.size() >= 2 * live_mark_ + 64) {
        sessions_.erase(std::remove_if(sessions_.begin(), sessions_.end(),
                                       [](const auto& weak) { return weak.expired(); }),
                        sessions_.end());
        live_mark_ = sessions_.size();
      }
      sessions_.push_back(connection);
    }
    connection->Start();
  }

  // Out of file descriptors, a browser would wait in the listen backlog with
  // no answer. The descriptor kept in reserve is given up for a moment to
  // accept one waiting connection, answer it 503 (Retry-After) and close it.
  // Accept strand only.
  void AnswerOutOfDescriptors() {
    if (reserve_fd_ >= 0) ::close(reserve_fd_);
    const int fd = ::accept4(acceptor_.native_handle(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      const std::string body = internal::StatusJson(grpc::StatusCode::UNAVAILABLE,
                                                    "the bridge is out of file descriptors") +
                               "\n";
      const std::string response = absl::StrCat(
          "HTTP/1.1 503 Service Unavailable\r\nServer: gravity-bridge\r\n"
          "Content-Type: application/json\r\nCache-Control: no-store\r\nRetry-After: 1\r\n"
          "Connection: close\r\nContent-Length: ",
          body.size(), "\r\n\r\n", body);
      // A fresh socket's buffer takes this whole; never wait for it.
      [[maybe_unused]] ssize_t sent =
          ::send(fd, response.data(), response.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      ::close(fd);
      state_->metrics.CountRejection(503);
    }
    reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }

  net::io_context io_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  int reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  // The acceptor and its retry timer live on one strand: Shutdown closes it
  // from another thread.
  net::strand<net::io_context::executor_type> accept_strand_;
  net::ip::tcp::acceptor acceptor_;
  net::steady_timer accept_retry_;
  std::vector<std::thread> threads_;
  absl::Mutex mu_;
  bool shutdown_started_ ABSL_GUARDED_BY(mu_) = false;
  bool shutdown_done_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::weak_ptr<Connection>> sessions_ ABSL_GUARDED_BY(mu_);
  size_t live_mark_ ABSL_GUARDED_BY(mu_) = 0;
};

absl::StatusOr<std::unique_ptr<Bridge>> Bridge::Start(
    BridgeOptions options, std::shared_ptr<grpc::Channel> backend,
    const google::protobuf::FileDescriptorSet& descriptors) {
  for (const std::string& name : options.forward_headers) {
    // gRPC aborts on a reserved or malformed metadata key: refuse it here.
    const std::string key = absl::AsciiStrToLower(name);
    const bool valid =
        !key.empty() &&
        key.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_.") == std::string::npos;
    if (!valid || absl::StartsWith(key, "grpc-") || absl::EndsWith(key, "-bin") || key == "te" ||
        key == "content-type" || key == "user-agent" || key == "host") {
      return absl::InvalidArgumentError(
          absl::StrCat("--forward_header: \"", name, "\" cannot be forwarded as gRPC metadata"));
    }
  }
  auto state = std::make_shared<BridgeState>(std::move(options));
  state->database = std::make_unique<google::protobuf::SimpleDescriptorDatabase>();
  for (const auto& file : descriptors.file()) {
    if (!state->database->Add(file)) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate descriptor for ", file.name()));
    }
  }
  // Status details are Any messages: their JSON needs any.proto in the pool
  // even when no service of the backend uses it.
  google::protobuf::FileDescriptorProto any_file;
  if (!state->database->FindFileByName(google::protobuf::Any::descriptor()->file()->name(),
                                       &any_file)) {
    google::protobuf::Any::descriptor()->file()->CopyTo(&any_file);
    state->database->Add(any_file);
  }
  state->pool = std::make_unique<google::protobuf::DescriptorPool>(state->database.get());
  std::vector<std::string> services = ServicesIn(descriptors);
  for (const std::string& name : services) {
    if (state->pool->FindServiceByName(name) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("the descriptors of ", name, " are incomplete (missing imports?)"));
    }
  }
  state->routes = std::make_unique<internal::RouteTable>(*state->pool, services, &state->warnings);
  if (state->routes->methods().empty()) {
    return absl::NotFoundError("no server-streaming method in the given services");
  }
  state->factory = std::make_unique<google::protobuf::DynamicMessageFactory>(state->pool.get());
  state->json = std::make_unique<internal::JsonEncoder>(state->pool.get());
  state->stub = std::make_unique<grpc::GenericStub>(std::move(backend));
  if (!state->options.access_log.empty()) {
    auto log =
        internal::AccessLog::Open(state->options.access_log, &state->metrics.access_log_dropped);
    if (!log.ok()) return log.status();
    state->access_log = std::move(*log);
  }

  std::unique_ptr<internal::TlsContext> tls;
  if (state->options.tls_cert.empty() != state->options.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together: set both or neither");
  }
  if (!state->options.tls_cert.empty()) {
    auto loaded = internal::TlsContext::Load(state->options.tls_cert, state->options.tls_key,
                                             state->options.http2);
    if (!loaded.ok()) return loaded.status();
    tls = std::move(*loaded);
  }
  if (state->options.compression_window_bits < 9 || state->options.compression_window_bits > 15) {
    return absl::InvalidArgumentError("--compression_window_bits must be 9 to 15");
  }
  if (state->options.http2_max_concurrent_streams < 1) {
    return absl::InvalidArgumentError("--http2_max_concurrent_streams must be at least 1");
  }

  auto impl = std::make_unique<Impl>(state, std::move(tls));
  if (absl::Status listening = impl->Listen(); !listening.ok()) return listening;
  impl->Run();
  return std::unique_ptr<Bridge>(new Bridge(std::move(impl)));
}

Bridge::Bridge(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Bridge::~Bridge() { Shutdown(); }

int Bridge::port() const { return impl_->port_; }

std::string Bridge::address() const { return absl::StrCat(impl_->host_, ":", impl_->port_); }

std::vector<std::string> Bridge::RouteDescriptions() const {
  std::vector<std::string> lines;
  for (const auto& method : impl_->state_->routes->methods()) {
    const char* verbs = method.unary ? "POST " : "GET|POST ";
    lines.push_back(absl::StrCat(verbs, method.grpc_path, " -> ", method.method->full_name()));
    for (const std::string& pattern : method.templates) {
      lines.push_back(absl::StrCat(verbs, pattern, " -> ", method.method->full_name()));
    }
  }
  return lines;
}

const std::vector<std::string>& Bridge::warnings() const { return impl_->state_->warnings; }

int64_t Bridge::active_streams() const { return impl_->state_->metrics.active_streams.load(); }

bool Bridge::tls() const { return impl_->tls_ != nullptr; }

absl::Status Bridge::ReloadTls() {
  if (impl_->tls_ == nullptr) return absl::FailedPreconditionError("this bridge has no TLS");
  return impl_->tls_->Reload();
}

void Bridge::Shutdown() { impl_->Shutdown(); }

}  // namespace gravity::bridge
