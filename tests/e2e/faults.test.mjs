// Backend faults under real EventSource clients (npm eventsource@4), through
// one gravity-bridge:
//
// 1. The backend (streaming-server, a subprocess on a fixed port) is SIGKILLed
//    and restarted 50 times while 50 clients read Ping streams. EventSource
//    reconnects by itself after each cut, sending Last-Event-ID; every client
//    must see every seq exactly once, in order, and an `end` with code 0.
// 2. The backend is frozen (SIGSTOP) for 10 s under 50 clients: no client
//    loses its connection (one `open`, no `error`), the bridge's `: keep-alive`
//    comments keep arriving (counted under EventSource by a wrapping fetch),
//    and after SIGCONT every stream completes.
//
//   node faults.test.mjs --server=bazel-bin/examples/streaming/streaming-server \
//                        --bridge=bazel-bin/bridge/gravity-bridge
import net from 'node:net';
import { EventSource } from 'eventsource';
import {
  check,
  checkEqual,
  flags,
  onCleanup,
  onFailure,
  run,
  sleep,
  startBridge,
  startProcess,
  withTimeout,
} from './harness.mjs';

const args = flags(['server', 'bridge']);

const CLIENTS = 50;
const CYCLES = 50;
// 20 ms apart. The backend is up at most about CYCLES x 300 ms during the kill
// cycles, so it can emit at most ~750 events of a stream meanwhile: with 1000
// every stream is still running when the last cycle ends.
const KILL_COUNT = 1000;
const INTERVAL_MS = 20;
const FREEZE_COUNT = 200;  // 4 s of events, the 10 s freeze after the first 0.5-1 s

