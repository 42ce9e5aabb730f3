// Fan-out across server instances, end to end: redis-server (AOF on, a temp
// dir) + two chat-servers sharing it, each behind its own gravity-bridge;
// 100 SSE subscribers (eventsource@4) spread over both bridges; 1,000 posts
// (POST /chat.v1.Chat/Post with a JSON body, through the bridges) spread over
// both instances. Mid-run one chat-server is SIGKILLed: its subscribers are
// routed to the other bridge (as a load balancer that drops the dead
// instance would) and resume with Last-Event-ID. Later Redis is restarted.
// Every subscriber must end with exactly the log, in log order, each event
// once, and the log must hold every post.
//
//   node chat_fanout.test.mjs --chat_server=bazel-bin/examples/chat/chat-server \
//        --bridge=bazel-bin/bridge/gravity-bridge --redis_server=/usr/bin/redis-server
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { EventSource } from 'eventsource';
import {
  check,
  checkEqual,
  flags,
  onCleanup,
  run,
  sleep,
  startBridge,
  startProcess,
  withTimeout,
} from './harness.mjs';

const args = flags(['chat_server', 'bridge', 'redis_server']);
const SUBSCRIBERS = 100;
const POSTS = 1000;
const KILL_AFTER = 300; // posts before chat-server A is SIGKILLed
const REDIS_RESTART_AFTER = 600; // posts before Redis is restarted
const ROOM = 'fanout';
const KEY = `gravity:topic:chat:${ROOM}`;

// A port below the ephemeral range that is free now (Redis cannot pick one).
async function freePort() {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 11000);
    const free = await new Promise((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port');
}

// redis-server in `dir` on `port`; resolves once it is ready.
async function startRedis(dir, port) {
  const p = await startProcess(
    'redis-server',
    args.redis_server,
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes',
      '--appendfsync', 'always', '--save', '', '--protected-mode', 'no', '--logfile', ''],
    /Ready to accept connections/,
  );
  const exited = new Promise((resolve) => {
    const poll = setInterval(() => {
      if (p.exited()) {
        clearInterval(poll);
        resolve();
      }
    }, 20);
  });
  return { ...p, exitedPromise: exited };
}

// The ids of every entry of the room's stream, through redis-cli.
function logIds(port) {
  const script =
    "local r = redis.call('XRANGE', KEYS[1], '-', '+') local ids = {} " +
    'for i, e in ipairs(r) do ids[i] = e[1] end return ids';
  const cli = path.join(path.dirname(args.redis_server), 'redis-cli');
  return new Promise((resolve, reject) => {
    execFile(cli, ['-p', String(port), '--raw', 'EVAL', script, '1', KEY], (error, stdout) =>
      error ? reject(error) : resolve(stdout.split('\n').filter(Boolean)),
    );
  });
}

async function startChatServer(redisAddress) {
  const p = await startProcess(
    'chat-server',
    args.chat_server,
    ['--listen=127.0.0.1:0', `--redis=${redisAddress}`, '--drain=1s', '--stats_interval=0'],
    /^chat-server listening on (\S+:\d+)/,
  );
  return { ...p, address: p.match[1] };
}

