// ResumeWindow (server/internal/resume_window.h) on its own: which resumes
// it can serve, what it serves, its bounds, and how replay reads from the log
// start it or extend it back without ever leaving a gap; several windows
// sharing one ResumeWindowBudget (the Redis hub's cap on them all).
#include "server/internal/resume_window.h"

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace gravity::server::internal {
namespace {

ParsedEventPtr Event(uint64_t n, size_t bytes = 100) {
  auto event = std::make_shared<ParsedEvent>();
  event->id = absl::StrCat(n);
  event->position = EventPosition{n, 0};
  event->bytes = bytes;
  return event;
}

// Events first..last, every one.
std::vector<ParsedEventPtr> Events(uint64_t first, uint64_t last, size_t bytes = 100) {
  std::vector<ParsedEventPtr> events;
  for (uint64_t n = first; n <= last; ++n) events.push_back(Event(n, bytes));
  return events;
}

EventPosition At(uint64_t n) { return EventPosition{n, 0}; }

std::vector<uint64_t> Numbers(const ReplayPage& page) {
  std::vector<uint64_t> numbers;
  for (const ParsedEventPtr& event : page.events) numbers.push_back(event->position.major);
  return numbers;
}

// A page read from the log after `after`: events after..last.
ReplayPage Read(uint64_t after, uint64_t last, bool at_end) {
  ReplayPage page;
  page.events = Events(after + 1, last);
  if (!page.events.empty()) {
    page.through = At(last);
    page.through_id = absl::StrCat(last);
  }
  page.at_end = at_end;
  return page;
}

TEST(ResumeWindowTest, ServesFromItsFirstLiveEventToTheLastPosition) {
  ResumeWindow window({100, 1 << 20});
  EXPECT_FALSE(window.PageAfter(At(0), 10).has_value());  // nothing yet
  window.AppendLive(Events(11, 20), At(20));
  // What came before event 11 is not known here.
  EXPECT_FALSE(window.PageAfter(At(10), 10).has_value());
  std::optional<ReplayPage> page = window.PageAfter(At(11), 100);
  ASSERT_TRUE(page.has_value());
  EXPECT_EQ(Numbers(*page), (std::vector<uint64_t>{12, 13, 14, 15, 16, 17, 18, 19, 20}));
  EXPECT_TRUE(page->at_end);
  page = window.PageAfter(At(14), 3);
  ASSERT_TRUE(page.has_value());
  EXPECT_EQ(Numbers(*page), (std::vector<uint64_t>{15, 16, 17}));
  EXPECT_FALSE(page->at_end);
  EXPECT_EQ(page->through, At(17));
  page = window.PageAfter(At(20), 10);  // the usual resume: nothing missed
  ASSERT_TRUE(page.has_value());
  EXPECT_TRUE(page->events.empty());
  EXPECT_TRUE(page->at_end);
  // Past its end (the log may be ahead of the live feed): the log's to answer.
  EXPECT_FALSE(window.PageAfter(At(21), 10).has_value());
  // An unparsable last entry (21, not in the batch) still moves the end.
  window.AppendLive({}, At(21));
  EXPECT_TRUE(window.PageAfter(At(21), 10).has_value());
}

TEST(ResumeWindowTest, KeepsAtMostItsEventsAndBytes) {
  ResumeWindow by_count({10, 1 << 20});
  by_count.AppendLive(Events(1, 25), At(25));
  EXPECT_EQ(by_count.events(), 10u);
  EXPECT_EQ(by_count.bytes(), 1000u);
  EXPECT_EQ(by_count.base(), At(15));  // every event after 15 is in it
  EXPECT_FALSE(by_count.PageAfter(At(14), 100).has_value());
  EXPECT_EQ(Numbers(*by_count.PageAfter(At(15), 100)).size(), 10u);

  ResumeWindow by_bytes({1000, 1050});
  by_bytes.AppendLive(Events(1, 25), At(25));
  EXPECT_EQ(by_bytes.events(), 10u);
  EXPECT_EQ(by_bytes.bytes(), 1000u);
  // One event larger than the bound: none kept, the end still served.
  by_bytes.AppendLive({Event(26, 5000)}, At(26));
  EXPECT_EQ(by_bytes.events(), 0u);
  EXPECT_EQ(by_bytes.bytes(), 0u);
  EXPECT_FALSE(by_bytes.PageAfter(At(25), 10).has_value());
  ASSERT_TRUE(by_bytes.PageAfter(At(26), 10).has_value());

  ResumeWindow off({0, 1 << 20});
  EXPECT_FALSE(off.enabled());
  off.AppendLive(Events(1, 5), At(5));
  EXPECT_EQ(off.events(), 0u);
  EXPECT_FALSE(off.PageAfter(At(3), 10).has_value());
}

TEST(ResumeWindowTest, AReadThatReachesIntoTheWindowExtendsItBack) {
  ResumeWindow window({100, 1 << 20});
  window.AppendLive(Events(51, 60), At(60));
  // A read after 40 that stops short of the window leaves a gap: ignored.
  window.AddRead(At(40), Read(40, 49, false));
  EXPECT_FALSE(window.PageAfter(At(40), 100).has_value());
  // One that reaches it (through 52): the window now starts after 40.
  window.AddRead(At(40), Read(40, 52, false));
  std::optional<ReplayPage> page = window.PageAfter(At(40), 100);
  ASSERT_TRUE(page.has_value());
  std::vector<uint64_t> want;
  for (uint64_t n = 41; n <= 60; ++n) want.push_back(n);
  EXPECT_EQ(Numbers(*page), want);  // 51 and 52 once
  EXPECT_EQ(window.events(), 20u);
  // One that does not fit whole is left out.
  ResumeWindow small({15, 1 << 20});
  small.AppendLive(Events(51, 60), At(60));
  small.AddRead(At(40), Read(40, 55, false));
  EXPECT_FALSE(small.PageAfter(At(40), 100).has_value());
  EXPECT_EQ(small.events(), 10u);
}

TEST(ResumeWindowTest, BeforeAnyLiveEventAReadToTheLogsEndStartsIt) {
  ResumeWindow window({100, 1 << 20});
  window.AddRead(At(40), Read(40, 45, /*at_end=*/false));  // more followed: no
  EXPECT_FALSE(window.PageAfter(At(40), 100).has_value());
  window.AddRead(At(40), Read(40, 50, /*at_end=*/true));
  std::optional<ReplayPage> page = window.PageAfter(At(40), 100);
  ASSERT_TRUE(page.has_value());
  EXPECT_EQ(Numbers(*page).size(), 10u);
  EXPECT_TRUE(page->at_end);
  // The live feed starts where the topic started (before the read's end):
  // what the window has already is not added twice.
  window.AppendLive(Events(48, 53), At(53));
  page = window.PageAfter(At(40), 100);
  ASSERT_TRUE(page.has_value());
  std::vector<uint64_t> want;
  for (uint64_t n = 41; n <= 53; ++n) want.push_back(n);
  EXPECT_EQ(Numbers(*page), want);

  // Once a live event came, a read alone never starts it (the live feed
  // may have passed what the read saw).
  ResumeWindow late({100, 1 << 20});
  late.AppendLive({}, At(70));  // unparsable: no base yet
  late.AddRead(At(40), Read(40, 50, true));
  EXPECT_FALSE(late.PageAfter(At(40), 100).has_value());
}

// What a window promises, checked from every position it claims to serve:
// each resume after `after` in [base, end] gets exactly the events of
// `log` after it up to the end, in order; a resume before base is refused
// (the log's to answer). `log` holds every parsable event, in order.
void ExpectServesExactly(const ResumeWindow& window, const std::vector<uint64_t>& log) {
  if (!window.has_base()) return;
  const uint64_t base = window.base().major;
  const uint64_t end = window.end().major;
  if (base > 0) {
    EXPECT_FALSE(window.PageAfter(At(base - 1), 1 << 20).has_value()) << "before " << base;
  }
  for (uint64_t after = base; after <= end; ++after) {
    std::optional<ReplayPage> page = window.PageAfter(At(after), 1 << 20);
    ASSERT_TRUE(page.has_value()) << "after " << after;
    std::vector<uint64_t> want;
    for (uint64_t n : log) {
      if (n > after && n <= end) want.push_back(n);
    }
    EXPECT_EQ(Numbers(*page), want) << "after " << after;
    EXPECT_TRUE(page->at_end);
  }
}

TEST(ResumeWindowBudgetTest, ChargesUpToItsCapAndNoFurther) {
  ResumeWindowBudget budget(1000);
  EXPECT_TRUE(budget.TryCharge(600));
  EXPECT_FALSE(budget.TryCharge(401));
  EXPECT_TRUE(budget.TryCharge(400));
  EXPECT_EQ(budget.used(), 1000u);
  EXPECT_FALSE(budget.TryCharge(1));
  budget.Credit(1000);
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_FALSE(budget.TryCharge(1001));
}

TEST(ResumeWindowBudgetTest, AGrowingWindowDropsItsOwnOldestEventsNeverAnothers) {
  auto budget = std::make_shared<ResumeWindowBudget>(3000);  // 30 events of 100 B
  ResumeWindow a({100, 1 << 20}, budget);
  ResumeWindow b({100, 1 << 20}, budget);
  a.AppendLive(Events(1, 20), At(20));
  EXPECT_EQ(budget->used(), 2000u);
  EXPECT_EQ(a.evicted_by_total(), 0u);

  // b's 15 do not all fit next to a's 20: b drops its own 5 oldest.
  b.AppendLive(Events(101, 115), At(115));
  EXPECT_EQ(budget->used(), 3000u);
  EXPECT_EQ(a.events(), 20u);
  EXPECT_EQ(b.events(), 10u);
  EXPECT_EQ(b.bytes(), 1000u);
  EXPECT_EQ(b.evicted_by_total(), 5u);
  EXPECT_EQ(b.base(), At(105));
  // A resume b no longer holds falls back to the log; the rest is served.
  EXPECT_FALSE(b.PageAfter(At(104), 100).has_value());
  EXPECT_EQ(Numbers(*b.PageAfter(At(105), 100)),
            (std::vector<uint64_t>{106, 107, 108, 109, 110, 111, 112, 113, 114, 115}));
  std::vector<uint64_t> b_log;
  for (uint64_t n = 101; n <= 115; ++n) b_log.push_back(n);
  ExpectServesExactly(b, b_log);

  // a grows again: it makes room from its own oldest, b keeps all it has.
  a.AppendLive(Events(21, 25), At(25));
  EXPECT_EQ(budget->used(), 3000u);
  EXPECT_EQ(a.events(), 20u);
  EXPECT_EQ(a.base(), At(5));
  EXPECT_EQ(a.evicted_by_total(), 5u);
  EXPECT_EQ(b.events(), 10u);
  std::vector<uint64_t> a_log;
  for (uint64_t n = 1; n <= 25; ++n) a_log.push_back(n);
  ExpectServesExactly(a, a_log);

  // Dropped by its own bounds, the budget is credited: not counted as
  // evicted by the total.
  ResumeWindow small({5, 1 << 20}, budget);
  a.Clear();
  EXPECT_EQ(budget->used(), 1000u);
  small.AppendLive(Events(201, 210), At(210));
  EXPECT_EQ(small.events(), 5u);
  EXPECT_EQ(small.evicted_by_total(), 0u);
  EXPECT_EQ(budget->used(), 1500u);
}

TEST(ResumeWindowBudgetTest, AWindowWhoseNewestEventsDoNotFitEmptiesAndMovesPastThem) {
  auto budget = std::make_shared<ResumeWindowBudget>(1000);
  ResumeWindow full({100, 1 << 20}, budget);
  full.AppendLive(Events(1, 10), At(10));
  EXPECT_EQ(budget->used(), 1000u);

  ResumeWindow starved({100, 1 << 20}, budget);
  starved.AppendLive(Events(41, 43), At(43));
  EXPECT_EQ(starved.events(), 0u);
  EXPECT_EQ(starved.bytes(), 0u);
  EXPECT_EQ(starved.evicted_by_total(), 3u);
  EXPECT_EQ(budget->used(), 1000u);
  // It holds nothing, and promises nothing it does not hold: resumes before
  // its last event read the log; one from the end is served (nothing after).
  EXPECT_FALSE(starved.PageAfter(At(40), 100).has_value());
  EXPECT_FALSE(starved.PageAfter(At(42), 100).has_value());
  std::optional<ReplayPage> page = starved.PageAfter(At(43), 100);
  ASSERT_TRUE(page.has_value());
  EXPECT_TRUE(page->events.empty());
  EXPECT_TRUE(page->at_end);

  // A window that had events and gets one larger than what is free: it
  // drops everything it has, the new one too.
  ResumeWindow mixed({100, 1 << 20}, std::make_shared<ResumeWindowBudget>(1000));
  mixed.AppendLive(Events(1, 5), At(5));
  mixed.AppendLive({Event(6, 1200)}, At(6));
  EXPECT_EQ(mixed.events(), 0u);
  EXPECT_EQ(mixed.budget()->used(), 0u);
  EXPECT_EQ(mixed.evicted_by_total(), 6u);
  EXPECT_FALSE(mixed.PageAfter(At(5), 100).has_value());
  ASSERT_TRUE(mixed.PageAfter(At(6), 100).has_value());
  // The next that fit are kept again, from there.
  mixed.AppendLive(Events(7, 8), At(8));
  EXPECT_EQ(mixed.events(), 2u);
  ExpectServesExactly(mixed, {7, 8});
  EXPECT_FALSE(mixed.PageAfter(At(5), 100).has_value());
}

TEST(ResumeWindowBudgetTest, DestroyingOrClearingAWindowReturnsItsBytes) {
  auto budget = std::make_shared<ResumeWindowBudget>(3000);
  auto a = std::make_unique<ResumeWindow>(ResumeWindowBounds{100, 1 << 20}, budget);
  ResumeWindow b({100, 1 << 20}, budget);
  a->AppendLive(Events(1, 20), At(20));
  b.AppendLive(Events(101, 110), At(110));
  EXPECT_EQ(budget->used(), 3000u);
  a.reset();
  EXPECT_EQ(budget->used(), 1000u);
  // Now b grows without dropping anything.
  b.AppendLive(Events(111, 130), At(130));
  EXPECT_EQ(b.events(), 30u);
  EXPECT_EQ(b.evicted_by_total(), 0u);
  EXPECT_EQ(budget->used(), 3000u);
  b.Clear();
  EXPECT_EQ(budget->used(), 0u);
}

TEST(ResumeWindowBudgetTest, AReadJoinsTheWindowOnlyWhenTheBudgetHasRoomForIt) {
  auto budget = std::make_shared<ResumeWindowBudget>(2500);
  ResumeWindow window({100, 1 << 20}, budget);
  window.AppendLive(Events(51, 60), At(60));
  // 10 older events (41..50) would take the total to 2000: they fit.
  window.AddRead(At(40), Read(40, 52, false));
  EXPECT_EQ(window.events(), 20u);
  EXPECT_EQ(budget->used(), 2000u);
  // 10 more (31..40) would take it to 3000: left out, nothing evicted for
  // them (a read never makes room), the window as it was.
  window.AddRead(At(30), Read(30, 45, false));
  EXPECT_EQ(window.events(), 20u);
  EXPECT_EQ(window.evicted_by_total(), 0u);
  EXPECT_EQ(budget->used(), 2000u);
  EXPECT_FALSE(window.PageAfter(At(30), 100).has_value());
  std::vector<uint64_t> log;
  for (uint64_t n = 41; n <= 60; ++n) log.push_back(n);
  ExpectServesExactly(window, log);

  // Before any live event, a read to the log's end starts a window only if
  // it fits the budget.
  ResumeWindow fresh({100, 1 << 20}, budget);
  fresh.AddRead(At(0), Read(0, 10, /*at_end=*/true));  // 1000 B: no room
  EXPECT_FALSE(fresh.has_base());
  EXPECT_EQ(budget->used(), 2000u);
  fresh.AddRead(At(5), Read(5, 10, /*at_end=*/true));  // 500 B: fits
  EXPECT_TRUE(fresh.has_base());
  EXPECT_EQ(budget->used(), 2500u);
  ExpectServesExactly(fresh, {6, 7, 8, 9, 10});
}

// Windows of different topics on different threads (as topics' cores use
// them, each under its own lock): the total never passes the cap, each
// window keeps serving exactly its latest events, and every byte comes back.
TEST(ResumeWindowBudgetTest, WindowsOnManyThreadsShareTheCap) {
  constexpr size_t kCap = 64 * 1024;
  constexpr int kThreads = 4;
  constexpr uint64_t kEvents = 3000;
  auto budget = std::make_shared<ResumeWindowBudget>(kCap);
  std::atomic<bool> over{false};  // the cap passed, or a gap
  std::atomic<int> running{kThreads};
  std::vector<std::unique_ptr<ResumeWindow>> windows;
  for (int t = 0; t < kThreads; ++t) {
    windows.push_back(std::make_unique<ResumeWindow>(ResumeWindowBounds{1000, 1 << 20}, budget));
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ResumeWindow& window = *windows[t];
      for (uint64_t n = 1; n <= kEvents; n += 3) {
        // Batches of 3, of 100 to 400 bytes each.
        std::vector<ParsedEventPtr> batch;
        for (uint64_t k = n; k < n + 3; ++k) batch.push_back(Event(k, 100 + (k * 37 + t) % 300));
        window.AppendLive(batch, At(n + 2));
        if (budget->used() > kCap) over = true;
        // Every position after base up to end, maybe base's own event too.
        const uint64_t span = window.end().major - window.base().major;
        if (window.events() < span || window.events() > span + 1) over = true;
      }
      running.fetch_sub(1);
    });
  }
  while (running.load() > 0) {
    if (budget->used() > kCap) over = true;
    std::this_thread::yield();
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_FALSE(over.load());
  size_t held = 0;
  uint64_t evicted = 0;
  for (const auto& window : windows) {
    held += window->bytes();
    evicted += window->evicted_by_total();
    std::vector<uint64_t> log;
    for (uint64_t n = window->base().major + 1; n <= window->end().major; ++n) log.push_back(n);
    EXPECT_EQ(window->events(), log.size());
    ExpectServesExactly(*window, log);
  }
  EXPECT_EQ(budget->used(), held);
  EXPECT_LE(held, kCap);
  EXPECT_GT(evicted, 0u);
  windows.clear();
  EXPECT_EQ(budget->used(), 0u);
}

}  // namespace
}  // namespace gravity::server::internal
