// Fan-out across server instances, end to end, deployed as production would
// be (browsers -> nginx -> bridges -> chat-servers -> Redis): redis-server
// (AOF on, a temp dir) + two instances, each a gravity-bridge in front of its
// own chat-server (the pair docs/topics.md draws: one host or pod each), and
// Debian's nginx in front of both bridges (docs/bridge.md's "Behind nginx"
// settings; proxy_next_upstream error timeout). 100 SSE subscribers
// (eventsource@4) and 1,000 posts (POST /chat.v1.Chat/Post, JSON) all go to
// nginx only, which spreads them over both instances.
//
// Mid-run instance A dies: its chat-server and its bridge are SIGKILLed
// together, as when the host goes (a bridge left running without its
// chat-server would still accept connections and answer `retry:`/503, which
// nginx cannot tell from a healthy bridge). nginx cuts A's streams; those
// subscribers reconnect by themselves (eventsource@4, the bridge's retry:),
// nginx finds bridge A dead and passes them on to bridge B, and they resume
// there with Last-Event-ID. Later Redis is restarted. Every subscriber must
// end with exactly the log, in log order, each event once, and the log must
// hold every post.
//
//   node chat_fanout.test.mjs --chat_server=bazel-bin/examples/chat/chat-server \
//        --bridge=bazel-bin/bridge/gravity-bridge --redis_server=/usr/bin/redis-server
//   ($NGINX, default /usr/sbin/nginx)
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EventSource } from 'eventsource';
import {
  check,
  checkEqual,
  flags,
  lowPort,
  onCleanup,
  run,
  sleep,
  startBridge,
  startChatServer,
  startNginx,
  startRedis,
  withTimeout,
} from './harness.mjs';

const args = flags(['chat_server', 'bridge', 'redis_server']);
const SUBSCRIBERS = 100;
const POSTS = 1000;
const KILL_AFTER = 300; // posts before chat-server A is SIGKILLed
const REDIS_RESTART_AFTER = 600; // posts before Redis is restarted
const ROOM = 'fanout';
const KEY = `gravity:topic:chat:${ROOM}`;

// redis-server in `dir` on `port`, with AOF (fsync always), so that a
// restart keeps the log; resolves once it is ready.
const startAofRedis = (dir, port) =>
  startRedis(args.redis_server, dir, port, ['--appendonly', 'yes', '--appendfsync', 'always']);

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

