"""Exposes Debian's system libraries and proto tools to Bazel, offline.

`system_libs(name = "system")` creates @system with one cc_library per entry
of LIBRARIES (link flags from pkg-config, or plain -l flags for libraries
that ship no .pc file) and the tools `@system//:protoc` and
`@system//:grpc_cpp_plugin`. Nothing is downloaded: a library that is missing
fails the fetch with the Debian package to install.
"""

# target name -> (pkg-config modules, extra link flags, Debian package).
LIBRARIES = {
    "protobuf": (["protobuf"], [], "libprotobuf-dev"),
    "grpc": (["grpc++", "protobuf"], [], "libgrpc++-dev"),
    "grpc_reflection": ([], ["-lgrpc++_reflection"], "libgrpc++-dev"),
    "absl": ([
        "absl_flags",
        "absl_flags_parse",
        "absl_flags_usage",
        "absl_flags_marshalling",
        "absl_status",
        "absl_statusor",
        "absl_strings",
        "absl_str_format",
        "absl_synchronization",
        "absl_time",
        "absl_random_random",
        "absl_cleanup",
        "absl_flat_hash_map",
    ], [], "libabsl-dev"),
    "gtest": (["gtest", "gmock"], [], "libgtest-dev libgmock-dev"),
    "gtest_main": (["gtest_main"], [], "libgtest-dev"),
    "boost": ([], ["-lboost_url"], "libboost1.81-dev libboost-url1.81-dev"),
    "hiredis": (["hiredis"], [], "libhiredis-dev"),
    "openssl": (["openssl"], [], "libssl-dev"),
    "nghttp2": (["libnghttp2"], [], "libnghttp2-dev"),
    "zlib": (["zlib"], [], "zlib1g-dev"),
    "jwt": (["libjwt"], [], "libjwt-dev"),
}

TOOLS = {
    "protoc": "protobuf-compiler",
    "grpc_cpp_plugin": "protobuf-compiler-grpc",
}

def _run(ctx, args, package):
    result = ctx.execute(args)
    if result.return_code != 0:
        fail("`%s` failed (install the Debian package %s): %s" %
             (" ".join(args), package, result.stderr))
    return result.stdout.strip()

def _split_flags(text):
    return [f for f in text.split(" ") if f]

def _system_libs_impl(ctx):
    pkg_config = ctx.which("pkg-config")
    if pkg_config == None:
        fail("pkg-config not found: install the Debian package pkg-config")
    build = ['package(default_visibility = ["//visibility:public"])', ""]
    for name, (modules, extra, package) in LIBRARIES.items():
        linkopts = []
        defines = []
        if modules:
            pc = [str(pkg_config)] + modules
            linkopts = _split_flags(_run(ctx, pc + ["--libs"], package))
            for flag in _split_flags(_run(ctx, pc + ["--cflags"], package)):
                if flag.startswith("-D"):
                    defines.append(flag[2:])
        linkopts += extra
        build.append("cc_library(\n    name = %r,\n    linkopts = %r,\n    defines = %r,\n)\n" %
                     (name, linkopts, defines))
    for tool, package in TOOLS.items():
        path = ctx.which(tool)
        if path == None:
            fail("%s not found: install the Debian package %s" % (tool, package))
        ctx.symlink(path, "bin/" + tool)
        build.append("filegroup(name = %r, srcs = [%r])\n" % (tool, "bin/" + tool))
    ctx.file("BUILD", "\n".join(build))

    include_dir = _run(ctx, [str(pkg_config), "--variable=includedir", "protobuf"], "libprotobuf-dev")
    ctx.file("defs.bzl", "PROTOBUF_INCLUDE_DIR = %r\n" % include_dir)

system_libs = repository_rule(
    implementation = _system_libs_impl,
    environ = ["PATH", "PKG_CONFIG_PATH"],
    local = True,
)
