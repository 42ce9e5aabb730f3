#include "server/internal/topic_core.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gravity/v1/options.pb.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "server/log.h"

namespace gravity::server::internal {

namespace {

using google::protobuf::FieldDescriptor;

// Replays read the log this many events at a time, then check the stream's
// queue: a replay never fills a queue past Backlogged().
constexpr size_t kReplayPageSize = 256;
// Live events held for a subscriber while its replay catches up. Past this
// it is too far behind: cut with UNAVAILABLE, as for a full stream queue
// (see StreamOptions), so that it resumes from the last id it got.
constexpr size_t kMaxPendingWhileReplaying = 8192;

bool IsInteger(FieldDescriptor::CppType type) {
  return type == FieldDescriptor::CPPTYPE_INT64 || type == FieldDescriptor::CPPTYPE_UINT64 ||
         type == FieldDescriptor::CPPTYPE_INT32 || type == FieldDescriptor::CPPTYPE_UINT32;
}

}  // namespace

absl::StatusOr<std::shared_ptr<TopicCore>> TopicCore::Create(
    std::string name, std::unique_ptr<TopicBackend> backend,
    const google::protobuf::Message& prototype) {
  const google::protobuf::Descriptor* type = prototype.GetDescriptor();
  const FieldDescriptor* id_field = nullptr;
  for (int i = 0; i < type->field_count(); ++i) {
    if (type->field(i)->options().GetExtension(gravity::v1::event_id)) {
      id_field = type->field(i);
      break;
    }
  }
  if (id_field == nullptr || id_field->is_repeated()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "topic ", name, ": ", type->full_name(),
        " has no singular field marked [(gravity.v1.event_id) = true] to carry event ids"));
  }
  if (id_field->cpp_type() != FieldDescriptor::CPPTYPE_STRING) {
    if (!IsInteger(id_field->cpp_type())) {
      return absl::InvalidArgumentError(absl::StrCat("topic ", name, ": event-id field ",
                                                     id_field->full_name(),
                                                     " must be a string or an integer"));
    }
    if (!backend->integer_ids()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "topic ", name, ": event-id field ", id_field->full_name(),
          " is an integer, but the ids of ", backend->Describe(), " are not (make it a string)"));
    }
  }
  auto core = std::make_shared<TopicCore>(std::move(name), std::move(backend), prototype, id_field);
  // The listener may use a plain pointer: Stop joins the backend's threads
  // before the core can go away.
  absl::Status started = core->backend_->Start(
      [raw = core.get()](std::vector<TopicEvent> events) { raw->OnLive(std::move(events)); });
  if (!started.ok()) {
    return absl::Status(started.code(),
                        absl::StrCat("topic ", core->name_, ": ", started.message()));
  }
  return core;
}

TopicCore::TopicCore(std::string name, std::unique_ptr<TopicBackend> backend,
                     const google::protobuf::Message& prototype,
                     const google::protobuf::FieldDescriptor* id_field)
    : name_(std::move(name)),
      backend_(std::move(backend)),
      prototype_(prototype),
      id_field_(id_field),
      window_(backend_->resume_window(), backend_->resume_window_budget()),
      window_enabled_(window_.enabled()) {}

TopicCore::~TopicCore() { Stop(); }

void TopicCore::Stop() {
  std::vector<SubscriberPtr> subscribers;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    subscribers.swap(subscribers_);
    window_.Clear();
  }
  backend_->Stop();
  // Nothing will reach them any more: UNAVAILABLE, so clients resume
  // elsewhere instead of waiting on a silent stream.
  for (const SubscriberPtr& subscriber : subscribers) {
    absl::MutexLock lock(&subscriber->mu);
    if (subscriber->state != Subscriber::State::kEnded) {
      EndLocked(*subscriber, absl::UnavailableError(absl::StrCat("topic ", name_, " stopped")));
    }
  }
}

std::string TopicCore::Payload(const google::protobuf::Message& message) const {
  std::string payload;
  // The log assigns the id: a caller's value would only be overwritten.
  if (message.GetReflection()->HasField(message, id_field_)) {
    std::unique_ptr<google::protobuf::Message> copy(message.New());
    copy->CopyFrom(message);
    copy->GetReflection()->ClearField(copy.get(), id_field_);
    copy->SerializeToString(&payload);
  } else {
    message.SerializeToString(&payload);
  }
  return payload;
}

