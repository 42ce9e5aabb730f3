// The Redis Streams TopicBackend (see RedisTopicOptions in topic_backend.h).
//
// A topic owns no thread and no connection: it is a RedisTopicHub::TopicState
// on the hub of its Redis address (redis_topic_hub.h), whose one reader, one
// publisher and one replay thread, each with one connection, serve every
// topic of the process made with the same address and hub options. Stop
// withdraws the topic from the hub: milliseconds (no XREAD BLOCK to wait out),
// or up to publish_timeout with an XADD of this topic in flight to a hung
// Redis. Its resume window (RedisTopicOptions::resume_window_*) is kept by
// the topic's core (server/internal/resume_window.h), not here; the budget
// every window of the hub shares (resume_windows_total_bytes) is the hub's.
#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/internal/ignore_sigpipe.h"
#include "server/internal/redis_topic_hub.h"
#include "server/topic_backend.h"

namespace gravity::server {

namespace {

using internal::RedisTopicHub;

class RedisTopicBackend final : public TopicBackend {
 public:
  RedisTopicBackend(const RedisTopicOptions& options, std::string topic_name)
      : hub_(RedisTopicHub::For(options)),
        topic_(std::make_shared<RedisTopicHub::TopicState>(options.key_prefix + topic_name,
                                                           options.max_len)),
        // Never more than MAXLEN ~ keeps (at least max_len): the window
        // serves no resume that Redis would refuse as gone.
        // A hub cap of 0 turns every window of the hub off.
        window_{options.resume_windows_total_bytes > 0
                    ? ResumeWindowBounds{std::min(options.resume_window_events, options.max_len),
                                         options.resume_window_bytes}
                    : ResumeWindowBounds{}} {}

  ~RedisTopicBackend() override { Stop(); }

  absl::Status Start(LiveListener listener) override {
    return hub_->Start(topic_, std::move(listener));
  }

  void Stop() override { hub_->Stop(topic_); }

  absl::StatusOr<std::string> Append(const std::string& payload,
                                     const std::string& traceparent) override {
    return hub_->Append(*topic_, payload, traceparent);
  }

  void AppendAsync(const std::string& payload, const std::string& traceparent,
                   AppendCallback done) override {
    hub_->AppendAsync(topic_, payload, traceparent, std::move(done));
  }

  void ReadAfter(const std::string& /*after_id*/, EventPosition after, size_t limit,
                 PageCallback done) override {
    hub_->ReadAfter(topic_, after, limit, std::move(done));
  }

  absl::StatusOr<EventPosition> ParseId(absl::string_view id) const override {
    return internal::ParseRedisId(id);
  }
  bool integer_ids() const override { return false; }
  std::string Describe() const override {
    return absl::StrCat("redis ", hub_->address(), " key ", topic_->key());
  }
  ResumeWindowBounds resume_window() const override { return window_; }
  std::shared_ptr<internal::ResumeWindowBudget> resume_window_budget() const override {
    return hub_->window_budget();
  }

 private:
  const std::shared_ptr<RedisTopicHub> hub_;
  const std::shared_ptr<RedisTopicHub::TopicState> topic_;
  const ResumeWindowBounds window_;
};

}  // namespace

std::unique_ptr<TopicBackend> NewRedisTopicBackend(RedisTopicOptions options,
                                                   std::string topic_name) {
  // hiredis writes with write(): a Redis that closes a connection must not
  // kill the process with SIGPIPE (see ignore_sigpipe.h).
  internal::IgnoreSigpipe();
  return std::make_unique<RedisTopicBackend>(options, std::move(topic_name));
}

}  // namespace gravity::server
