// ResumeWindow (server/internal/resume_window.h) on its own: which resumes
// it can serve, what it serves, its bounds, and how replay reads from the log
// start it or extend it back without ever leaving a gap.
#include "server/internal/resume_window.h"

#include <memory>
#include <optional>
#include <string>
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

}  // namespace
}  // namespace gravity::server::internal
