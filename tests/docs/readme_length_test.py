#!/usr/bin/env python3
"""The README stays a first page (issue 17): at most 150 lines. What does not
fit belongs in docs/ (one page per component) or bench/RESULTS.md.

  python3 tests/docs/readme_length_test.py [--readme=README.md] [--max=150]
"""
import argparse
import pathlib
import sys


def main() -> int:
    repo = pathlib.Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser()
    parser.add_argument("--readme", default=str(repo / "README.md"))
    parser.add_argument("--max", type=int, default=150)
    args = parser.parse_args()
    lines = pathlib.Path(args.readme).read_text(encoding="utf-8").splitlines()
    if len(lines) > args.max:
        print(f"{args.readme}: {len(lines)} lines, more than {args.max}: move detail to docs/")
        return 1
    print(f"{args.readme}: {len(lines)} lines (at most {args.max})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