absl::StatusOr<std::string> TopicCore::Publish(const google::protobuf::Message& message,
                                               const std::string& traceparent) {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return absl::UnavailableError(absl::StrCat("topic ", name_, " is stopped"));
  }
  absl::StatusOr<std::string> id = backend_->Append(Payload(message), traceparent);
  if (id.ok()) events_published_.fetch_add(1, std::memory_order_relaxed);
  return id;
}

void TopicCore::PublishAsync(const google::protobuf::Message& message,
                             const std::string& traceparent,
                             std::function<void(absl::StatusOr<std::string>)> done) {
  bool stopped = false;
  {
    absl::MutexLock lock(&mu_);
    stopped = stopped_;
  }
  if (stopped) {
    done(absl::UnavailableError(absl::StrCat("topic ", name_, " is stopped")));
    return;
  }
  // `this` outlives the callback: the backend calls it before its Stop
  // returns, and Stop runs before the core goes.
  backend_->AppendAsync(Payload(message), traceparent,
                        [this, done = std::move(done)](absl::StatusOr<std::string> id) {
                          if (id.ok()) events_published_.fetch_add(1, std::memory_order_relaxed);
                          done(std::move(id));
                        });
}

absl::Status TopicCore::CheckEventId(const std::string& id) const {
  if (id.empty()) return absl::OkStatus();
  absl::StatusOr<EventPosition> parsed = backend_->ParseId(id);
  if (parsed.ok()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("last-event-id \"", id,
                                                 "\" is not an event id of topic ", name_, ": ",
                                                 parsed.status().message()));
}

void TopicCore::Subscribe(std::unique_ptr<SubscriberSink> sink, const std::string& after_id) {
  auto subscriber = std::make_shared<Subscriber>(std::move(sink));
  EventPosition after;
  if (!after_id.empty()) {
    absl::StatusOr<EventPosition> parsed = backend_->ParseId(after_id);
    if (!parsed.ok()) {
      subscriber->sink->Close(CheckEventId(after_id));
      return;
    }
    after = *parsed;
  }
  bool stopped = false;
  {
    absl::MutexLock lock(&mu_);
    stopped = stopped_;
    if (!stopped) {
      // Lock order: mu_, then a subscriber's mu (never the other way).
      absl::MutexLock subscriber_lock(&subscriber->mu);
      subscriber->joined_at = live_position_;
      if (after_id.empty()) {
        subscriber->state = Subscriber::State::kLive;
        subscriber->cursor = live_position_;
      } else {
        subscriber->state = Subscriber::State::kReplaying;
        subscriber->cursor = after;
        subscriber->cursor_id = after_id;
      }
      subscribers_.erase(std::remove_if(subscribers_.begin(), subscribers_.end(),
                                        [](const SubscriberPtr& s) { return s->ended.load(); }),
                         subscribers_.end());
      subscribers_.push_back(subscriber);
      // Counted in the same critical section that makes it live: once
      // Stats() counts a subscriber, every event the log delivers from then
      // on reaches it (a live batch needs mu_ to snapshot the list). Counted
      // earlier, a publish in between was handed to a list without it, and
      // live_position_ moved past the event it then never got. MarkEnded
      // counts it out exactly once.
      subscriber_count_.fetch_add(1, std::memory_order_release);
    }
  }
  if (stopped) {
    subscriber->ended.store(true);  // never counted
    subscriber->sink->Close(absl::UnavailableError(absl::StrCat("topic ", name_, " is stopped")));
    return;
  }
  // Hooks hold the subscriber weakly: the subscriber owns the stream, which
  // owns the hooks, and a hook may fire after the topic let the subscriber
  // go. The cancel hook may run inside a Send (queue bound) with
  // subscriber->mu held, so it only flips an atomic; the list drops ended
  // subscribers lazily. They are set after the subscriber is counted, so a
  // hook never counts out one that was not counted in.
  std::weak_ptr<TopicCore> weak_core = weak_from_this();
  std::weak_ptr<Subscriber> weak_subscriber = subscriber;
  subscriber->sink->OnCancel([weak_core, weak_subscriber] {
    std::shared_ptr<TopicCore> core = weak_core.lock();
    std::shared_ptr<Subscriber> subscriber = weak_subscriber.lock();
    if (core != nullptr && subscriber != nullptr) core->MarkEnded(*subscriber);
  });
  if (!after_id.empty()) {
    subscriber->sink->OnDrained([weak_core, weak_subscriber] {
      std::shared_ptr<TopicCore> core = weak_core.lock();
      std::shared_ptr<Subscriber> subscriber = weak_subscriber.lock();
      if (core != nullptr && subscriber != nullptr) core->ResumeReplay(subscriber);
    });
  }
  // A stream that ended before its cancel hook was set never runs it.
  if (!subscriber->sink->IsOpen()) MarkEnded(*subscriber);
  if (!after_id.empty()) {
    replays_.fetch_add(1, std::memory_order_relaxed);
    Replay({subscriber});
  }
}

