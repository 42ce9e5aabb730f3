// A self-signed certificate for 127.0.0.1 and localhost, made for this test
// run by Debian's openssl (P-256, valid two days), for bridges under test
// that serve TLS.
#ifndef GRAVITY_TESTS_BRIDGE_TEST_CERTIFICATE_H_
#define GRAVITY_TESTS_BRIDGE_TEST_CERTIFICATE_H_

#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace gravity::testing {

struct TestCertificate {
  std::string cert;  // PEM file paths
  std::string key;
};

// `name` tells two certificates of one test apart (rotation tests).
inline absl::StatusOr<TestCertificate> MakeTestCertificate(const std::string& name = "bridge") {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/tls-", ::getpid(), "-", name);
  TestCertificate made{dir + "/cert.pem", dir + "/key.pem"};
  const std::string command = absl::StrCat(
      "mkdir -p '", dir, "' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1",
      " -nodes -keyout '", made.key, "' -out '", made.cert,
      "' -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1,DNS:localhost",
      " >/dev/null 2>&1");
  if (std::system(command.c_str()) != 0) {
    return absl::UnavailableError(
        "openssl could not make a test certificate (Debian package openssl)");
  }
  return made;
}

}  // namespace gravity::testing

#endif  // GRAVITY_TESTS_BRIDGE_TEST_CERTIFICATE_H_
