// JWT guards (server/jwt.h): which tokens get through, claims for handlers,
// key rotation, and a stream ended when its token expires.
#include "server/jwt.h"

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "server/service.h"
#include "streaming/v1/streaming.grpc.pb.h"
#include "tests/server/test_server.h"

namespace gravity::server {
namespace {

using streaming::v1::PingReply;
using streaming::v1::PingRequest;

// A key pair made for the test run (no key material in the repository).
struct TestKey {
  std::string kid;
  jwt_alg_t alg;
  std::string private_pem;  // or the HS256 secret
  std::string public_pem;
  std::string jwk;  // its public JWKS entry
};

std::string Pem(EVP_PKEY* key, bool private_key) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (private_key) {
    PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  } else {
    PEM_write_bio_PUBKEY(bio, key);
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(size));
  BIO_free(bio);
  return pem;
}

std::string B64(const std::string& bytes) {
  std::string out;
  absl::WebSafeBase64Escape(bytes, &out);
  return out;
}

std::string BnParam(EVP_PKEY* key, const char* name) {
  BIGNUM* number = nullptr;
  EVP_PKEY_get_bn_param(key, name, &number);
  std::string bytes(static_cast<size_t>(BN_num_bytes(number)), '\0');
  BN_bn2bin(number, reinterpret_cast<unsigned char*>(bytes.data()));
  BN_free(number);
  return bytes;
}

TestKey RsaKey(const std::string& kid) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
  TestKey out{kid, JWT_ALG_RS256, Pem(key, true), Pem(key, false), ""};
  out.jwk = absl::StrCat(R"({"kty":"RSA","use":"sig","alg":"RS256","kid":")", kid, R"(","n":")",
                         B64(BnParam(key, OSSL_PKEY_PARAM_RSA_N)), R"(","e":")",
                         B64(BnParam(key, OSSL_PKEY_PARAM_RSA_E)), R"("})");
  EVP_PKEY_free(key);
  return out;
}

TestKey EcKey(const std::string& kid) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  unsigned char point[65];
  size_t length = 0;
  EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point), &length);
  EXPECT_EQ(length, 65u);
  const std::string x(reinterpret_cast<char*>(point) + 1, 32);
  const std::string y(reinterpret_cast<char*>(point) + 33, 32);
  TestKey out{kid, JWT_ALG_ES256, Pem(key, true), Pem(key, false), ""};
  out.jwk = absl::StrCat(R"({"kty":"EC","crv":"P-256","kid":")", kid, R"(","x":")", B64(x),
                         R"(","y":")", B64(y), R"("})");
  EVP_PKEY_free(key);
  return out;
}

TestKey HmacKey(const std::string& kid) {
  const std::string secret = "an-hs256-secret-of-at-least-32-bytes!";
  return {kid, JWT_ALG_HS256, secret, secret,
          absl::StrCat(R"({"kty":"oct","kid":")", kid, R"(","k":")", B64(secret), R"("})")};
}

int64_t Now() { return absl::ToUnixSeconds(absl::Now()); }

// Signs `claims` (a JSON object) with `key`; `with_kid` puts its kid in the header.
std::string Mint(const TestKey& key, const std::string& claims, bool with_kid = true) {
  jwt_t* jwt = nullptr;
  jwt_new(&jwt);
  EXPECT_EQ(jwt_add_grants_json(jwt, claims.c_str()), 0) << claims;
  if (with_kid && !key.kid.empty()) jwt_add_header(jwt, "kid", key.kid.c_str());
  EXPECT_EQ(
      jwt_set_alg(jwt, key.alg, reinterpret_cast<const unsigned char*>(key.private_pem.data()),
                  static_cast<int>(key.private_pem.size())),
      0);
  char* encoded = jwt_encode_str(jwt);
  std::string token = encoded == nullptr ? "" : encoded;
  free(encoded);
  jwt_free(jwt);
  EXPECT_FALSE(token.empty());
  return token;
}

std::string ValidClaims(int64_t expires_in = 600) {
  return absl::StrCat(R"({"sub":"ada","role":"admin","iss":"https://auth.test/","aud":"gravity",)",
                      R"("exp":)", Now() + expires_in, "}");
}

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/gravity-jwt-XXXXXX";
    path_ = mkdtemp(pattern);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  // Writes by rename, as a deployment should, so a reader never sees half a file.
  std::string Write(const std::string& name, const std::string& text) const {
    const std::string path = path_ + "/" + name;
    {
      std::ofstream out(path + ".tmp", std::ios::binary);
      out << text;
    }
    std::filesystem::rename(path + ".tmp", path);
    return path;
  }

 private:
  std::string path_;
};