run(
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gravity-chat-'));
    onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
    const redisPort = await lowPort();
    let redis = await startAofRedis(dir, redisPort);
    const redisAddress = `127.0.0.1:${redisPort}`;

    const chatA = await startChatServer(args.chat_server, redisAddress);
    const chatB = await startChatServer(args.chat_server, redisAddress);
    const bridgeArgs = ['--retry=300ms', '--access_log=-'];
    const bridgeA = await startBridge(args.bridge, chatA.address, bridgeArgs);
    const bridgeB = await startBridge(args.bridge, chatB.address, bridgeArgs);
    // Trace context, browser to Redis: a Post with a traceparent through the
    // bridge reaches chat-server's CallInfo, which keeps it with the Redis
    // entry, and the bridge's access-log line carries the same trace id.
    {
      const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
      const traceparent = `00-${traceId}-00f067aa0ba902b7-01`;
      const response = await fetch(`${bridgeB.url}/chat.v1.Chat/Post`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent },
        body: JSON.stringify({ room: 'traced', text: 'followed' }),
      });
      const posted = await response.json();
      check('trace context: the traced Post is stored', response.status === 200 && !!posted.id, JSON.stringify(posted));
      const cli = path.join(path.dirname(args.redis_server), 'redis-cli');
      const script =
        "local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])[1][2] " +
        "for i = 1, #e, 2 do if e[i] == 'traceparent' then return e[i + 1] end end return ''";
      const stored = await new Promise((resolve) =>
        execFile(cli, ['-p', String(redisPort), '--raw', 'EVAL', script, '1', 'gravity:topic:chat:traced', posted.id ?? '0'],
          (error, stdout) => resolve(error ? `error: ${error.message}` : stdout.trim())),
      );
      checkEqual("trace context: the Redis entry holds the browser's traceparent", stored, traceparent);
      let logged = false;
      for (let i = 0; i < 50 && !logged; i++) {
        logged = bridgeB.output().includes(`"trace_id":"${traceId}"`);
        if (!logged) await sleep(100);
      }
      check("trace context: the bridge's access-log line has the same trace id", logged);
    }
    const hostA = new URL(bridgeA.url).host;
    const hostB = new URL(bridgeB.url).host;
    // docs/bridge.md's upstream and location settings; X-Upstream: the bridges
    // nginx tried for a request ("A, B" after a failover), so the test can
    // tell where each connection went.
    const front = await startNginx([hostA, hostB], {
      serverParams: 'max_fails=1 fail_timeout=1s',
      location: `proxy_next_upstream error timeout;
      proxy_connect_timeout 5s;
      add_header X-Upstream $upstream_addr always;`,
    });
    const servedBy = (response) => {
      const tried = (response.headers.get('x-upstream') ?? '').split(',').map((a) => a.trim());
      return tried[tried.length - 1];
    };

    // --- subscribers ----------------------------------------------------------
    // Every subscriber connects to nginx; its home is the bridge nginx picked
    // for its first connection.
    const subscribers = [];
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const s = { home: null, ids: [], texts: [], opens: 0, connections: [], errors: 0, ended: null };
      s.es = new EventSource(`${front.url}/chat.v1.Chat/Subscribe?room=${ROOM}`, {
        fetch: async (input, init) => {
          const response = await fetch(input, init);
          const bridge = servedBy(response);
          s.home ??= bridge;
          s.connections.push({
            bridge,
            status: response.status,
            lastEventId: init?.headers?.['Last-Event-ID'] ?? '',
          });
          return response;
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
    const onA = subscribers.filter((s) => s.home === hostA).length;
    const onB = subscribers.filter((s) => s.home === hostB).length;
    check(
      `${SUBSCRIBERS} SSE subscribers open through nginx, spread over both bridges`,
      onA > 0 && onB > 0 && onA + onB === SUBSCRIBERS,
      `A ${onA}, B ${onB}`,
    );

    // --- posts ------------------------------------------------------------------
    // POST /chat.v1.Chat/Post through nginx, which spreads them over both
    // bridges. A post that fails (its instance died: 502 from nginx; Redis
    // down: 503) is retried; one that failed after the instance may have
    // stored it could then be in the log twice (counted below).
    let ambiguousFailures = 0;
    let retries = 0;
    const postedVia = new Map(); // bridge -> posts it answered
    const stored = new Map(); // text -> id from the reply
    async function post(n) {
      const text = `p-${n}`;
      for (let attempt = 0; ; attempt++) {
        let response;
        try {
          response = await fetch(`${front.url}/chat.v1.Chat/Post`, {
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
          const bridge = servedBy(response);
          postedVia.set(bridge, (postedVia.get(bridge) ?? 0) + 1);
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
          chatA.kill('SIGKILL');
          bridgeA.kill('SIGKILL');
          check('instance A (its chat-server and its bridge) SIGKILLed mid-run', true);
        }
        if (n === REDIS_RESTART_AFTER && !restartedRedis) {
          restartedRedis = true;
          redis.kill('SIGTERM');
          await withTimeout(redis.whenExited(), 15000, 'redis-server to stop');
          redis = await startAofRedis(dir, redisPort);
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
    console.log(
      `# post retries: ${retries}, ambiguous failures: ${ambiguousFailures}, ` +
        `answered via ${JSON.stringify(Object.fromEntries(postedVia))}`,
    );
    check('posts were answered through both bridges', postedVia.size === 2, JSON.stringify([...postedVia]));

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
    const movedOver = subscribers.filter((s) => s.home === hostA);
    check(
      `the ${movedOver.length} subscribers of the killed instance reconnected through nginx to bridge B with Last-Event-ID`,
      movedOver.length > 0 &&
        movedOver.every((s) =>
          s.connections.some((c) => c.bridge === hostB && c.status === 200 && c.lastEventId),
        ),
      JSON.stringify(movedOver.slice(0, 3).map((s) => s.connections)),
    );
    checkEqual(
      "bridge B's subscribers were never cut (Redis restart included)",
      subscribers.filter((s) => s.home === hostB && s.opens !== 1).length,
      0,
    );
    checkEqual('no stream ended with an `end` event', subscribers.filter((s) => s.ended).length, 0);
  },
  { timeoutMs: 150000 },
);