run(
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gravity-chat-'));
    onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
    const redisPort = await freePort();
    let redis = await startRedis(dir, redisPort);
    const redisAddress = `127.0.0.1:${redisPort}`;

    const chatA = await startChatServer(redisAddress);
    const chatB = await startChatServer(redisAddress);
    const bridgeArgs = ['--retry=300ms'];
    const bridgeA = await startBridge(args.bridge, chatA.address, bridgeArgs);
    const bridgeB = await startBridge(args.bridge, chatB.address, bridgeArgs);

    // --- subscribers ----------------------------------------------------------
    // Each connects through `route`: A's subscribers move to bridge B once A
    // is taken out of rotation (before its chat-server is killed).
    const route = { a: bridgeA.url, b: bridgeB.url };
    const subscribers = [];
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const home = i % 2 === 0 ? 'a' : 'b';
      const s = { home, ids: [], texts: [], opens: 0, resumedWith: [], errors: 0, ended: null };
      const url = `${route[home]}/chat.v1.Chat/Subscribe?room=${ROOM}`;
      s.es = new EventSource(url, {
        fetch: (input, init) => {
          const target = new URL(String(input));
          const base = new URL(route[home]);
          target.host = base.host;
          const lastEventId = init?.headers?.['Last-Event-ID'];
          if (lastEventId) s.resumedWith.push({ bridge: base.host, lastEventId });
          return fetch(target, init);
        },
      });
      s.opened = new Promise((resolve) => {
        s.es.addEventListener('open', () => {
          s.opens++;
          resolve();
        });
      });
      s.es.addEventListener('message', (e) => {
        s.ids.push(e.lastEventId);
        try {
          s.texts.push(JSON.parse(e.data).text);
        } catch {
          s.texts.push(`unparsable: ${e.data}`);
        }
      });
      s.es.addEventListener('end', (e) => {
        s.ended = e.data;
        s.es.close();
      });
      s.es.addEventListener('error', () => {
        s.errors++;
      });
      subscribers.push(s);
    }
    onCleanup(() => subscribers.forEach((s) => s.es.close()));
    await withTimeout(Promise.all(subscribers.map((s) => s.opened)), 20000, 'subscribers open');
    check(`${SUBSCRIBERS} SSE subscribers open, half on each bridge`, true);

    // --- posts ------------------------------------------------------------------
    // POST /chat.v1.Chat/Post through a bridge; alternate bridges while both
    // are in rotation. A post that fails (the instance died, Redis down) is
    // retried on a bridge in rotation; one that failed after the instance
    // may have stored it could then be in the log twice (counted below).
    const postBridges = () => [...new Set([route.a, route.b])];
    let ambiguousFailures = 0;
    let retries = 0;
    const stored = new Map(); // text -> id from the reply
    async function post(n) {
      const text = `p-${n}`;
      for (let attempt = 0; ; attempt++) {
        const bridges = postBridges();
        const bridge = bridges[(n + attempt) % bridges.length];
        let response;
        try {
          response = await fetch(`${bridge}/chat.v1.Chat/Post`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ room: ROOM, text }),
            signal: AbortSignal.timeout(5000),
          });
        } catch {
          ambiguousFailures++;
          response = null;
        }
        if (response?.ok) {
          const message = await response.json();
          stored.set(text, message.id);
          return;
        }
        if (response && response.status >= 500 && response.status !== 503) ambiguousFailures++;
        if (response) await response.text().catch(() => {});
        retries++;
        if (attempt > 200) throw new Error(`post ${n}: still failing (${response?.status})`);
        await sleep(50);
      }
    }

    const CONCURRENCY = 4;
    let next = 0;
    let killedA = false;
    let restartedRedis = false;
    async function poster() {
      while (next < POSTS) {
        const n = next++;
        if (n === KILL_AFTER && !killedA) {
          killedA = true;
          route.a = bridgeB.url; // out of rotation first, as a load balancer would
          chatA.kill('SIGKILL');
          check('chat-server A SIGKILLed mid-run', true);
        }
        if (n === REDIS_RESTART_AFTER && !restartedRedis) {
          restartedRedis = true;
          redis.kill('SIGTERM');
          await withTimeout(redis.exitedPromise, 15000, 'redis-server to stop');
          redis = await startRedis(dir, redisPort);
          check('redis-server restarted mid-run (same port, AOF)', true);
        }
        await post(n);
      }
    }
    await withTimeout(
      Promise.all(Array.from({ length: CONCURRENCY }, poster)),
      90000,
      `${POSTS} posts`,
    );
    checkEqual(`all ${POSTS} posts stored`, stored.size, POSTS);
    console.log(`# post retries: ${retries}, ambiguous failures: ${ambiguousFailures}`);

    // --- what everyone got --------------------------------------------------------
    const log = await logIds(redisPort);
    check(`the log holds every post (${log.length} entries)`, log.length >= POSTS, `${log.length}`);
    const logSet = new Set(log);
    check(
      'every post reply id is in the log',
      [...stored.values()].every((id) => logSet.has(id)),
    );
    const deadline = Date.now() + 60000;
    while (Date.now() < deadline && subscribers.some((s) => s.ids.length < log.length)) {
      await sleep(100);
    }
    const behind = subscribers.filter((s) => s.ids.length < log.length).length;
    checkEqual('every subscriber caught up with the log', behind, 0);
    const wrong = subscribers.filter((s) => JSON.stringify(s.ids) !== JSON.stringify(log));
    checkEqual(
      'every subscriber got exactly the log: same order, each event once',
      wrong.length,
      0,
    );
    if (wrong.length > 0) {
      const s = wrong[0];
      const seen = new Set();
      const dups = s.ids.filter((id) => (seen.has(id) ? true : (seen.add(id), false)));
      console.log(`# first wrong (home ${s.home}): ${s.ids.length} ids, dups ${dups.slice(0, 5)}, missing ${log.filter((id) => !seen.has(id)).slice(0, 5)}`);
    }
    const texts = new Set(subscribers[0].texts);
    checkEqual(
      'every posted text reached the subscribers',
      Array.from({ length: POSTS }, (_, n) => `p-${n}`).filter((t) => !texts.has(t)),
      [],
    );
    const movedOver = subscribers.filter((s) => s.home === 'a');
    check(
      `the ${movedOver.length} subscribers of the killed instance resumed on bridge B with Last-Event-ID`,
      movedOver.every((s) =>
        s.resumedWith.some((r) => r.bridge === new URL(bridgeB.url).host && r.lastEventId),
      ),
      JSON.stringify(movedOver.map((s) => s.resumedWith.length)),
    );
    checkEqual(
      "bridge B's subscribers were never cut (Redis restart included)",
      subscribers.filter((s) => s.home === 'b' && s.opens !== 1).length,
      0,
    );
    checkEqual('no stream ended with an `end` event', subscribers.filter((s) => s.ended).length, 0);
  },
  { timeoutMs: 150000 },
);

