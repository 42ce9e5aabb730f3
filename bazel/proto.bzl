"""Generates C++ (messages and gRPC services) and a descriptor set from .proto files.

Uses Debian's protoc and grpc_cpp_plugin (see system_libs.bzl), so nothing is
downloaded. Import paths are relative to the package that calls the macro,
which is why all of gravity's protos live under one package, //proto.
"""

load("@system//:defs.bzl", "PROTOBUF_INCLUDE_DIR")

def _stem(src):
    if not src.endswith(".proto"):
        fail("%s is not a .proto file" % src)
    return src[:-len(".proto")]

def gravity_cc_proto_library(name, srcs, imports = [], deps = [], grpc = True, visibility = None):
    """Declares `name` (a cc_library) and `name_descriptor_set` (a FileDescriptorSet).

    Args:
      name: the cc_library's name.
      srcs: .proto files, relative to this package, to generate code for.
      imports: other .proto files of this package that srcs import; their
        code comes from `deps`.
      deps: cc_library targets holding the code generated for `imports`.
      grpc: whether to generate gRPC service code too.
      visibility: of both targets.
    """
    headers = []
    sources = []
    for src in srcs:
        stem = _stem(src)
        headers.append(stem + ".pb.h")
        sources.append(stem + ".pb.cc")
        if grpc:
            headers.append(stem + ".grpc.pb.h")
            sources.append(stem + ".grpc.pb.cc")
    descriptor_set = name + "_descriptor_set.pb"
    package = native.package_name()
    root = package if package else "."
    out_root = "$(GENDIR)/" + package if package else "$(GENDIR)"

    cmd = [
        "$(location @system//:protoc)",
        "-I" + root,
        "-I" + PROTOBUF_INCLUDE_DIR,
        "--cpp_out=" + out_root,
        "--include_imports",
        "--descriptor_set_out=$(location %s)" % descriptor_set,
    ]
    tools = ["@system//:protoc"]
    if grpc:
        cmd += [
            "--plugin=protoc-gen-grpc=$(location @system//:grpc_cpp_plugin)",
            "--grpc_out=" + out_root,
        ]
        tools.append("@system//:grpc_cpp_plugin")
    cmd += ["%s/%s" % (root, src) for src in srcs]

    native.genrule(
        name = name + "_gen",
        srcs = srcs + imports,
        outs = headers + sources + [descriptor_set],
        cmd = " ".join(cmd),
        tools = tools,
        visibility = ["//visibility:private"],
    )
    native.filegroup(
        name = name + "_descriptor_set",
        srcs = [descriptor_set],
        visibility = visibility,
    )
    native.cc_library(
        name = name,
        srcs = sources,
        hdrs = headers,
        includes = ["."],
        deps = deps + ["@system//:grpc" if grpc else "@system//:protobuf"],
        visibility = visibility,
    )