std::string Jwks(std::initializer_list<const TestKey*> keys) {
  std::string out = R"({"keys":[)";
  const char* comma = "";
  for (const TestKey* key : keys) {
    absl::StrAppend(&out, comma, key->jwk);
    comma = ",";
  }
  return out + "]}";
}

CallInfo Call(const std::string& token, const char* key = "authorization") {
  std::multimap<std::string, std::string> metadata;
  if (!token.empty()) {
    metadata.emplace(key, std::string(key) == "authorization" ? "Bearer " + token : token);
  }
  return CallInfo("/streaming.v1.Streaming/Ping", std::move(metadata));
}

class JwtGuardTest : public ::testing::Test {
 protected:
  JwtGuardTest() : rsa_(RsaKey("rsa-1")), ec_(EcKey("ec-1")), hmac_(HmacKey("hmac-1")) {}

  Guard Make(JwtOptions options) {
    options.issuer = "https://auth.test/";
    options.audience = "gravity";
    absl::StatusOr<Guard> guard = RequireJwt(std::move(options));
    EXPECT_TRUE(guard.ok()) << guard.status();
    return guard.ok() ? *guard : Guard();
  }
  Guard FromPem() {
    JwtOptions options;
    options.key_files = {dir_.Write("rsa.pem", rsa_.public_pem)};
    return Make(options);
  }

  TempDir dir_;
  TestKey rsa_, ec_, hmac_;
};

// The reason a guard gave, for messages that say which check failed.
std::string Refusal(const Guard& guard, const CallInfo& call) {
  grpc::Status status = guard(call);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << status.error_message();
  return status.error_message();
}

TEST_F(JwtGuardTest, AValidTokenPassesAndItsClaimsReachTheCall) {
  Guard guard = FromPem();
  const int64_t exp = Now() + 600;
  CallInfo call =
      Call(Mint(rsa_, absl::StrCat(R"({"sub":"ada","role":"admin",)",
                                   R"("iss":"https://auth.test/","aud":["x","gravity"],)",
                                   R"("exp":)", exp, "}")));
  ASSERT_TRUE(guard(call).ok()) << guard(call).error_message();
  ASSERT_NE(call.jwt(), nullptr);
  EXPECT_EQ(call.jwt()->subject(), "ada");
  EXPECT_TRUE(call.jwt()->Has("role", "admin"));
  EXPECT_EQ(call.jwt()->expires_at(), absl::FromUnixSeconds(exp));
  // Streams end when the guard would stop accepting the token: exp + leeway.
  EXPECT_EQ(call.credentials_expire_at(), absl::FromUnixSeconds(exp) + JwtOptions().leeway);
}

TEST_F(JwtGuardTest, ExpiredNotYetValidWrongAudienceAndWrongIssuerAreRefused) {
  Guard guard = FromPem();
  EXPECT_NE(Refusal(guard, Call(Mint(rsa_, ValidClaims(-60)))).find("expired"), std::string::npos);
  EXPECT_NE(Refusal(guard, Call(Mint(rsa_, absl::StrCat(R"({"iss":"https://auth.test/",)",
                                                        R"("aud":"gravity","exp":)", Now() + 600,
                                                        R"(,"nbf":)", Now() + 300, "}"))))
                .find("not valid yet"),
            std::string::npos);
  EXPECT_NE(Refusal(guard, Call(Mint(rsa_, absl::StrReplaceAll(ValidClaims(), {{"\"gravity\"",
                                                                                "\"other"
                                                                                "\""}}))))
                .find("audience"),
            std::string::npos);
  EXPECT_NE(
      Refusal(guard,
              Call(Mint(rsa_, absl::StrReplaceAll(ValidClaims(), {{"auth.test", "evil.test"}}))))
          .find("issuer"),
      std::string::npos);
  // Within the leeway, a token a few seconds past exp still passes.
  EXPECT_TRUE(guard(Call(Mint(rsa_, ValidClaims(-2)))).ok());
}

