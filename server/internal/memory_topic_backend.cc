// The in-memory TopicBackend: a ring of recent events in this process.
//
// Live delivery without a thread: the publisher that finds nobody delivering
// becomes the deliverer and hands over every event appended meanwhile (by any
// thread) until none is left; other publishers only append. So events reach
// the listener in id order, one batch at a time, and a publisher never waits
// for another's delivery.
#include <algorithm>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/topic_backend.h"

namespace gravity::server {

namespace {

class InMemoryTopicBackend final : public TopicBackend {
 public:
  explicit InMemoryTopicBackend(InMemoryTopicOptions options) : options_(options) {
    if (options_.max_events == 0) options_.max_events = 1;
  }

  absl::Status Start(LiveListener listener) override {
    absl::MutexLock lock(&mu_);
    listener_ = std::move(listener);
    return absl::OkStatus();
  }

  void Stop() override {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    // A delivery in progress finishes its batch; nothing starts after.
    mu_.Await(absl::Condition(
        +[](bool* delivering) { return !*delivering; }, &delivering_));
  }

  // The trace context stays with the entry, live and in replays.
  absl::StatusOr<std::string> Append(const std::string& payload,
                                     const std::string& traceparent) override {
    const absl::Time now = absl::Now();
    std::string id;
    absl::MutexLock lock(&mu_);
    if (stopped_) return absl::UnavailableError("the topic is stopped");
    const uint64_t number = ++last_id_;
    id = absl::StrCat(number);
    TrimLocked(now);
    ring_.push_back(Entry{number, now, payload, traceparent});
    if (ring_.size() > options_.max_events) {
      trimmed_through_ = ring_.front().number;
      ring_.pop_front();
    }
    undelivered_.push_back(TopicEvent{id, EventPosition{number, 0}, payload, traceparent});
    if (delivering_ || !listener_) return id;
    delivering_ = true;
    // Set once by Start, before any Append: safe to call unlocked.
    const LiveListener* listener = &listener_;
    while (!undelivered_.empty() && !stopped_) {
      std::vector<TopicEvent> batch;
      batch.swap(undelivered_);
      mu_.Unlock();
      (*listener)(std::move(batch));
      mu_.Lock();
    }
    delivering_ = false;
    return id;
  }

  void ReadAfter(const std::string& after_id, EventPosition after, size_t limit,
                 PageCallback done) override {
    absl::StatusOr<TopicPage> page = Read(after_id, after.major, limit);
    done(std::move(page));
  }

  absl::StatusOr<EventPosition> ParseId(absl::string_view id) const override {
    uint64_t number = 0;
    if (id.empty() || id.size() > 20 || !std::all_of(id.begin(), id.end(), absl::ascii_isdigit) ||
        !absl::SimpleAtoi(id, &number)) {
      return absl::InvalidArgumentError("in-memory event ids are decimal numbers");
    }
    return EventPosition{number, 0};
  }

  bool integer_ids() const override { return true; }
  std::string Describe() const override { return "the in-memory log"; }

 private:
  struct Entry {
    uint64_t number;
    absl::Time time;
    std::string payload;
    std::string traceparent;
  };

  absl::StatusOr<TopicPage> Read(const std::string& after_id, uint64_t after, size_t limit) {
    absl::MutexLock lock(&mu_);
    TrimLocked(absl::Now());
    if (after < trimmed_through_) {
      return absl::OutOfRangeError(absl::StrCat(
          "the history after event ", after_id, " is gone: this in-memory topic keeps ",
          options_.max_events, " events for at most ", absl::FormatDuration(options_.max_age),
          " and now starts after event ", trimmed_through_, "; subscribe again without an id"));
    }
    if (after > last_id_) {
      return absl::OutOfRangeError(absl::StrCat(
          "the history after event ", after_id, " is gone: this in-memory topic's last event is ",
          last_id_, " (the server restarted and its log with it); subscribe again without an id"));
    }
    TopicPage page;
    if (!ring_.empty()) {
      size_t index = after < ring_.front().number ? 0 : after + 1 - ring_.front().number;
      for (; index < ring_.size() && page.events.size() < limit; ++index) {
        const Entry& entry = ring_[index];
        page.events.push_back(TopicEvent{absl::StrCat(entry.number), EventPosition{entry.number, 0},
                                         entry.payload, entry.traceparent});
      }
      page.at_end = index >= ring_.size();
    } else {
      page.at_end = true;
    }
    return page;
  }

  void TrimLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (!ring_.empty() && now - ring_.front().time > options_.max_age) {
      trimmed_through_ = ring_.front().number;
      ring_.pop_front();
    }
  }

  InMemoryTopicOptions options_;
  absl::Mutex mu_;
  LiveListener listener_ ABSL_GUARDED_BY(mu_);
  std::deque<Entry> ring_ ABSL_GUARDED_BY(mu_);
  uint64_t last_id_ ABSL_GUARDED_BY(mu_) = 0;
  // The newest id dropped by retention (0: none): history after an older
  // id is incomplete.
  uint64_t trimmed_through_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<TopicEvent> undelivered_ ABSL_GUARDED_BY(mu_);
  bool delivering_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

std::unique_ptr<TopicBackend> NewInMemoryTopicBackend(InMemoryTopicOptions options) {
  return std::make_unique<InMemoryTopicBackend>(options);
}

}  // namespace gravity::server
