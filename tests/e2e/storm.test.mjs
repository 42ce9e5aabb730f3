// A scaled-down reconnect storm (issue 19, bench/run's S3 at CI size): 2,000
// EventSource-like clients (bench/loadgen.c's resume mode: `retry:`,
// Last-Event-ID, each SEQ once in order, a non-200 or an `end` final) read
// one chat room through Debian's nginx (docs/bridge.md's "Behind nginx"
// upstream: bridges A and B, max_fails=1 fail_timeout=1s, proxy_next_upstream
// error timeout), each bridge with its own chat-server, one Redis.
//
// Bridge B starts only once A holds every client (nginx finds B refusing
// until then, so every stream lands on A). loadgen posts through B
// ("SEQ:STAMP", one post at a time; a refused post is retried: nothing was
// stored). Bridge A is SIGKILLed: its 2,000 clients are cut, come back
// through nginx after their jittered retry: (--retry=300ms, +-50 %), land on
// B and resume with Last-Event-ID. Every client must be back, and end with
// every SEQ posted exactly once, in order.
//
//   node storm.test.mjs --chat_server=bazel-bin/examples/chat/chat-server \
//        --bridge=bazel-bin/bridge/gravity-bridge --redis_server=/usr/bin/redis-server \
//        --loadgen=<cc -O2 bench/loadgen.c>
//   ($NGINX, default /usr/sbin/nginx.) Every process needs about 2,100
//   descriptors and nginx 4,200: ctest runs it under `ulimit -n <hard limit>`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  check,
  checkEqual,
  flags,
  lowPort,
  onCleanup,
  onFailure,
  run,
  sleep,
  startBridge,
  startChatServer,
  startNginx,
  startProcess,
  startRedis,
  withTimeout,
} from './harness.mjs';

const args = flags(['chat_server', 'bridge', 'redis_server', 'loadgen']);
const CLIENTS = 2000;
const RATE = 5; // posts per second: 10,000 deliveries/s
const AFTER_RESUME_MS = 1500; // posting goes on this long after the last resume

// The soft descriptor limit of this process (its children inherit it).
function openFileLimit() {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
  return !m || m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

// key=value pairs of one line.
function fields(line) {
  return Object.fromEntries([...line.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]]));
}

// Waits (bounded) for a line of `p` (a startProcess result) matching re.
async function line(p, re, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = p.output().split('\n').find((l) => re.test(l));
    if (m) return m;
    if (p.exited()) throw new Error(`${what}: loadgen exited ${JSON.stringify(p.exited())}`);
    if (Date.now() > deadline) throw new Error(`${what}: no ${re} within ${timeoutMs} ms`);
    await sleep(20);
  }
}