// A port below 32768 (the kernel's ephemeral range starts at 32768), so the
// kernel never hands it to some outgoing connection while the backend is
// down and the restart finds it free. Node's listen() sets SO_REUSEADDR, as
// the backend does, so connections in TIME_WAIT do not count.
async function lowPort() {
  const first = 20000 + (process.pid % 5000) * 2;
  for (let port = first; port < first + 2000; port++) {
    const free = await new Promise((resolve) => {
      const probe = net.createServer();
      probe.once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port in 20000..32767');
}

// streaming-server on a fixed port, killed and started again and again.
class Backend {
  constructor(port) {
    this.port = port;
    this.process = null;
    this.starts = 0;
  }

  // Bounded: a few tries within 5 s, should the port be busy a moment.
  async start() {
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        this.process = await startProcess(
          `streaming-server #${++this.starts}`,
          args.server,
          [`--listen=127.0.0.1:${this.port}`, '--drain=1s'],
          /^streaming-server listening on (\S+:\d+)\s*$/,
          10000,
        );
        return;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await sleep(100);
      }
    }
  }

  async kill() {
    if (!this.process) return;
    this.process.kill('SIGKILL');
    const deadline = Date.now() + 5000;
    while (!this.process.exited()) {
      if (Date.now() > deadline) throw new Error('streaming-server did not die on SIGKILL');
      await sleep(5);
    }
    this.process = null;
  }

  signal(name) {
    this.process.kill(name);
  }
}

// A fetch for EventSource that counts `: keep-alive` comments in the bytes it
// passes on (EventSource itself never shows comments).
function countingFetch(client) {
  const needle = ': keep-alive';
  return async (url, init) => {
    const response = await fetch(url, init);
    if (!response.body) return response;
    const decoder = new TextDecoder();
    let carry = '';
    const counter = new TransformStream({
      transform(chunk, controller) {
        const text = carry + decoder.decode(chunk, { stream: true });
        for (let at = text.indexOf(needle); at !== -1; at = text.indexOf(needle, at + needle.length)) {
          client.keepalives++;
        }
        carry = text.slice(-(needle.length - 1));
        controller.enqueue(chunk);
      },
    });
    return new Response(response.body.pipeThrough(counter), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

const clients = new Set();
onCleanup(() => {
  for (const c of clients) c.es.close();
});

// One EventSource on a Ping stream of `count` events. It checks each event as
// it arrives (seq = the expected next one, lastEventId = seq), closes on
// `end`, and gives up only when EventSource itself fails for good.
function startClient(index, url, count, { keepalives = false } = {}) {
  const c = {
    index,
    count,
    next: 1,
    wrong: [],
    opens: 0,
    errors: 0,
    keepalives: 0,
    end: null,
    failed: null,
    lastEventAt: Date.now(),
  };
  c.done = new Promise((resolve) => {
    const es = new EventSource(url, keepalives ? { fetch: countingFetch(c) } : undefined);
    c.es = es;
    es.addEventListener('open', () => c.opens++);
    es.addEventListener('message', (e) => {
      c.lastEventAt = Date.now();
      let seq = NaN;
      try {
        seq = Number(JSON.parse(e.data).seq);
      } catch {}
      if (seq !== c.next || e.lastEventId !== String(seq)) {
        if (c.wrong.length < 5) c.wrong.push(`seq ${seq} (id ${e.lastEventId}) where ${c.next} was due`);
      }
      if (Number.isInteger(seq)) c.next = seq + 1;
    });
    es.addEventListener('end', (e) => {
      try {
        c.end = JSON.parse(e.data);
      } catch {
        c.end = { unparsable: e.data };
      }
      es.close();
      resolve();
    });
    es.addEventListener('error', (e) => {
      c.errors++;
      if (es.readyState === EventSource.CLOSED) {
        c.failed = `${e.code ?? ''} ${e.message ?? ''}`.trim();
        resolve();
      }
    });
  });
  clients.add(c);
  c.done.then(() => clients.delete(c));
  return c;
}

const complete = (c) => c.end?.code === 0 && c.wrong.length === 0 && c.next === c.count + 1 && !c.failed;

function describe(c) {
  return (
    `client ${c.index}: next seq ${c.next}/${c.count}, opens ${c.opens}, errors ${c.errors}, ` +
    `end ${JSON.stringify(c.end)}, failed ${c.failed}, readyState ${c.es.readyState}, ` +
    `last event ${Date.now() - c.lastEventAt} ms ago${c.wrong.length ? `, wrong: ${c.wrong.join('; ')}` : ''}`
  );
}

// Waits (bounded) for every client to end. On a timeout, prints which
// clients stalled, where, and the bridge's /metrics, then throws.
async function awaitClients(list, timeoutMs, what, bridgeUrl) {
  try {
    await withTimeout(Promise.all(list.map((c) => c.done)), timeoutMs, what);
  } catch (e) {
    const stalled = list.filter((c) => !c.end && !c.failed);
    console.log(`# ${what}: ${stalled.length} of ${list.length} clients did not end within ${timeoutMs} ms`);
    for (const c of stalled.slice(0, 20)) console.log(`#   ${describe(c)}`);
    try {
      const text = await withTimeout(fetch(`${bridgeUrl}/metrics`).then((r) => r.text()), 5000, 'GET /metrics');
      console.log(`# --- bridge /metrics at the stall ---`);
      for (const line of text.trimEnd().split('\n')) if (!line.startsWith('#')) console.log(`# ${line}`);
    } catch (m) {
      console.log(`# /metrics: ${m.message}`);
    }
    throw e;
  }
}

function report(label, list) {
  const bad = list.filter((c) => !complete(c));
  check(
    `${label}: all ${list.length} clients saw every seq 1..${list[0].count} exactly once, in order, then end code 0`,
    bad.length === 0,
    `${bad.length} did not:\n${bad.slice(0, 10).map((c) => `  ${describe(c)}`).join('\n')}`,
  );
}

// Deterministic pauses (a small LCG), as the C++ faults test's mt19937(7).
function random(seed) {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

run(
  async () => {
    const port = await lowPort();
    const backend = new Backend(port);
    await backend.start();
    const bridge = await startBridge(args.bridge, `127.0.0.1:${port}`, [
      '--retry=100ms',
      '--keepalive=500ms',
    ]);
    onFailure(() => console.log(`# backend port ${port}, bridge ${bridge.url}`));
    const ping = (count) => `${bridge.url}/api/streaming/ping?to=faults&count=${count}&interval_ms=${INTERVAL_MS}`;

    // --- 1. SIGKILL + restart, CYCLES times, under CLIENTS clients ----------
    {
      const started = Date.now();
      const list = Array.from({ length: CLIENTS }, (_, i) => startClient(i, ping(KILL_COUNT), KILL_COUNT));
      const pause = random(7);
      let restarted = 0;
      let runningAtLastKill = 0;
      for (let cycle = 0; cycle < CYCLES; cycle++) {
        await sleep(100 + Math.floor(pause() * 200));
        if (cycle === CYCLES - 1) runningAtLastKill = list.filter((c) => !c.end && !c.failed).length;
        await backend.kill();
        await backend.start();
        restarted++;
      }
      const cyclesMs = Date.now() - started;
      checkEqual(`backend SIGKILLed and restarted on port ${port}`, restarted, CYCLES);
      await awaitClients(list, 120000, 'kill cycles: clients to end', bridge.url);
      report(`${CYCLES} kill/restart cycles`, list);
      const reconnects = list.reduce((n, c) => n + c.errors, 0);
      const opens = list.reduce((n, c) => n + c.opens, 0);
      checkEqual('kill cycles: every stream was still running at the last kill', runningAtLastKill, CLIENTS);
      check(
        'kill cycles: the kills reached every client (each reconnected at least once)',
        list.every((c) => c.errors >= 1),
        list.filter((c) => c.errors < 1).map(describe).join('\n'),
      );
      check('kill cycles: more reconnects than cycles', reconnects > CYCLES, `${reconnects} reconnects`);
      check('kill cycles: no client gave up (EventSource never CLOSED by an error)', list.every((c) => !c.failed));
      console.log(
        `# faults: ${CLIENTS} clients x ${KILL_COUNT} events, ${CYCLES} SIGKILL/restart cycles in ` +
          `${(cyclesMs / 1000).toFixed(1)} s, ${reconnects} reconnects (${opens} opens), ` +
          `${CLIENTS * KILL_COUNT} events, every seq once, all ended with code 0 after ` +
          `${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    }

    // --- 2. SIGSTOP for 10 s, then SIGCONT ----------------------------------
    {
      const list = Array.from({ length: CLIENTS }, (_, i) =>
        startClient(i, ping(FREEZE_COUNT), FREEZE_COUNT, { keepalives: true }),
      );
      // Freeze once every stream is under way (bounded wait).
      const deadline = Date.now() + 20000;
      while (!list.every((c) => c.next > 10) && Date.now() < deadline) await sleep(20);
      check('freeze: every stream under way before SIGSTOP', list.every((c) => c.next > 10));
      onCleanup(() => backend.process?.kill('SIGCONT'));  // runs first: never leave it stopped
      backend.signal('SIGSTOP');
      const keepalivesBefore = list.map((c) => c.keepalives);
      // Frozen means frozen: after the events already on their way when the
      // signal landed (3 s for them to drain, on a busy machine), nothing.
      await sleep(3000);
      const frozenAt = list.map((c) => c.next);
      await sleep(7000);
      const movedWhileFrozen = list.filter((c, i) => c.next !== frozenAt[i]).length;
      const keepalivesWhileFrozen = list.map((c, i) => c.keepalives - keepalivesBefore[i]);
      const openWhileFrozen = list.filter((c) => c.es.readyState === EventSource.OPEN).length;
      backend.signal('SIGCONT');
      await awaitClients(list, 60000, 'freeze: clients to end after SIGCONT', bridge.url);
      checkEqual('freeze: no stream moved in the last 7 s of the 10 s stop', movedWhileFrozen, 0);
      checkEqual('freeze: every EventSource still OPEN after 10 s stopped', openWhileFrozen, CLIENTS);
      check(
        'freeze: keep-alive comments kept coming (>= 10 per stream in 10 s at --keepalive=500ms)',
        keepalivesWhileFrozen.every((n) => n >= 10),
        `per stream: ${keepalivesWhileFrozen.join(',')}`,
      );
      report('freeze, after SIGCONT', list);
      const reconnects = list.reduce((n, c) => n + c.errors, 0);
      checkEqual('freeze: no reconnect (no error event, exactly one open per client)', [
        reconnects,
        list.every((c) => c.opens === 1),
      ], [0, true]);
      console.log(
        `# freeze: ${CLIENTS} clients, backend stopped 10 s: ${reconnects} reconnects, ` +
          `${Math.min(...keepalivesWhileFrozen)}-${Math.max(...keepalivesWhileFrozen)} keep-alives per stream meanwhile, ` +
          `all ${FREEZE_COUNT} events once after SIGCONT`,
      );
    }
  },
  { timeoutMs: 240000 },
);