TEST_F(JwtGuardTest, ATokenWithoutExpIsRefusedUnlessAllowed) {
  const std::string claims = R"({"iss":"https://auth.test/","aud":"gravity"})";
  EXPECT_NE(Refusal(FromPem(), Call(Mint(rsa_, claims))).find("exp"), std::string::npos);
  JwtOptions options;
  options.key_files = {dir_.Write("rsa.pem", rsa_.public_pem)};
  options.require_exp = false;
  CallInfo call = Call(Mint(rsa_, claims));
  EXPECT_TRUE(Make(options)(call).ok());
  EXPECT_EQ(call.credentials_expire_at(), absl::InfiniteFuture());
}

TEST_F(JwtGuardTest, ClaimTimesThatAreNotTimesAreRefused) {
  Guard guard = FromPem();
  const std::string base = R"({"iss":"https://auth.test/","aud":"gravity",)";
  for (const char* exp : {"1e300", "-1e300", "\"tomorrow\"", "true"}) {
    EXPECT_NE(
        Refusal(guard, Call(Mint(rsa_, absl::StrCat(base, R"("exp":)", exp, "}")))).find("exp"),
        std::string::npos)
        << exp;
  }
  EXPECT_NE(Refusal(guard, Call(Mint(rsa_, base + R"("exp":4102444800,"nbf":1e300})"))).find("nbf"),
            std::string::npos);
}

TEST_F(JwtGuardTest, ABadSignatureIsRefused) {
  Guard guard = FromPem();
  TestKey other = RsaKey("rsa-1");  // same kid, another key
  EXPECT_NE(Refusal(guard, Call(Mint(other, ValidClaims()))).find("does not verify"),
            std::string::npos);
  // A valid token with its payload changed (role upgraded) no longer verifies.
  std::string token = Mint(rsa_, R"({"role":"user","exp":)" + std::to_string(Now() + 60) + "}");
  const size_t first = token.find('.');
  const size_t second = token.find('.', first + 1);
  const std::string forged =
      token.substr(0, first + 1) +
      B64(R"({"role":"admin","iss":"https://auth.test/","aud":"gravity","exp":)" +
          std::to_string(Now() + 60) + "}") +
      token.substr(second);
  Refusal(guard, Call(forged));
}

TEST_F(JwtGuardTest, UnsignedAndAlgorithmConfusedTokensAreRefused) {
  Guard guard = FromPem();
  const std::string payload = B64(ValidClaims());
  for (const char* alg : {"none", "None", "NONE"}) {
    const std::string header = B64(absl::StrCat(R"({"alg":")", alg, R"(","typ":"JWT"})"));
    EXPECT_NE(Refusal(guard, Call(header + "." + payload + ".")).find("alg"), std::string::npos);
    Refusal(guard, Call(header + "." + payload + ".c2ln"));
  }
  // The RSA public key, public by definition, used as an HMAC secret: the
  // classic confusion. The key verifies RS256 only.
  TestKey confused{"rsa-1", JWT_ALG_HS256, rsa_.public_pem, "", ""};
  Refusal(guard, Call(Mint(confused, ValidClaims())));
  // An algorithm we do not take.
  const std::string rs512 = B64(R"({"alg":"RS512","kid":"rsa-1"})");
  EXPECT_NE(Refusal(guard, Call(rs512 + "." + payload + ".c2ln")).find("not accepted"),
            std::string::npos);
}

TEST_F(JwtGuardTest, GarbageAndMissingTokensAreRefusedWithAReason) {
  Guard guard = FromPem();
  EXPECT_NE(Refusal(guard, Call("")).find("missing"), std::string::npos);
  for (const std::string& garbage :
       {std::string("x"), std::string("a.b"), std::string("a.b.c.d"), std::string("...."),
        std::string("%%%.%%%.%%%"), B64("[1]") + ".e30.c2ln", std::string(20000, 'a')}) {
    Refusal(guard, Call(garbage));
  }
  CallInfo basic("/m", {{"authorization", "Basic YTpi"}});
  Refusal(guard, basic);
}

TEST_F(JwtGuardTest, TheTokenMayComeFromACookie) {
  JwtOptions options;
  options.key_files = {dir_.Write("ec.pem", ec_.public_pem)};
  options.cookie = "access_token";
  Guard guard = Make(options);
  const std::string token = Mint(ec_, ValidClaims());
  CallInfo call("/m", {{"cookie", "theme=dark; access_token=" + token + "; lang=en"}});
  ASSERT_TRUE(guard(call).ok()) << guard(call).error_message();
  ASSERT_NE(call.jwt(), nullptr);
  EXPECT_EQ(call.jwt()->subject(), "ada");
  CallInfo other_cookie("/m", {{"cookie", "my_access_token=" + token}});
  Refusal(guard, other_cookie);
}

