# Helpers that give gravity's libraries, binaries and tests one shape, the CMake
# counterpart of the Bazel macros (bazel/copts.bzl, cc_library, cc_test).
#
# Include paths: gravity's sources include each other from the repository root
# ("server/stream.h"), generated protos from the proto root
# ("streaming/v1/streaming.pb.h"); installed headers keep those paths under
# <prefix>/include.
include_guard(GLOBAL)

include(GNUInstallDirs)
include(GoogleTest)  # gtest_discover_tests

# Warning flags for gravity's own code; generated code does not get them.
set(GRAVITY_WARNING_FLAGS -Wall -Wextra)
if(GRAVITY_WERROR)
  list(APPEND GRAVITY_WARNING_FLAGS -Werror)
endif()

# gravity_target_warnings(<target>): -Wall -Wextra [-Werror] on <target>'s own
# sources (PRIVATE, so nothing leaks to users of the target).
function(gravity_target_warnings target)
  target_compile_options(${target} PRIVATE ${GRAVITY_WARNING_FLAGS})
endfunction()

# gravity_add_library(<name>
#     [SOURCES <file>...]           .cc files and internal headers; not installed
#     [PUBLIC_HEADERS <file>...]    installed, keeping their path from HEADER_BASE_DIR
#     [DEPS <target>...]            PUBLIC link dependencies
#     [PRIVATE_DEPS <target>...]    PRIVATE link dependencies
#     [HEADER_BASE_DIR <dir>]       include root of PUBLIC_HEADERS; default: the repo root
#     [NO_WARNINGS])                leave out GRAVITY_WARNING_FLAGS (generated code)
#
# Creates target gravity_<name> with ALIAS gravity::<name>, installs it and its
# public headers, and adds it to the export set gravityTargets (namespace
# gravity::), so an installed gravity provides gravity::<name> too. Relative
# paths are relative to the calling CMakeLists.txt. Without SOURCES the library
# is header-only (INTERFACE).
#
#   # server/CMakeLists.txt
#   gravity_add_library(server
#     SOURCES stream.cc registry.cc internal/queue.h
#     PUBLIC_HEADERS stream.h guard.h service.h     # -> include/server/stream.h ...
#     DEPS gRPC::grpc++ absl::status absl::statusor
#     PRIVATE_DEPS absl::synchronization)
#   # elsewhere: target_link_libraries(x PRIVATE gravity::server), #include "server/stream.h"
function(gravity_add_library name)
  cmake_parse_arguments(PARSE_ARGV 1 arg
    "NO_WARNINGS" "HEADER_BASE_DIR" "SOURCES;PUBLIC_HEADERS;DEPS;PRIVATE_DEPS")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "gravity_add_library(${name}): unknown arguments ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_HEADER_BASE_DIR)
    set(arg_HEADER_BASE_DIR "${PROJECT_SOURCE_DIR}")
  endif()
  set(target gravity_${name})

  if(arg_SOURCES)
    add_library(${target} ${arg_SOURCES})
    set(scope PUBLIC)
    # Internal headers are included from the repo root as well.
    target_include_directories(${target} PRIVATE "${PROJECT_SOURCE_DIR}")
    if(NOT arg_NO_WARNINGS)
      gravity_target_warnings(${target})
    endif()
    set_target_properties(${target} PROPERTIES
      VERSION ${PROJECT_VERSION}
      SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
  else()
    if(arg_PRIVATE_DEPS)
      message(FATAL_ERROR "gravity_add_library(${name}): a header-only library has no PRIVATE_DEPS")
    endif()
    add_library(${target} INTERFACE)
    set(scope INTERFACE)
  endif()
  add_library(gravity::${name} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name})
  target_compile_features(${target} ${scope} cxx_std_17)

  set(install_headers)
  if(arg_PUBLIC_HEADERS)
    # The file set puts HEADER_BASE_DIR on the include path in the build tree
    # and <prefix>/include once installed.
    target_sources(${target} ${scope}
      FILE_SET HEADERS
      BASE_DIRS "${arg_HEADER_BASE_DIR}"
      FILES ${arg_PUBLIC_HEADERS})
    set(install_headers FILE_SET HEADERS DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
  endif()
  if(arg_DEPS)
    target_link_libraries(${target} ${scope} ${arg_DEPS})
  endif()
  if(arg_PRIVATE_DEPS)
    target_link_libraries(${target} PRIVATE ${arg_PRIVATE_DEPS})
  endif()

  install(TARGETS ${target}
    EXPORT gravityTargets
    ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
    LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}"
    RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}"
    ${install_headers}
    INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
endfunction()

# gravity_add_executable(<name>
#     SOURCES <file>...
#     [DEPS <target>...]
#     [INSTALL])                    install into <prefix>/bin
#
# A binary of gravity's own code (warnings on, repo root on the include path).
# The target is called <name> exactly, e.g. gravity-bridge, streaming-server.
function(gravity_add_executable name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "INSTALL" "" "SOURCES;DEPS")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "gravity_add_executable(${name}): unknown arguments ${arg_UNPARSED_ARGUMENTS}")
  endif()
  add_executable(${name} ${arg_SOURCES})
  target_include_directories(${name} PRIVATE "${PROJECT_SOURCE_DIR}")
  gravity_target_warnings(${name})
  if(arg_DEPS)
    target_link_libraries(${name} PRIVATE ${arg_DEPS})
  endif()
  if(arg_INSTALL)
    install(TARGETS ${name} RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
  endif()
endfunction()

# gravity_add_test(<name>
#     SOURCES <file>...
#     [DEPS <target>...]
#     [ARGS <arg>...]               command-line arguments of every test case
#     [LABELS <label>...]           ctest labels (ctest -L <label>)
#     [TIMEOUT <seconds>]           per test case; default 120 (Bazel's "small")
#     [NO_GTEST_MAIN])              the test has its own main()
#
# A GoogleTest binary (linked with GTest::gtest and GTest::gmock, and
# GTest::gtest_main unless NO_GTEST_MAIN) whose test cases are registered with
# ctest one by one (gtest_discover_tests, listed when ctest runs).
function(gravity_add_test name)
  cmake_parse_arguments(PARSE_ARGV 1 arg
    "NO_GTEST_MAIN" "TIMEOUT" "SOURCES;DEPS;ARGS;LABELS")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "gravity_add_test(${name}): unknown arguments ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT 120)
  endif()
  add_executable(${name} ${arg_SOURCES})
  target_include_directories(${name} PRIVATE "${PROJECT_SOURCE_DIR}")
  gravity_target_warnings(${name})
  target_link_libraries(${name} PRIVATE ${arg_DEPS} GTest::gmock GTest::gtest)
  if(NOT arg_NO_GTEST_MAIN)
    target_link_libraries(${name} PRIVATE GTest::gtest_main)
  endif()

  set(properties TIMEOUT ${arg_TIMEOUT})
  if(arg_LABELS)
    list(JOIN arg_LABELS "\\;" labels)
    list(APPEND properties LABELS "${labels}")
  endif()
  gtest_discover_tests(${name}
    EXTRA_ARGS ${arg_ARGS}
    DISCOVERY_MODE PRE_TEST
    DISCOVERY_TIMEOUT 60
    PROPERTIES ${properties})
endfunction()
