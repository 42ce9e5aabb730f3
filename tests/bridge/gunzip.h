// What an inflater makes of a gzip body so far (a member that may not be
// finished yet), for the tests of the bridge's compression.
#ifndef GRAVITY_TESTS_BRIDGE_GUNZIP_H_
#define GRAVITY_TESTS_BRIDGE_GUNZIP_H_

#include <zlib.h>

#include <string>

namespace gravity::testing {

inline std::string Gunzipped(const std::string& compressed) {
  z_stream z{};
  if (inflateInit2(&z, 16 + 15) != Z_OK) return "";
  std::string out(1 << 20, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  z.avail_in = static_cast<uInt>(compressed.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  inflate(&z, Z_SYNC_FLUSH);
  out.resize(out.size() - z.avail_out);
  inflateEnd(&z);
  return out;
}

}  // namespace gravity::testing

#endif  // GRAVITY_TESTS_BRIDGE_GUNZIP_H_
