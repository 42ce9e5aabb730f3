// GzipStream: one response body compressed as gzip (zlib, Debian's zlib1g),
// flushed after every piece (Z_SYNC_FLUSH) so that no event ever waits in the
// compressor: a browser decodes each batch of events as it arrives. The
// window is small and the hash zlib's smallest (by default 2 KiB and
// kMemLevel: about 15 KiB of zlib state per stream, state_bytes(), instead of
// zlib's default 256 KiB): a stream lives for hours and every browser accepts
// gzip, so this is paid by every idle stream. 2 KiB cover the last ten or so
// events, whose repeated JSON keys and words make SSE compress well; 512
// bytes (window bits 9) save 8 points less on chat messages (bench/run C1) for
// 6 KiB less.
//
// Also: whether a request accepts gzip, and a one-shot compression for plain
// responses.
//
// Thread-safety: a GzipStream belongs to one stream (its connection's
// strand); the free functions are thread-safe.
#ifndef GRAVITY_BRIDGE_INTERNAL_GZIP_STREAM_H_
#define GRAVITY_BRIDGE_INTERNAL_GZIP_STREAM_H_

#include <zlib.h>

#include <string>

#include "absl/strings/string_view.h"

namespace gravity::bridge::internal {

class GzipStream {
 public:
  static constexpr int kDefaultWindowBits = 11;  // 2 KiB (9, 512 bytes, is zlib's least)
  static constexpr int kMemLevel = 1;
  static constexpr int kLevel = 6;

  // `window_bits`: 9 to 15, a 2^window_bits-byte window.
  explicit GzipStream(int window_bits = kDefaultWindowBits);
  ~GzipStream();
  GzipStream(const GzipStream&) = delete;
  GzipStream& operator=(const GzipStream&) = delete;

  // Appends `piece`, compressed and flushed, to `out`.
  void Append(absl::string_view piece, std::string* out);
  // Appends the end of the gzip member (after which nothing may be appended).
  void Finish(std::string* out);

  // What zlib allocated for this stream's state.
  size_t state_bytes() const { return state_bytes_; }

 private:
  void Run(absl::string_view in, int flush, std::string* out);

  static void* Allocate(void* opaque, uInt items, uInt size);
  static void Free(void* opaque, void* address);

  z_stream z_{};
  size_t state_bytes_ = 0;
  bool finished_ = false;
};

// Whether an Accept-Encoding value accepts gzip (a "gzip" or "x-gzip" or
// "*" coding with a q-value above 0; "identity" alone does not).
bool AcceptsGzip(absl::string_view accept_encoding);

// `body` as one gzip member.
std::string Gzip(absl::string_view body);

}  // namespace gravity::bridge::internal

#endif  // GRAVITY_BRIDGE_INTERNAL_GZIP_STREAM_H_