TopicStats TopicCore::Stats() const {
  TopicStats stats;
  stats.events_published = events_published_.load(std::memory_order_relaxed);
  stats.events_delivered = events_delivered_.load(std::memory_order_acquire);
  stats.subscribers = subscriber_count_.load(std::memory_order_acquire);
  stats.replays = replays_.load(std::memory_order_relaxed);
  stats.events_encoded = events_encoded_.load(std::memory_order_relaxed);
  stats.slow_subscribers_dropped = slow_dropped_.load(std::memory_order_relaxed);
  stats.replay_reads = replay_reads_.load(std::memory_order_relaxed);
  stats.replay_reads_shared = replay_reads_shared_.load(std::memory_order_relaxed);
  stats.replay_pages_from_window = replay_pages_from_window_.load(std::memory_order_relaxed);
  stats.replays_from_window = replays_from_window_.load(std::memory_order_relaxed);
  {
    absl::MutexLock lock(&mu_);
    stats.window_events = window_.events();
    stats.window_bytes = window_.bytes();
    stats.window_evicted_by_total = window_.evicted_by_total();
    if (window_.budget() != nullptr) stats.windows_total_bytes = window_.budget()->used();
  }
  return stats;
}

void TopicCore::OnEvent(EventObserver observer) {
  std::shared_ptr<const EventObserver> next;
  if (observer) next = std::make_shared<const EventObserver>(std::move(observer));
  absl::MutexLock lock(&mu_);
  observer_ = std::move(next);
}

void TopicCore::ReportReplayed(const EventObserver* observer, const std::vector<EventPtr>& sent) {
  if (observer == nullptr || sent.empty()) return;
  TopicDelivery delivery;
  delivery.subscribers = 1;
  delivery.replay = true;
  for (const EventPtr& event : sent) {
    delivery.id = event->id;
    delivery.traceparent = event->traceparent;
    (*observer)(delivery);
  }
}

void TopicCore::MarkEnded(Subscriber& subscriber) {
  if (!subscriber.ended.exchange(true)) subscriber_count_.fetch_sub(1, std::memory_order_relaxed);
}

void TopicCore::OnLive(std::vector<TopicEvent> events) {
  if (events.empty()) return;
  const size_t count = events.size();
  const EventPosition last = events.back().position;
  std::vector<EventPtr> parsed;
  parsed.reserve(events.size());
  for (TopicEvent& event : events) {
    absl::StatusOr<EventPtr> one = Parse(std::move(event));
    if (one.ok()) parsed.push_back(std::move(*one));
  }
  std::vector<SubscriberPtr> snapshot;
  std::shared_ptr<const EventObserver> observer;
  {
    absl::MutexLock lock(&mu_);
    observer = observer_;
    live_position_ = last;
    // In the same critical section as the snapshot: a replay page read from
    // the window before it does not have this batch, and its subscriber is
    // in the snapshot (pending); one read after it has the batch.
    window_.AppendLive(parsed, last);
    subscribers_.erase(std::remove_if(subscribers_.begin(), subscribers_.end(),
                                      [](const SubscriberPtr& s) { return s->ended.load(); }),
                       subscribers_.end());
    snapshot = subscribers_;
  }
  // Counted once the batch is in the window: Stats() never shows an event
  // delivered that a resume cannot find there yet.
  events_delivered_.fetch_add(count, std::memory_order_release);
  // Per event, the live subscribers it was sent to (only with an observer).
  std::vector<size_t> sent;
  if (observer != nullptr) sent.assign(parsed.size(), 0);
  for (const SubscriberPtr& subscriber : snapshot) {
    absl::MutexLock lock(&subscriber->mu);
    switch (subscriber->state) {
      case Subscriber::State::kEnded:
        break;
      case Subscriber::State::kReplaying:
        subscriber->pending.insert(subscriber->pending.end(), parsed.begin(), parsed.end());
        if (subscriber->pending.size() > kMaxPendingWhileReplaying) {
          slow_dropped_.fetch_add(1, std::memory_order_relaxed);
          EndLocked(*subscriber, absl::UnavailableError(absl::StrCat(
                                     "client too slow: more than ", kMaxPendingWhileReplaying,
                                     " new events arrived while replaying topic ", name_,
                                     "; resume from your last event id")));
        }
        break;
      case Subscriber::State::kLive:
        for (size_t i = 0; i < parsed.size(); ++i) {
          if (!(parsed[i]->position > subscriber->cursor)) continue;
          if (!SendLocked(*subscriber, *parsed[i])) break;
          if (observer != nullptr) ++sent[i];
        }
        break;
    }
  }
  if (observer == nullptr) return;
  TopicDelivery delivery;
  for (size_t i = 0; i < parsed.size(); ++i) {
    delivery.id = parsed[i]->id;
    delivery.traceparent = parsed[i]->traceparent;
    delivery.subscribers = sent[i];
    (*observer)(delivery);
  }
}