TEST_F(JwtGuardTest, AJwksServesEveryAlgorithmByKid) {
  JwtOptions options;
  options.jwks_file = dir_.Write("jwks.json", Jwks({&rsa_, &ec_, &hmac_}));
  Guard guard = Make(options);
  for (const TestKey* key : {&rsa_, &ec_, &hmac_}) {
    EXPECT_TRUE(guard(Call(Mint(*key, ValidClaims()))).ok()) << key->kid;
    // Without a kid, the keys of the token's algorithm are tried.
    EXPECT_TRUE(guard(Call(Mint(*key, ValidClaims(), /*with_kid=*/false))).ok()) << key->kid;
  }
  TestKey stranger = EcKey("ec-9");
  EXPECT_NE(Refusal(guard, Call(Mint(stranger, ValidClaims()))).find("unknown key id"),
            std::string::npos);
}

TEST_F(JwtGuardTest, AnHmacSecretFileVerifiesHs256Only) {
  JwtOptions options;
  options.hmac_secret_file = dir_.Write("secret", hmac_.private_pem + "\n");
  Guard guard = Make(options);
  EXPECT_TRUE(guard(Call(Mint(hmac_, ValidClaims()))).ok());
  Refusal(guard, Call(Mint(rsa_, ValidClaims())));
}

TEST_F(JwtGuardTest, BadKeyFilesAreAnErrorAtStartUp) {
  JwtOptions none;
  EXPECT_EQ(RequireJwt(none).status().code(), absl::StatusCode::kInvalidArgument);
  JwtOptions missing;
  missing.key_files = {"/nonexistent/key.pem"};
  EXPECT_FALSE(RequireJwt(missing).ok());
  JwtOptions not_pem;
  not_pem.key_files = {dir_.Write("junk.pem", "hello")};
  EXPECT_FALSE(RequireJwt(not_pem).ok());
  JwtOptions bad_jwks;
  bad_jwks.jwks_file = dir_.Write("bad.json", R"({"keys":[{"kty":"RSA","n":"!!"}]})");
  EXPECT_FALSE(RequireJwt(bad_jwks).ok());
  JwtOptions short_secret;
  short_secret.hmac_secret_file = dir_.Write("short", "tooshort");
  EXPECT_FALSE(RequireJwt(short_secret).ok());
}

TEST_F(JwtGuardTest, JwksRotationTakesEffectWithoutARestart) {
  JwtOptions options;
  options.jwks_file = dir_.Write("jwks.json", Jwks({&rsa_}));
  options.reload_interval = absl::Milliseconds(10);
  Guard guard = Make(options);
  const std::string old_token = Mint(rsa_, ValidClaims());
  const std::string new_token = Mint(ec_, ValidClaims());
  EXPECT_TRUE(guard(Call(old_token)).ok());
  Refusal(guard, Call(new_token));

  dir_.Write("jwks.json", Jwks({&ec_}));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_TRUE(guard(Call(new_token)).ok());
  EXPECT_NE(Refusal(guard, Call(old_token)).find("unknown key id"), std::string::npos);

  // A broken file (a writer caught half-way) keeps the keys in force.
  dir_.Write("jwks.json", R"({"keys":[)");
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_TRUE(guard(Call(new_token)).ok());
}

