#!/usr/bin/env python3
"""Runs every curl line of docs/bridge.md's "One curl per feature" block.

The block sits between <!-- curl-block:begin --> and <!-- curl-block:end -->:
one ```sh fence of curl commands (a trailing backslash continues a command),
then one <!-- expect: STATUS BODY-PREFIX --> comment per command, in the same
order. The doc is the only place the commands and their outcomes are written,
so a docs change that breaks a command fails this test.

  curl_block_test.py --server=streaming-server --bridge=gravity-bridge [--doc=docs/bridge.md]
  curl_block_test.py ... --print     # show each command's status and body start

It starts the example's streaming-server (--admin_token=secret) and a
gravity-bridge in front of it (--cors_origin=https://app.example) on ports
the kernel picks, sets $B to the bridge, and runs each command with bash,
adding -sS -o <file> -w '%{http_code}' and a --max-time bound so a command
that never ends fails instead of hanging. BODY-PREFIX is compared with the
start of the body (\\n is a newline); with curl -i the headers are skipped;
`retry: ~2000` stands for the jittered hint (1000 to 3000 ms).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def jittered_retry(body):
    """The bridge jitters each stream's retry: hint (--retry 2s, --retry_jitter
    0.5: 1000 to 3000 ms); the doc writes it as `retry: ~2000`, which matches
    any value within those bounds."""
    return re.sub(r"retry: (\d+)\n",
                  lambda m: "retry: ~2000\n" if 1000 <= int(m.group(1)) <= 3000 else m.group(0),
                  body)


def parse_block(path):
    text = open(path, encoding="utf-8").read()
    m = re.search(r"<!-- curl-block:begin -->(.*?)<!-- curl-block:end -->", text, re.S)
    if not m:
        sys.exit(f"{path}: no <!-- curl-block:begin --> ... <!-- curl-block:end --> block")
    block = m.group(1)
    fence = re.search(r"```sh\n(.*?)```", block, re.S)
    if not fence:
        sys.exit(f"{path}: the curl block has no ```sh fence")
    commands, current = [], ""
    for line in fence.group(1).splitlines():
        current += line
        if current.endswith("\\"):
            current = current[:-1]
            continue
        command, current = current.strip(), ""
        if not command or command.startswith("#") or command.startswith("B="):
            continue
        if not command.startswith("curl "):
            sys.exit(f"{path}: not a curl command in the curl block: {command}")
        commands.append(command)
    expects = []
    for status, prefix in re.findall(r"<!-- expect: (\d{3}) ?(.*?) -->", block[fence.end():]):
        expects.append((status, prefix.replace("\\n", "\n")))
    if len(expects) != len(commands):
        sys.exit(f"{path}: {len(commands)} curl commands but {len(expects)} expect comments; "
                 "add one <!-- expect: STATUS BODY-PREFIX --> per command, in order")
    return list(zip(commands, expects))


def start(argv, pattern, log):
    """Starts argv; returns (process, the first group of pattern in its output)."""
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open(log.name, encoding="utf-8", errors="replace") as f:
            m = re.search(pattern, f.read())
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    with open(log.name, encoding="utf-8", errors="replace") as f:
        sys.exit(f"{argv[0]} did not start (no {pattern!r} in its output):\n{f.read()}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--bridge", required=True)
    parser.add_argument("--doc", default=os.path.join(REPO, "docs", "bridge.md"))
    parser.add_argument("--print", action="store_true", help="print what each command gave")
    args = parser.parse_args()
    cases = parse_block(args.doc)

    tmp = tempfile.mkdtemp(prefix="docs-curl.")
    procs = []
    try:
        server_log = open(os.path.join(tmp, "server.log"), "w")
        server, grpc_addr = start(
            [args.server, "--listen=127.0.0.1:0", "--admin_token=secret"],
            r"listening on (\S+)", server_log)
        procs.append(server)
        bridge_log = open(os.path.join(tmp, "bridge.log"), "w")
        bridge, http_url = start(
            [args.bridge, "--listen=127.0.0.1:0", f"--backend={grpc_addr}",
             "--cors_origin=https://app.example"],
            r"listening on (http://\S+)", bridge_log)
        procs.append(bridge)

        body_file = os.path.join(tmp, "body")
        failures = 0
        for command, (want_status, want_prefix) in cases:
            # Our flags go right after "curl", so the doc's own flags still apply
            # (a --max-time of its own comes later and wins).
            run = ("curl -sS -o \"$OUT\" -w '%{http_code}' --max-time 20 "
                   + command[len("curl "):])
            if os.path.exists(body_file):
                os.remove(body_file)
            result = subprocess.run(["bash", "-c", run], capture_output=True, text=True,
                                    env={**os.environ, "B": http_url, "OUT": body_file},
                                    timeout=60)
            body = open(body_file, "rb").read().decode("utf-8", "replace") \
                if os.path.exists(body_file) else ""
            if body.startswith("HTTP/"):  # curl -i: skip the header block
                body = body.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in body else ""
            status = result.stdout.strip()
            # 28 is curl's "--max-time reached": how a long stream is meant to end.
            curl_ok = result.returncode in (0, 28)
            body = jittered_retry(body)
            ok = curl_ok and status == want_status and body.startswith(want_prefix)
            if args.print:
                print(f"{command}\n  -> {status} {body[:80]!r} (curl exit {result.returncode})")
            if not ok:
                failures += 1
                print(f"FAIL: {command}\n  want {want_status} {want_prefix!r}\n"
                      f"  got  {status} {body[:len(want_prefix) + 40]!r} "
                      f"(curl exit {result.returncode}) {result.stderr.strip()}")
            elif not args.print:
                print(f"ok   {want_status} {command}")
        print(f"{len(cases) - failures} of {len(cases)} curl lines of {os.path.relpath(args.doc, REPO)} as documented")
        return 1 if failures else 0
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.exit(main())
