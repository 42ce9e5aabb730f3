// kSanitizedBuild: whether this test binary runs under ASan or TSan, which
// make everything several times slower. Behaviour bounds that are timings
// ("the cancel reaches the backend within 100 ms") widen there, and only
// there.
#ifndef GRAVITY_TESTS_TESTING_SANITIZERS_H_
#define GRAVITY_TESTS_TESTING_SANITIZERS_H_

namespace gravity::testing {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitizedBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitizedBuild = true;
#else
inline constexpr bool kSanitizedBuild = false;
#endif
#else
inline constexpr bool kSanitizedBuild = false;
#endif

}  // namespace gravity::testing

#endif  // GRAVITY_TESTS_TESTING_SANITIZERS_H_
