#include "server/internal/resume_window.h"

#include <algorithm>
#include <utility>

namespace gravity::server::internal {

bool ResumeWindowBudget::TryCharge(size_t bytes) {
  size_t used = used_.load(std::memory_order_relaxed);
  do {
    if (bytes > max_bytes_ - used) return false;
  } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
  return true;
}

ResumeWindow::~ResumeWindow() {
  if (budget_ != nullptr) budget_->Credit(charged_);
}

void ResumeWindow::AppendLive(const std::vector<ParsedEventPtr>& events, EventPosition last) {
  if (!enabled()) return;
  live_started_ = true;
  const EventPosition had = end_;
  for (const ParsedEventPtr& event : events) {
    // A read that started the window may have had the first live events.
    if (has_base_ && !(event->position > had)) continue;
    if (!has_base_) {
      // The first live event: what came before it is not known here.
      has_base_ = true;
      base_ = event->position;
    }
    events_.push_back(event);
    bytes_ += event->bytes;
  }
  if (has_base_ && end_ < last) end_ = last;
  Trim();
}

std::optional<ReplayPage> ResumeWindow::PageAfter(EventPosition after, size_t limit) const {
  if (!enabled() || !has_base_ || after < base_ || end_ < after) return std::nullopt;
  auto it = std::upper_bound(events_.begin(), events_.end(), after,
                             [](const EventPosition& position, const ParsedEventPtr& event) {
                               return position < event->position;
                             });
  ReplayPage page;
  for (; it != events_.end() && page.events.size() < limit; ++it) page.events.push_back(*it);
  page.at_end = it == events_.end();
  if (!page.events.empty()) {
    page.through = page.events.back()->position;
    page.through_id = page.events.back()->id;
  }
  return page;
}

void ResumeWindow::AddRead(EventPosition after, const ReplayPage& page) {
  if (!enabled()) return;
  if (!has_base_) {
    // Before any live event, a read that reached the log's end starts the
    // window: every later entry comes live (the first ones maybe twice:
    // AppendLive skips what it has).
    if (live_started_ || !page.at_end) return;
    size_t bytes = 0;
    for (const ParsedEventPtr& event : page.events) bytes += event->bytes;
    if (page.events.size() > bounds_.max_events || bytes > bounds_.max_bytes) return;
    if (budget_ != nullptr && !budget_->TryCharge(bytes)) return;
    charged_ += bytes;
    events_.assign(page.events.begin(), page.events.end());
    bytes_ = bytes;
    has_base_ = true;
    base_ = after;
    end_ = std::max(after, page.through);
    return;
  }
  // Older than the window, and reaching into it: the log between `after` and
  // the window is all in the page.
  if (!(after < base_) || page.through < base_) return;
  std::vector<ParsedEventPtr> older;
  size_t bytes = 0;
  for (const ParsedEventPtr& event : page.events) {
    const bool before_window =
        events_.empty() ? !(event->position > base_) : event->position < events_.front()->position;
    if (!before_window) break;
    older.push_back(event);
    bytes += event->bytes;
  }
  if (events_.size() + older.size() > bounds_.max_events || bytes_ + bytes > bounds_.max_bytes) {
    return;
  }
  if (budget_ != nullptr && !budget_->TryCharge(bytes)) return;
  charged_ += bytes;
  events_.insert(events_.begin(), older.begin(), older.end());
  bytes_ += bytes;
  base_ = after;
}

void ResumeWindow::Clear() {
  events_.clear();
  bytes_ = 0;
  if (budget_ != nullptr) budget_->Credit(charged_);
  charged_ = 0;
  has_base_ = false;
  live_started_ = true;  // nothing may start it again
}

void ResumeWindow::DropOldest() {
  base_ = std::max(base_, events_.front()->position);
  bytes_ -= events_.front()->bytes;
  events_.pop_front();
}

void ResumeWindow::Trim() {
  while (!events_.empty() && (events_.size() > bounds_.max_events || bytes_ > bounds_.max_bytes)) {
    DropOldest();
  }
  if (budget_ == nullptr) {
    charged_ = bytes_;  // nothing to settle with
    return;
  }
  // Grown: charge the growth, making room from the window's own oldest
  // events (bytes_ > charged_ means some are left). The window's promise
  // holds whatever goes: base_ moves up to the last event dropped.
  while (bytes_ > charged_) {
    if (budget_->TryCharge(bytes_ - charged_)) {
      charged_ = bytes_;
      break;
    }
    DropOldest();
    ++evicted_by_total_;
  }
  if (charged_ > bytes_) {
    budget_->Credit(charged_ - bytes_);
    charged_ = bytes_;
  }
}

}  // namespace gravity::server::internal
