# Generates C++ (messages and gRPC services) and a descriptor set from .proto
# files with Debian's protoc and grpc_cpp_plugin: the CMake twin of
# gravity_cc_proto_library in bazel/proto.bzl.
#
# The import root is proto/ (GRAVITY_PROTO_ROOT): a file proto/a/b.proto is
# imported as "a/b.proto" and its code included as "a/b.pb.h". protobuf's own
# .proto files (google/protobuf/descriptor.proto, ...) come from protobuf's
# include directory.
include_guard(GLOBAL)

include(GravityLibrary)

set(GRAVITY_PROTO_ROOT "${PROJECT_SOURCE_DIR}/proto" CACHE INTERNAL "Import root of gravity's .proto files")

# gravity_add_proto_library(<name>
#     PROTOS <file>...              relative to GRAVITY_PROTO_ROOT, e.g. streaming/v1/streaming.proto
#     [GRPC]                        also generate gRPC service code (*.grpc.pb.{h,cc})
#     [DEPS <target>...]            proto libraries whose .proto files PROTOS import
#     [DESCRIPTOR_SET <var>])       set <var> in the caller to the descriptor set's path
#
# Creates gravity_<name> / gravity::<name> through gravity_add_library (so it is
# installed and exported, headers under <prefix>/include/a/b.pb.h), plus
# <build dir>/<name>_descriptor_set.pb: a FileDescriptorSet of PROTOS and
# everything they import (--include_imports), installed into
# GRAVITY_INSTALL_DESCRIPTORDIR. The path is also on the target, property
# GRAVITY_DESCRIPTOR_SET. The .proto files are installed next to the headers,
# so users can import them.
function(gravity_add_proto_library name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "GRPC" "DESCRIPTOR_SET" "PROTOS;DEPS")
  if(arg_UNPARSED_ARGUMENTS OR NOT arg_PROTOS)
    message(FATAL_ERROR "gravity_add_proto_library(${name} PROTOS <file>... [GRPC] [DEPS <target>...] [DESCRIPTOR_SET <var>])")
  endif()
  if(NOT TARGET protobuf::protoc)
    message(FATAL_ERROR "protoc not found: install the Debian package protobuf-compiler")
  endif()
  if(arg_GRPC AND NOT TARGET gRPC::grpc_cpp_plugin)
    message(FATAL_ERROR "grpc_cpp_plugin not found: install the Debian package protobuf-compiler-grpc")
  endif()

  set(out_dir "${CMAKE_CURRENT_BINARY_DIR}")
  set(descriptor_set "${out_dir}/${name}_descriptor_set.pb")

  # Inputs: our .proto files and, transitively, those of DEPS (imports), so a
  # change to an imported file regenerates.
  set(inputs)
  set(headers)
  set(sources)
  foreach(proto IN LISTS arg_PROTOS)
    if(NOT proto MATCHES "^(.+)\\.proto$")
      message(FATAL_ERROR "gravity_add_proto_library(${name}): ${proto} is not a .proto file")
    endif()
    set(stem "${CMAKE_MATCH_1}")
    if(NOT EXISTS "${GRAVITY_PROTO_ROOT}/${proto}")
      message(FATAL_ERROR "gravity_add_proto_library(${name}): ${GRAVITY_PROTO_ROOT}/${proto} does not exist")
    endif()
    list(APPEND inputs "${GRAVITY_PROTO_ROOT}/${proto}")
    list(APPEND headers "${out_dir}/${stem}.pb.h")
    list(APPEND sources "${out_dir}/${stem}.pb.cc")
    if(arg_GRPC)
      list(APPEND headers "${out_dir}/${stem}.grpc.pb.h")
      list(APPEND sources "${out_dir}/${stem}.grpc.pb.cc")
    endif()
  endforeach()
  set(all_protos ${inputs})
  foreach(dep IN LISTS arg_DEPS)
    if(TARGET ${dep})
      get_target_property(dep_protos ${dep} GRAVITY_PROTO_FILES)
      if(dep_protos)
        list(APPEND all_protos ${dep_protos})
      endif()
    endif()
  endforeach()
  list(REMOVE_DUPLICATES all_protos)

  set(command $<TARGET_FILE:protobuf::protoc>
    "-I${GRAVITY_PROTO_ROOT}"
    "-I${Protobuf_INCLUDE_DIR}"
    "--cpp_out=${out_dir}"
    --include_imports
    "--descriptor_set_out=${descriptor_set}")
  set(tools protobuf::protoc)
  if(arg_GRPC)
    list(APPEND command
      "--plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>"
      "--grpc_out=${out_dir}")
    list(APPEND tools gRPC::grpc_cpp_plugin)
  endif()

  add_custom_command(
    OUTPUT ${headers} ${sources} "${descriptor_set}"
    COMMAND ${command} ${arg_PROTOS}
    DEPENDS ${all_protos} ${tools}
    WORKING_DIRECTORY "${GRAVITY_PROTO_ROOT}"
    COMMENT "protoc: ${name} (${arg_PROTOS})"
    COMMAND_EXPAND_LISTS
    VERBATIM)

  if(arg_GRPC)
    set(runtime gRPC::grpc++ protobuf::libprotobuf)
  else()
    set(runtime protobuf::libprotobuf)
  endif()
  gravity_add_library(${name}
    SOURCES ${sources}
    PUBLIC_HEADERS ${headers}
    HEADER_BASE_DIR "${out_dir}"
    DEPS ${arg_DEPS} ${runtime}
    NO_WARNINGS)
  set_target_properties(gravity_${name} PROPERTIES
    GRAVITY_PROTO_FILES "${all_protos}"
    GRAVITY_DESCRIPTOR_SET "${descriptor_set}")

  foreach(proto IN LISTS arg_PROTOS)
    get_filename_component(dir "${proto}" DIRECTORY)
    install(FILES "${GRAVITY_PROTO_ROOT}/${proto}" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/${dir}")
  endforeach()
  install(FILES "${descriptor_set}" DESTINATION "${GRAVITY_INSTALL_DESCRIPTORDIR}")

  if(arg_DESCRIPTOR_SET)
    set(${arg_DESCRIPTOR_SET} "${descriptor_set}" PARENT_SCOPE)
  endif()
endfunction()