TEST(RequireClaimTest, TheSeedsAdminGuardForReal) {
  Guard admin = RequireClaim("role", "admin");
  CallInfo no_token("/m", {});
  EXPECT_EQ(admin(no_token).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(JwtGuardTest, RequireClaimAfterRequireJwt) {
  Guard jwt = FromPem();
  Guard admin = RequireClaim("role", "admin");
  auto check = [&](const std::string& claims) {
    CallInfo call = Call(Mint(rsa_, claims));
    grpc::Status verdict = jwt(call);
    return verdict.ok() ? admin(call) : verdict;
  };
  EXPECT_TRUE(check(ValidClaims()).ok());
  const std::string base =
      R"({"iss":"https://auth.test/","aud":"gravity","exp":)" + std::to_string(Now() + 60);
  EXPECT_TRUE(check(base + R"(,"role":["ops","admin"]})").ok());
  EXPECT_EQ(check(base + R"(,"role":"user"})").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(check(base + "}").error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

// --- Through a server -------------------------------------------------------

std::unique_ptr<Service> TickingService(Guard jwt) {
  auto service = std::make_unique<Service>("streaming.v1.Streaming");
  service->Guard(std::move(jwt));
  absl::Status added = service->AddStream<PingRequest, PingReply>(
      "Ping", [](const PingRequest&, Stream<PingReply> stream) {
        auto seq = std::make_shared<std::atomic<int64_t>>(0);
        stream.Every(absl::Milliseconds(50), [seq](Stream<PingReply>& s) {
          PingReply reply;
          reply.set_seq(++*seq);
          reply.set_message(s.call().jwt() == nullptr ? "" : s.call().jwt()->subject());
          s.Send(reply);
        });
        return grpc::Status::OK;
      });
  EXPECT_TRUE(added.ok()) << added;
  return service;
}

TEST_F(JwtGuardTest, AStreamEndsWhenItsTokenExpires) {
  JwtOptions options;
  options.key_files = {dir_.Write("ec.pem", ec_.public_pem)};
  options.leeway = absl::ZeroDuration();
  std::unique_ptr<Service> service = TickingService(Make(options));
  auto server = testing::StartServer({service.get()});
  ASSERT_NE(server, nullptr);
  auto stub = testing::StubFor(*server);

  const int64_t exp = Now() + 2;
  grpc::ClientContext context;
  testing::SetTestDeadline(context);
  context.AddMetadata("authorization", "Bearer " + Mint(ec_, ValidClaims(exp - Now())));
  auto reader = stub->Ping(&context, PingRequest());
  PingReply reply;
  int64_t last = 0;
  while (reader->Read(&reply)) {
    EXPECT_EQ(reply.seq(), last + 1);
    EXPECT_EQ(reply.message(), "ada");  // the handler saw the verified subject
    last = reply.seq();
  }
  const grpc::Status status = reader->Finish();
  const absl::Time ended = absl::Now();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(status.error_message(), kCredentialsExpiredMessage);
  EXPECT_GT(last, 5);
  // Ended at exp, give or take the timer and the call's round trip.
  EXPECT_GE(ended, absl::FromUnixSeconds(exp) - absl::Milliseconds(50));
  EXPECT_LT(ended, absl::FromUnixSeconds(exp) + absl::Seconds(1));
}

TEST_F(JwtGuardTest, OpenStreamsOutliveAKeyRotationNewCallsFollowIt) {
  JwtOptions options;
  options.jwks_file = dir_.Write("jwks.json", Jwks({&rsa_}));
  options.reload_interval = absl::Milliseconds(10);
  std::unique_ptr<Service> service = TickingService(Make(options));
  auto server = testing::StartServer({service.get()});
  ASSERT_NE(server, nullptr);
  auto stub = testing::StubFor(*server);

  grpc::ClientContext open_context;
  testing::SetTestDeadline(open_context);
  open_context.AddMetadata("authorization", "Bearer " + Mint(rsa_, ValidClaims()));
  auto open = stub->Ping(&open_context, PingRequest());
  PingReply reply;
  ASSERT_TRUE(open->Read(&reply));

  dir_.Write("jwks.json", Jwks({&ec_}));
  absl::SleepFor(absl::Milliseconds(50));
  auto call = [&](const TestKey& key) {
    grpc::ClientContext context;
    testing::SetTestDeadline(context);
    context.AddMetadata("authorization", "Bearer " + Mint(key, ValidClaims()));
    auto reader = stub->Ping(&context, PingRequest());
    PingReply first;
    const bool got = reader->Read(&first);
    context.TryCancel();
    reader->Finish();
    return got;
  };
  EXPECT_FALSE(call(rsa_));
  EXPECT_TRUE(call(ec_));
  // The stream admitted with the old key keeps going: a token is checked when
  // the call starts and ends the stream at its exp, not at a rotation.
  const int64_t before = reply.seq();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(open->Read(&reply));
  EXPECT_EQ(reply.seq(), before + 5);
  open_context.TryCancel();
  open->Finish();
}

}  // namespace
}  // namespace gravity::server
