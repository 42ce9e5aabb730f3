"""Compiler flags for gravity's own code (generated code is built without them)."""

GRAVITY_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
]