run(
  async () => {
    const limit = openFileLimit();
    check(
      `open-file limit ${limit} >= 4,400 (2,000 streams: two descriptors each in nginx)`,
      limit >= 4400,
      'run under `ulimit -n 8192` or more (ctest does: tests/e2e/CMakeLists.txt)',
    );
    if (limit < 4400) return;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gravity-storm-'));
    onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
    const redisPort = await lowPort();
    await startRedis(args.redis_server, dir, redisPort, ['--appendonly', 'no']);
    const redisAddress = `127.0.0.1:${redisPort}`;
    const chatA = await startChatServer(args.chat_server, redisAddress);
    const chatB = await startChatServer(args.chat_server, redisAddress);
    const bridgeArgs = ['--retry=300ms', '--max_streams=5000'];
    const bridgeA = await startBridge(args.bridge, chatA.address, bridgeArgs);
    const hostA = new URL(bridgeA.url).host;
    const hostB = `127.0.0.1:${await lowPort()}`; // B listens here later
    const front = await startNginx([hostA, hostB], {
      serverParams: 'max_fails=1 fail_timeout=1s',
      location: `proxy_next_upstream error timeout;
      add_header X-Upstream $upstream_addr always;`,
      workerConnections: 8192,
    });
    const stopFile = path.join(dir, 'stop');
    const loadgen = await startProcess(
      'loadgen resume',
      args.loadgen,
      ['resume', `--addr=${front.url.slice('http://'.length)}`, `--post-addr=${hostB}`,
        `--streams=${CLIENTS}`, '--room=storm', `--rate=${RATE}`, '--batch=250',
        `--hold-file=${stopFile}`, '--timeout=40'],
      /^OPEN /,
      30000,
    );
    const open = fields(await line(loadgen, /^OPEN /, 1000, 'open'));
    checkEqual(`all ${CLIENTS} streams open through nginx (on bridge A)`, Number(open.ok), CLIENTS);
    // Bridge B: its chat-server gets the posts from now on.
    // (The last --listen wins over startBridge's port 0.)
    const bridgeB = await startBridge(args.bridge, chatB.address, [...bridgeArgs, `--listen=${hostB}`]);
    onFailure(() => console.log(`# bridge A ${hostA}, bridge B ${bridgeB.url}, nginx ${front.url}`));
    const ready = fields(await line(loadgen, /^READY /, 15000, 'the barrier'));
    check('every stream had an event (barrier)', Number(ready.open) === CLIENTS, JSON.stringify(ready));
    // nginx marked B failed while it refused (max_fails=1). Past fail_timeout
    // it sends B one request per fail_timeout, and only a request that
    // *completes* clears the mark: an SSE stream never does, so without this
    // B would stay "failed" and, once A is dead too, nginx would answer the
    // reconnects 502 ("no live upstreams"), which ends an EventSource. So
    // GET /healthz through nginx until B has answered one.
    const probes = [];
    const bBack = await (async () => {
      const deadline = Date.now() + 10000;
      while (Date.now() < deadline) {
        const r = await withTimeout(fetch(`${front.url}/healthz`), 5000, 'GET /healthz through nginx');
        await r.arrayBuffer();
        probes.push(`${r.status} ${r.headers.get('x-upstream')}`);
        if (r.status === 200 && r.headers.get('x-upstream') === hostB) return true;
        await sleep(100);
      }
      return false;
    })();
    check('nginx takes bridge B back (a GET /healthz through nginx answered by B)', bBack, probes.slice(-5).join('; '));

    bridgeA.kill('SIGKILL');
    const killedAt = Date.now();
    const resumed = fields(await line(loadgen, /^RESUMED /, 30000, 'every cut stream to resume'));
    const resumedMs = Date.now() - killedAt;
    checkEqual('bridge A SIGKILLed: every client was cut', Number(resumed.cut), CLIENTS);
    checkEqual('every cut client resumed (200 from B, then an event)', Number(resumed.resumed), CLIENTS);
    await sleep(AFTER_RESUME_MS);
    fs.writeFileSync(stopFile, '');
    await withTimeout(loadgen.whenExited(), 45000, 'loadgen to finish');
    const resultLine = loadgen.output().split('\n').find((l) => l.startsWith('RESULT '));
    check('loadgen printed its RESULT', Boolean(resultLine), loadgen.output().slice(-2000));
    const result = fields(resultLine ?? '');
    checkEqual('loadgen exited 0', loadgen.exited()?.code, 0);
    check('posts went on through the storm', Number(result.posts) >= RATE, resultLine);
    checkEqual(
      `all ${CLIENTS} clients got every SEQ 1..${result.posts} exactly once, in order (failed, behind, ended)`,
      [Number(result.failed), Number(result.behind), Number(result.dead)],
      [0, 0, 0],
    );
    console.log(
      `# storm: ${CLIENTS} clients via nginx on bridge A; SIGKILL; all back on B ${resumed.first_cut_to_last_resume_s} s ` +
        `after the first cut (reopen p50 ${resumed.reopen_p50_ms} ms, max ${resumed.reopen_max_ms} ms; ` +
        `first event p99 ${resumed.resume_p99_ms} ms), RESUMED seen ${resumedMs} ms after the kill; ` +
        `${resumed.attempts} attempts, ${resumed.refused} refused; ${result.posts} posts, ${result.events} events`,
    );
  },
  { timeoutMs: 58000 },
);
