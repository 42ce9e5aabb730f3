// HoldingBackend: a gravity server for the bridge's tests whose Echo holds
// each unary call until the test answers it, and whose Ping sends one message
// and then holds the stream open; both count calls and cancels, so a call the
// bridge left running (or cancelled) shows.
//
// Thread-safety: the counters are atomics; AnswerAll may be called from any
// thread.
#ifndef GRAVITY_TESTS_BRIDGE_HOLDING_BACKEND_H_
#define GRAVITY_TESTS_BRIDGE_HOLDING_BACKEND_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "server/service.h"
#include "server/unary.h"
#include "streaming/v1/streaming.pb.h"
#include "tests/server/test_server.h"

namespace gravity::testing {

class HoldingBackend {
 public:
  HoldingBackend() : service_("streaming.v1.Streaming") {
    EXPECT_TRUE((service_.AddUnary<streaming::v1::EchoRequest, streaming::v1::EchoReply>(
                     "Echo",
                     [this](const streaming::v1::EchoRequest&,
                            gravity::server::UnaryReply<streaming::v1::EchoReply> reply) {
                       reply.OnCancel([this] { ++unary_cancelled; });
                       std::lock_guard<std::mutex> lock(mu_);
                       held_.push_back(reply);
                       ++unary_started;
                     }))
                    .ok());
    EXPECT_TRUE((service_.AddStream<streaming::v1::PingRequest, streaming::v1::PingReply>(
                     "Ping",
                     [this](const streaming::v1::PingRequest&,
                            gravity::server::Stream<streaming::v1::PingReply> stream) {
                       stream.OnCancel([this] { ++streams_cancelled; });
                       streaming::v1::PingReply reply;
                       reply.set_seq(1);
                       stream.Send(reply);
                       std::lock_guard<std::mutex> lock(mu_);
                       streams_.push_back(stream);
                       ++streams_started;
                     }))
                    .ok());
    server_ = StartServer({&service_});
  }

  ~HoldingBackend() {
    std::lock_guard<std::mutex> lock(mu_);
    held_.clear();
    streams_.clear();
  }

  // Answers every held unary call with `text`; returns how many took it.
  int AnswerAll(const std::string& text) {
    std::vector<gravity::server::UnaryReply<streaming::v1::EchoReply>> held;
    {
      std::lock_guard<std::mutex> lock(mu_);
      held.swap(held_);
    }
    streaming::v1::EchoReply reply;
    reply.set_text(text);
    int answered = 0;
    for (auto& call : held) answered += call.Finish(reply) ? 1 : 0;
    return answered;
  }

  std::string address() const { return server_ == nullptr ? "" : server_->address(); }

  std::shared_ptr<grpc::Channel> Channel() const {
    return grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
  }

  std::atomic<int> unary_started{0};
  std::atomic<int> unary_cancelled{0};
  std::atomic<int> streams_started{0};
  std::atomic<int> streams_cancelled{0};

 private:
  gravity::server::Service service_;
  std::unique_ptr<gravity::server::Server> server_;
  std::mutex mu_;
  std::vector<gravity::server::UnaryReply<streaming::v1::EchoReply>> held_;
  std::vector<gravity::server::Stream<streaming::v1::PingReply>> streams_;
};

}  // namespace gravity::testing

#endif  // GRAVITY_TESTS_BRIDGE_HOLDING_BACKEND_H_
