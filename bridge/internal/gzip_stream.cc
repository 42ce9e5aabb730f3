#include "bridge/internal/gzip_stream.h"

#include <cassert>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace gravity::bridge::internal {

void* GzipStream::Allocate(void* opaque, uInt items, uInt size) {
  static_cast<GzipStream*>(opaque)->state_bytes_ += static_cast<size_t>(items) * size;
  return std::calloc(items, size);
}

void GzipStream::Free(void*, void* address) { std::free(address); }

GzipStream::GzipStream(int window_bits) {
  z_.zalloc = Allocate;
  z_.zfree = Free;
  z_.opaque = this;
  // 16 + windowBits: a gzip header and trailer around the deflate data.
  [[maybe_unused]] const int ok =
      deflateInit2(&z_, kLevel, Z_DEFLATED, 16 + window_bits, kMemLevel, Z_DEFAULT_STRATEGY);
  assert(ok == Z_OK);
}

GzipStream::~GzipStream() { deflateEnd(&z_); }

void GzipStream::Append(absl::string_view piece, std::string* out) {
  if (finished_) return;
  Run(piece, Z_SYNC_FLUSH, out);
}

void GzipStream::Finish(std::string* out) {
  if (finished_) return;
  Run("", Z_FINISH, out);
  finished_ = true;
}

void GzipStream::Run(absl::string_view in, int flush, std::string* out) {
  z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z_.avail_in = static_cast<uInt>(in.size());
  // Deflate until it has taken the input and flushed everything: with a full
  // output buffer it stops early, and is called again.
  for (;;) {
    const size_t at = out->size();
    const size_t room = deflateBound(&z_, static_cast<uLong>(z_.avail_in)) + 64;
    out->resize(at + room);
    z_.next_out = reinterpret_cast<Bytef*>(out->data() + at);
    z_.avail_out = static_cast<uInt>(room);
    const int result = deflate(&z_, flush);
    out->resize(at + room - z_.avail_out);
    if (result == Z_STREAM_END || (z_.avail_in == 0 && z_.avail_out != 0)) return;
    if (result != Z_OK && result != Z_BUF_ERROR) return;  // not reached: the state is ours
  }
}

bool AcceptsGzip(absl::string_view accept_encoding) {
  for (absl::string_view item : absl::StrSplit(accept_encoding, ',')) {
    std::vector<absl::string_view> parts = absl::StrSplit(item, ';');
    const std::string coding = absl::AsciiStrToLower(absl::StripAsciiWhitespace(parts[0]));
    if (coding != "gzip" && coding != "x-gzip" && coding != "*") continue;
    double q = 1;
    for (size_t i = 1; i < parts.size(); ++i) {
      absl::string_view parameter = absl::StripAsciiWhitespace(parts[i]);
      if (absl::StartsWithIgnoreCase(parameter, "q=")) {
        if (!absl::SimpleAtod(parameter.substr(2), &q)) q = 0;
      }
    }
    if (q > 0) return true;
  }
  return false;
}

std::string Gzip(absl::string_view body) {
  GzipStream gzip;
  std::string out;
  gzip.Append(body, &out);
  gzip.Finish(&out);
  return out;
}

}  // namespace gravity::bridge::internal
