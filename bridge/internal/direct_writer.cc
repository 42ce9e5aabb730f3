#include "bridge/internal/direct_writer.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <utility>

#include "bridge/internal/chunked.h"

namespace gravity::bridge::internal {

void DirectWriter::Enable(int fd, bool chunked) {
  absl::MutexLock lock(&mu_);
  if (!leftover_.empty()) return;  // the session writes it first
  fd_ = fd;
  chunked_ = chunked;
}

void DirectWriter::Disable() {
  absl::MutexLock lock(&mu_);
  fd_ = -1;
}

DirectWriter::Sent DirectWriter::TrySend(absl::string_view body, int events) {
  absl::MutexLock lock(&mu_);
  if (fd_ < 0) return Sent::kNo;
  if (body.empty()) return Sent::kAll;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_send_ < kBatchGap) return Sent::kNo;
  last_send_ = now;
  char size_line[24];
  const size_t size_length = chunked_ ? ChunkSizeLine(body.size(), size_line) : 0;
  iovec parts[3] = {
      {size_line, size_length},
      {const_cast<char*>(body.data()), body.size()},
      {const_cast<char*>(kChunkEnd.data()), chunked_ ? kChunkEnd.size() : size_t{0}},
  };
  const size_t total = parts[0].iov_len + parts[1].iov_len + parts[2].iov_len;
  msghdr message{};
  message.msg_iov = parts;
  message.msg_iovlen = 3;
  ssize_t sent;
  do {
    sent = ::sendmsg(fd_, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent <= 0) {
    // Full (EAGAIN) or broken: the session's Asio write finds out which, with
    // its timeout; the read side notices a broken connection too. The events
    // stay with the relay, uncounted.
    fd_ = -1;
    return Sent::kNo;
  }
  sent_ = true;
  if (static_cast<size_t>(sent) == total) return Sent::kAll;
  size_t skip = static_cast<size_t>(sent);
  for (const iovec& part : parts) {
    if (skip >= part.iov_len) {
      skip -= part.iov_len;
      continue;
    }
    leftover_.append(static_cast<const char*>(part.iov_base) + skip, part.iov_len - skip);
    skip = 0;
  }
  leftover_events_ = events;
  fd_ = -1;
  return Sent::kPartly;
}

DirectWriter::Leftover DirectWriter::TakeLeftover() {
  absl::MutexLock lock(&mu_);
  Leftover leftover;
  leftover.bytes.swap(leftover_);
  leftover.events = std::exchange(leftover_events_, 0);
  return leftover;
}

bool DirectWriter::SentSinceLastAsked() {
  absl::MutexLock lock(&mu_);
  const bool sent = sent_;
  sent_ = false;
  return sent;
}

}  // namespace gravity::bridge::internal
