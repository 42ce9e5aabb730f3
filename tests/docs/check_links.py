#!/usr/bin/env python3
"""Every relative link in the user docs resolves, #anchors included.

  check_links.py [FILE.md ...]     # default: the docs users read (DOCS below)

A link is [text](target) or <a href="target"> outside code blocks and inline
code. http(s) and mailto links are left alone (no network in CI). A relative
target must name a file or directory inside the repository (never one above
it, which users do not have); a #anchor must match a heading of the target
Markdown file, slugged the way GitHub does. Prints each broken link with its
file and line; exit status 1 if there is one.
"""
import glob
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = ["README.md", "CHANGELOG.md", "docs/*.md", "bench/*.md", "client/web/README.md",
        "tests/e2e/README.md"]

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|<a\s[^>]*href=\"([^\"]+)\"")
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`]*`")


def slug(heading):
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to '-'."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path, cache={}):
    if path not in cache:
        found, seen, in_fence = set(), {}, False
        for line in open(path, encoding="utf-8"):
            if FENCE.match(line):
                in_fence = not in_fence
                continue
            m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
            if m and not in_fence:
                base = slug(m.group(1))
                n = seen.get(base, 0)
                seen[base] = n + 1
                found.add(base if n == 0 else f"{base}-{n}")
        cache[path] = found
    return cache[path]


def links(path):
    """Yields (line number, target) for every link outside code."""
    in_fence = False
    for number, line in enumerate(open(path, encoding="utf-8"), 1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        for m in LINK.finditer(INLINE_CODE.sub("", line)):
            yield number, m.group(1) or m.group(2)


def check(path):
    errors = []
    for number, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        where = f"{os.path.relpath(path, REPO)}:{number}: {target}"
        file_part, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) \
            if file_part else path
        if os.path.commonpath([resolved, REPO]) != REPO:
            errors.append(f"{where}: points outside the repository")
            continue
        if not os.path.exists(resolved):
            errors.append(f"{where}: no such file")
            continue
        if anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
            errors.append(f"{where}: no heading #{anchor} in {os.path.relpath(resolved, REPO)}")
    return errors


def main(argv):
    files = [os.path.abspath(f) for f in argv] or sorted(
        {f for pattern in DOCS for f in glob.glob(os.path.join(REPO, pattern))})
    errors, count = [], 0
    for path in files:
        count += sum(1 for _ in links(path))
        errors += check(path)
    for error in errors:
        print(error)
    print(f"{len(files)} files, {count} links, {len(errors)} broken")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
