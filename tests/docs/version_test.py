#!/usr/bin/env python3
"""One version everywhere: VERSION is the source, the rest must agree.

  version_test.py --cmake_version=X --bridge=gravity-bridge --cli=gravity-cli

Checks that VERSION holds a 0.x.y number, that CMake's project() read it
(--cmake_version is PROJECT_VERSION), that `gravity-bridge --version` and
`gravity-cli --version` print "<name> <version>" and exit 0, that
client/web's package.json and package-lock.json carry it, and that
CHANGELOG.md has an entry for it.
"""
import argparse
import json
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cmake_version", required=True)
    parser.add_argument("--bridge", required=True)
    parser.add_argument("--cli", required=True)
    args = parser.parse_args()

    version = open(os.path.join(REPO, "VERSION"), encoding="utf-8").read().strip()
    errors = []
    if not re.fullmatch(r"0\.\d+\.\d+", version):
        errors.append(f"VERSION: {version!r} is not 0.x.y")

    found = {"CMake project()": args.cmake_version}
    for name, binary in (("gravity-bridge", args.bridge), ("gravity-cli", args.cli)):
        result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            errors.append(f"{name} --version: exit {result.returncode} {result.stderr.strip()}")
        line = result.stdout.strip()
        if not line.startswith(name + " "):
            errors.append(f"{name} --version printed {line!r}, not '{name} <version>'")
        found[f"{name} --version"] = line[len(name) + 1:]
    web = os.path.join(REPO, "client", "web")
    found["client/web/package.json"] = json.load(open(os.path.join(web, "package.json")))["version"]
    lock = json.load(open(os.path.join(web, "package-lock.json")))
    found["client/web/package-lock.json"] = lock["version"]
    found["client/web/package-lock.json (packages)"] = lock["packages"][""]["version"]
    changelog = open(os.path.join(REPO, "CHANGELOG.md"), encoding="utf-8").read()
    found["CHANGELOG.md"] = version if f"## [{version}]" in changelog else "(no entry)"

    for where, value in found.items():
        status = "ok  " if value == version else "FAIL"
        if value != version:
            errors.append(f"{where}: {value!r}, VERSION says {version!r}")
        print(f"{status} {where}: {value}")
    for error in errors:
        print("error:", error)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
