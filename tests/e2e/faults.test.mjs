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
import {
  EventSource,
  checkAllComplete,
  describe,
  printMetrics,
  printStalled,
  reconnects,
  running,
  startClient,
} from './es_clients.mjs';
import {
  check,
  checkEqual,
  flags,
  lowPort,
  onCleanup,
  onFailure,
  Restartable,
  run,
  sleep,
  startBridge,
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

// streaming-server on a fixed port, killed and started again and again
// (start(): a few tries within 5 s, should the port be busy a moment).
function backendOn(port) {
  return new Restartable(
    'streaming-server',
    args.server,
    [`--listen=127.0.0.1:${port}`, '--drain=1s'],
    /^streaming-server listening on (\S+:\d+)\s*$/,
    { retryForMs: 5000, retryEveryMs: 100, readyTimeoutMs: 10000 },
  );
}

// Waits (bounded) for every client to end. On a timeout, prints which
// clients stalled, where, and the bridge's /metrics, then throws.
async function awaitClients(list, timeoutMs, what, bridgeUrl) {
  try {
    await withTimeout(Promise.all(list.map((c) => c.done)), timeoutMs, what);
  } catch (e) {
    printStalled(list, (n) => `${what}: ${n} of ${list.length} clients did not end within ${timeoutMs} ms`);
    await printMetrics(bridgeUrl, 'bridge /metrics at the stall');
    throw e;
  }
}

function report(label, list) {
  checkAllComplete(
    `${label}: all ${list.length} clients saw every seq 1..${list[0].count} exactly once, in order, then end code 0`,
    list,
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
    const backend = backendOn(port);
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
        if (cycle === CYCLES - 1) runningAtLastKill = running(list);
        await backend.kill();
        await backend.start();
        restarted++;
      }
      const cyclesMs = Date.now() - started;
      checkEqual(`backend SIGKILLed and restarted on port ${port}`, restarted, CYCLES);
      await awaitClients(list, 120000, 'kill cycles: clients to end', bridge.url);
      report(`${CYCLES} kill/restart cycles`, list);
      const reconnectCount = reconnects(list);
      const opens = list.reduce((n, c) => n + c.opens, 0);
      checkEqual('kill cycles: every stream was still running at the last kill', runningAtLastKill, CLIENTS);
      check(
        'kill cycles: the kills reached every client (each reconnected at least once)',
        list.every((c) => c.errors >= 1),
        list.filter((c) => c.errors < 1).map(describe).join('\n'),
      );
      check('kill cycles: more reconnects than cycles', reconnectCount > CYCLES, `${reconnectCount} reconnects`);
      check('kill cycles: no client gave up (EventSource never CLOSED by an error)', list.every((c) => !c.failed));
      console.log(
        `# faults: ${CLIENTS} clients x ${KILL_COUNT} events, ${CYCLES} SIGKILL/restart cycles in ` +
          `${(cyclesMs / 1000).toFixed(1)} s, ${reconnectCount} reconnects (${opens} opens), ` +
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
      const reconnectCount = reconnects(list);
      checkEqual('freeze: no reconnect (no error event, exactly one open per client)', [
        reconnectCount,
        list.every((c) => c.opens === 1),
      ], [0, true]);
      console.log(
        `# freeze: ${CLIENTS} clients, backend stopped 10 s: ${reconnectCount} reconnects, ` +
          `${Math.min(...keepalivesWhileFrozen)}-${Math.max(...keepalivesWhileFrozen)} keep-alives per stream meanwhile, ` +
          `all ${FREEZE_COUNT} events once after SIGCONT`,
      );
    }
  },
  { timeoutMs: 240000 },
);