bool TopicCore::SendLocked(Subscriber& subscriber, const ParsedEvent& event) {
  const bool was_open = subscriber.sink->IsOpen();
  if (subscriber.sink->SendSerialized(event.wire)) {
    subscriber.cursor = event.position;
    subscriber.cursor_id = event.id;
    return true;
  }
  // An open stream that refuses a message has just hit its queue's bound
  // (cut with UNAVAILABLE); one that was already closed went away on its own.
  if (was_open) slow_dropped_.fetch_add(1, std::memory_order_relaxed);
  subscriber.state = Subscriber::State::kEnded;
  subscriber.pending.clear();
  MarkEnded(subscriber);
  return false;
}

void TopicCore::EndLocked(Subscriber& subscriber, const absl::Status& status) {
  subscriber.state = Subscriber::State::kEnded;
  subscriber.pending.clear();
  MarkEnded(subscriber);
  subscriber.sink->Close(status);
}

void TopicCore::Replay(std::vector<SubscriberPtr> work) {
  // A backend answers at once on this thread (in memory) or later on its own
  // (Redis). `call` tells the read's callback whether this loop is still in
  // the ReadAfter call (then the loop takes the waiters that want more: no
  // recursion per page) or has gone on (then the callback drives them).
  struct Call {
    absl::Mutex mu;
    bool in_call ABSL_GUARDED_BY(mu) = true;
    std::vector<SubscriberPtr> more ABSL_GUARDED_BY(mu);
  };
  while (!work.empty()) {
    SubscriberPtr subscriber = std::move(work.back());
    work.pop_back();
    std::string after_id;
    EventPosition after;
    {
      absl::MutexLock lock(&subscriber->mu);
      if (subscriber->state != Subscriber::State::kReplaying || subscriber->replay_paused) continue;
      after_id = subscriber->cursor_id;
      after = subscriber->cursor;
    }
    std::optional<ReplayPage> window_page;
    std::shared_ptr<SharedRead> read;
    bool issue = false;
    std::shared_ptr<const EventObserver> observer;
    {
      absl::MutexLock lock(&mu_);
      window_page = window_.PageAfter(after, kReplayPageSize);
      if (window_page.has_value()) {
        observer = observer_;
      } else {
        std::shared_ptr<SharedRead>& slot = reads_[after];
        if (slot == nullptr) {
          slot = std::make_shared<SharedRead>();
          slot->after = after;
          slot->issued_at = live_position_;
          issue = true;
        }
        slot->waiters.push_back(subscriber);
        read = slot;
      }
    }
    if (window_page.has_value()) {
      replay_pages_from_window_.fetch_add(1, std::memory_order_relaxed);
      std::vector<EventPtr> sent;
      const bool more = OnPage(subscriber, *window_page, /*from_window=*/true, EventPosition{},
                               observer != nullptr ? &sent : nullptr);
      ReportReplayed(observer.get(), sent);
      if (more) work.push_back(std::move(subscriber));
      continue;
    }
    if (!issue) {
      // The read under way answers this subscriber too.
      replay_reads_shared_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    replay_reads_.fetch_add(1, std::memory_order_relaxed);
    auto call = std::make_shared<Call>();
    std::weak_ptr<TopicCore> weak_core = weak_from_this();
    backend_->ReadAfter(
        after_id, after, kReplayPageSize, [weak_core, read, call](absl::StatusOr<TopicPage> page) {
          std::shared_ptr<TopicCore> core = weak_core.lock();
          if (core == nullptr) {
            // Only once the topic is gone (its Stop waits for reads): nobody
            // else can reach the read now.
            for (const SubscriberPtr& waiter : read->waiters) {
              absl::MutexLock lock(&waiter->mu);
              if (waiter->state != Subscriber::State::kReplaying) continue;
              waiter->state = Subscriber::State::kEnded;
              waiter->sink->Close(absl::UnavailableError("the topic was stopped"));
            }
            return;
          }
          std::vector<SubscriberPtr> more = core->FinishRead(*read, std::move(page));
          {
            absl::MutexLock lock(&call->mu);
            if (call->in_call) {
              call->more = std::move(more);
              return;
            }
          }
          if (!more.empty()) core->Replay(std::move(more));
        });
    absl::MutexLock lock(&call->mu);
    call->in_call = false;
    for (SubscriberPtr& more : call->more) work.push_back(std::move(more));
    call->more.clear();
  }
}

std::vector<TopicCore::SubscriberPtr> TopicCore::FinishRead(SharedRead& read,
                                                            absl::StatusOr<TopicPage> raw) {
  absl::StatusOr<ReplayPage> page =
      raw.ok() ? absl::StatusOr<ReplayPage>(ParsePage(std::move(*raw))) : raw.status();
  std::vector<SubscriberPtr> waiters;
  std::shared_ptr<const EventObserver> observer;
  {
    absl::MutexLock lock(&mu_);
    observer = observer_;
    auto it = reads_.find(read.after);
    if (it != reads_.end() && it->second.get() == &read) reads_.erase(it);
    waiters.swap(read.waiters);
    if (page.ok()) window_.AddRead(read.after, *page);
  }
  std::vector<SubscriberPtr> more;
  for (const SubscriberPtr& waiter : waiters) {
    if (!page.ok()) {
      absl::MutexLock lock(&waiter->mu);
      if (waiter->state == Subscriber::State::kReplaying) EndLocked(*waiter, page.status());
      continue;
    }
    std::vector<EventPtr> sent;
    const bool wants_more = OnPage(waiter, *page, /*from_window=*/false, read.issued_at,
                                   observer != nullptr ? &sent : nullptr);
    ReportReplayed(observer.get(), sent);
    if (wants_more) more.push_back(waiter);
  }
  return more;
}

bool TopicCore::OnPage(const SubscriberPtr& subscriber, const ReplayPage& page, bool from_window,
                       EventPosition issued_at, std::vector<EventPtr>* sent) {
  absl::ReleasableMutexLock lock(&subscriber->mu);
  if (subscriber->state != Subscriber::State::kReplaying) return false;
  if (!from_window) subscriber->read_log = true;
  // Stops early once the stream is backlogged: a replay never fills the
  // queue past half its bound, and the rest of the page is read again later.
  bool backlogged = false;
  for (const EventPtr& event : page.events) {
    if (!(event->position > subscriber->cursor)) continue;
    if (subscriber->sink->Backlogged()) {
      backlogged = true;
      break;
    }
    if (!SendLocked(*subscriber, *event)) return false;
    if (sent != nullptr) sent->push_back(event);
  }
  if (!backlogged && page.through > subscriber->cursor) {
    // Unparsable entries at the page's end (logged by Parse): never read again.
    subscriber->cursor = page.through;
    subscriber->cursor_id = page.through_id;
  }
  // A backend read that was asked for before this subscriber joined the list
  // may have missed events that reached the live feed before it joined: not
  // the end for it, read on (from the window, most likely).
  const bool at_end = page.at_end && (from_window || !(issued_at < subscriber->joined_at));
  if (!backlogged && at_end) {
    // The log is sent up to where it ended when read. Live events that came
    // meanwhile and are not sent yet are read from the log too (paced like
    // the rest); once none is left, the subscriber goes live. No live batch
    // can slip in between: it would need subscriber->mu.
    while (!subscriber->pending.empty() &&
           !(subscriber->pending.front()->position > subscriber->cursor)) {
      subscriber->pending.pop_front();
    }
    if (subscriber->pending.empty()) {
      subscriber->state = Subscriber::State::kLive;
      if (!subscriber->read_log) replays_from_window_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
  }
  if (!backlogged && !subscriber->sink->Backlogged()) return true;
  // Wait for the queue to drain (OnDrained calls ResumeReplay). It may have
  // drained between the check and now: look again once unlocked, and go on
  // here unless the hook took the replay over meanwhile.
  subscriber->replay_paused = true;
  lock.Release();
  if (subscriber->sink->Backlogged()) return false;
  absl::MutexLock relock(&subscriber->mu);
  if (!subscriber->replay_paused) return false;
  subscriber->replay_paused = false;
  return true;
}

void TopicCore::ResumeReplay(const SubscriberPtr& subscriber) {
  {
    absl::MutexLock lock(&subscriber->mu);
    if (!subscriber->replay_paused) return;
    subscriber->replay_paused = false;
  }
  Replay({subscriber});
}

ReplayPage TopicCore::ParsePage(TopicPage raw) const {
  ReplayPage page;
  page.at_end = raw.at_end;
  page.events.reserve(raw.events.size());
  if (!raw.events.empty()) {
    page.through = raw.events.back().position;
    page.through_id = raw.events.back().id;
  }
  for (TopicEvent& event : raw.events) {
    absl::StatusOr<EventPtr> parsed = Parse(std::move(event));
    if (parsed.ok()) page.events.push_back(std::move(*parsed));
  }
  return page;
}

absl::StatusOr<TopicCore::EventPtr> TopicCore::Parse(TopicEvent raw) const {
  auto event = std::make_shared<ParsedEvent>();
  event->message.reset(prototype_.New());
  if (!event->message->ParseFromString(raw.payload)) {
    Log(LogSeverity::kError, absl::StrCat("topic ", name_, ": event ", raw.id, " is not a ",
                                          prototype_.GetTypeName(), "; skipped"));
    return absl::DataLossError("unparsable event");
  }
  const google::protobuf::Reflection* reflection = event->message->GetReflection();
  google::protobuf::Message* message = event->message.get();
  bool set = true;
  switch (id_field_->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      reflection->SetString(message, id_field_, raw.id);
      break;
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t value = 0;
      set = absl::SimpleAtoi(raw.id, &value);
      if (set) reflection->SetInt64(message, id_field_, value);
      break;
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t value = 0;
      set = absl::SimpleAtoi(raw.id, &value);
      if (set) reflection->SetUInt64(message, id_field_, value);
      break;
    }
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t value = 0;
      set = absl::SimpleAtoi(raw.id, &value);
      if (set) reflection->SetInt32(message, id_field_, value);
      break;
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      uint32_t value = 0;
      set = absl::SimpleAtoi(raw.id, &value);
      if (set) reflection->SetUInt32(message, id_field_, value);
      break;
    }
    default:
      set = false;
  }
  if (!set) {
    Log(LogSeverity::kError, absl::StrCat("topic ", name_, ": event id ", raw.id, " does not fit ",
                                          id_field_->full_name(), "; skipped"));
    return absl::DataLossError("event id does not fit");
  }
  bool own_buffer = false;
  if (!grpc::SerializationTraits<google::protobuf::MessageLite>::Serialize(
           *event->message, &event->wire, &own_buffer)
           .ok()) {
    return absl::DataLossError("event does not serialize");
  }
  events_encoded_.fetch_add(1, std::memory_order_relaxed);
  event->id = std::move(raw.id);
  event->position = raw.position;
  event->traceparent = std::move(raw.traceparent);
  if (window_enabled_) {
    // What holding it costs: the message, the id, the traceparent, the event and its
    // shared_ptr control block, the window's slot.
    event->bytes = event->message->SpaceUsedLong() + event->wire.Length() + event->id.capacity() +
                   event->traceparent.capacity() + sizeof(ParsedEvent) + 2 * sizeof(void*) +
                   sizeof(ParsedEventPtr);
  }
  return EventPtr(std::move(event));
}

}  // namespace gravity::server::internal
