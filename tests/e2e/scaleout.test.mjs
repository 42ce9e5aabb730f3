// Scale-out with real parts: Debian's nginx (docs/bridge.md's proxy settings) in
// front of two gravity-bridge processes, each reaching both of two
// streaming-server processes with round_robin (--backend=ipv4:A,B).
//
// 1. 200 EventSource clients (npm eventsource@4) read Ping streams through
//    nginx. Mid-run one bridge is SIGKILLed (nginx moves new connections to
//    the other one: proxy_next_upstream error; the cut streams reconnect with
//    Last-Event-ID by themselves), then started again on its port; then one
//    backend is SIGKILLed (the bridges' round_robin moves on; the cut streams
//    resume) and started again. Every client must see every seq exactly once,
//    in order, and an `end` with code 0.
// 2. A Chromium page served by nginx over TLS + HTTP/2 holds 20 EventSource
//    streams at once; the same page over plain HTTP/1.1 gets only 6 at a time
//    (Chromium's per-host connection limit).
//
//   node scaleout.test.mjs --server=bazel-bin/examples/streaming/streaming-server \
//                          --bridge=bazel-bin/bridge/gravity-bridge [--chromium=/usr/bin/chromium]
//   ($NGINX, default /usr/sbin/nginx; $OPENSSL, default openssl on PATH)
import { chromium } from 'playwright-core';
import {
  checkAllComplete,
  complete,
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
  launchChromium,
  lowPort,
  metric,
  onFailure,
  openStreamsPage,
  Restartable,
  run,
  sleep,
  startNginx,
  until,
  waitForMetric,
  withTimeout,
} from './harness.mjs';

const args = flags(['server', 'bridge']);

const CLIENTS = 200;
const COUNT = 600;
const INTERVAL_MS = 25;  // 15 s of events per stream, the faults in the middle
const BROWSER_STREAMS = 20;
const BROWSER_COUNT = 50;
const BROWSER_INTERVAL_MS = 100;  // 5 s per browser stream

// --- processes ----------------------------------------------------------------

function backend(port) {
  return new Restartable(
    `streaming-server :${port}`,
    args.server,
    [`--listen=127.0.0.1:${port}`, '--drain=1s'],
    /^streaming-server listening on (\S+:\d+)\s*$/,
  );
}

function bridge(port, backendPorts) {
  const b = new Restartable(
    `gravity-bridge :${port}`,
    args.bridge,
    [
      `--listen=127.0.0.1:${port}`,
      `--backend=ipv4:${backendPorts.map((p) => `127.0.0.1:${p}`).join(',')}`,
      '--retry=100ms',
      '--drain=1s',
      '--discovery_timeout=10s',
    ],
    /^gravity-bridge listening on (http:\/\/\S+:\d+)\s*$/,
  );
  b.url = `http://127.0.0.1:${port}`;
  return b;
}

// Prints each bridge's /metrics.
async function printBridgeMetrics(bridges) {
  for (const b of bridges) await printMetrics(b.url, `${b.name} /metrics`);
}

// --- the browser page ---------------------------------------------------------------

// harness.mjs's openStreams(urls, sampleMs, waitAll, timeoutMs).
const PAGE = openStreamsPage('gravity scale-out');

// --- the test -----------------------------------------------------------------------

run(
  async () => {
    const backendPorts = [await lowPort(), await lowPort()];
    const bridgePorts = [await lowPort(), await lowPort()];
    const backends = backendPorts.map(backend);
    for (const b of backends) await b.start();
    const bridges = bridgePorts.map((p) => bridge(p, backendPorts));
    for (const b of bridges) await b.start();
    onFailure(() => console.log(`# backends on ${backendPorts}, bridges on ${bridgePorts}`));
    // nginx: plain HTTP/1.1 (front.url) and TLS + HTTP/2 (front.https), the
    // browser page at /page.html on both. max_fails=1 fail_timeout=1s: a dead
    // bridge is skipped for 1 s, then tried again, so the restarted one gets
    // its share back soon.
    const front = await startNginx(
      bridges.map((b) => b.url.slice('http://'.length)),
      {
        serverParams: 'max_fails=1 fail_timeout=1s',
        location: `proxy_next_upstream error timeout;
      proxy_connect_timeout 5s;
      add_header X-Upstream $upstream_addr always;`,
        files: { 'page.html': PAGE },
        tls: true,
      },
    );

    // --- 1. 200 clients; a bridge, then a backend killed and restarted -------
    const started = Date.now();
    const url = `${front.url}/api/streaming/ping?to=scale&count=${COUNT}&interval_ms=${INTERVAL_MS}`;
    const list = Array.from({ length: CLIENTS }, (_, i) => startClient(i, url, COUNT));
    try {
      check(
        'every client under way (>= 20 events) through nginx',
        await until(() => list.every((c) => c.next > 20), 30000),
        list.filter((c) => c.next <= 20).slice(0, 10).map(describe).join('\n'),
      );

      // A bridge dies: its streams are cut (nginx closes them to the client),
      // and their reconnects go to the other bridge.
      let before = reconnects(list);
      const runningAtBridgeKill = running(list);
      const bridgeKilledAt = Date.now();
      await bridges[0].kill();
      // The cut streams reconnect at once (retry: 100 ms), and nginx marks the
      // dead bridge failed for fail_timeout (1 s). After that, new requests
      // meet it again: nginx must move each on to the live bridge
      // (proxy_next_upstream error), never answer 502. X-Upstream (nginx's
      // $upstream_addr) names the bridges a request was tried on.
      const dead = bridges[0].url.slice('http://'.length);
      const live = bridges[1].url.slice('http://'.length);
      const probes = [];
      const retried = await until(async () => {
        const r = await withTimeout(fetch(`${front.url}/healthz`), 10000, 'GET /healthz through nginx');
        probes.push({ status: r.status, upstream: r.headers.get('x-upstream') });
        await r.arrayBuffer();
        return r.headers.get('x-upstream') === `${dead}, ${live}`;
      }, 15000);
      check(
        'with a bridge down: nginx tried the dead bridge, then the live one (X-Upstream "dead, live")',
        retried,
        JSON.stringify(probes.slice(-5)),
      );
      checkEqual(
        `with a bridge down: all ${probes.length} GET /healthz through nginx answered 200`,
        probes.filter((p) => p.status !== 200),
        [],
      );
      const extra = Array.from({ length: 10 }, (_, i) =>
        startClient(`extra ${i}`, `${front.url}/api/streaming/ping?to=extra&count=20&interval_ms=10`, 20),
      );
      await withTimeout(Promise.all(extra.map((c) => c.done)), 20000, 'new streams with a bridge down');
      check(
        'with a bridge down: 10 new streams through nginx complete (every seq once, end code 0)',
        extra.every(complete),
        extra.filter((c) => !complete(c)).map(describe).join('\n'),
      );
      // The cut streams come back through nginx to the live bridge, after the
      // retry: hint each stream got at its start (100 ms here), not after
      // EventSource's default 3 s.
      const resumed = await until(
        () => list.every((c) => c.end || c.failed || c.lastEventAt > c.lastErrorAt),
        20000,
      );
      const resumedAfterMs = Date.now() - bridgeKilledAt;
      const cutByBridgeKill = reconnects(list) - before;
      check('bridge SIGKILL cut streams', cutByBridgeKill > 0, `${cutByBridgeKill}`);
      check(
        'with a bridge down: every cut stream resumed through nginx on the live bridge',
        resumed,
        list.filter((c) => !(c.end || c.failed || c.lastEventAt > c.lastErrorAt)).slice(0, 10).map(describe).join('\n'),
      );
      check('no client failed (no 502 from nginx) while a bridge was down', list.every((c) => !c.failed));
      await bridges[0].start();
      const refused = (front.errorLog().match(/connect\(\) failed \(111: Connection refused\)/g) ?? []).length;

      // nginx takes the restarted bridge back once fail_timeout has passed
      // (whole seconds in nginx: up to 2 s).
      let backAfter = 0;
      const back = await until(async () => {
        backAfter++;
        const r = await withTimeout(fetch(`${front.url}/healthz`), 10000, 'GET /healthz through nginx');
        await r.arrayBuffer();
        return r.status === 200 && r.headers.get('x-upstream') === dead;
      }, 15000);
      check('nginx sends requests to the restarted bridge again', back, `${backAfter} probes`);
      const servedBefore = await metric(bridges[0].url, 'gravity_bridge_streams_total');

      // A backend dies: the streams on it are cut and resume on the other one.
      before = reconnects(list);
      const runningAtBackendKill = running(list);
      await backends[0].kill();
      await sleep(1000);
      await backends[0].start();

      await withTimeout(Promise.all(list.map((c) => c.done)), 90000, 'the 200 clients to end');
      const cutByBackendKill = reconnects(list) - before;
      check('backend SIGKILL cut streams, which reconnected', cutByBackendKill > 0, `${cutByBackendKill}`);
      checkAllComplete(
        `all ${CLIENTS} clients saw every seq 1..${COUNT} exactly once, in order, then end code 0`,
        list,
      );
      const restartedServed = (await metric(bridges[0].url, 'gravity_bridge_streams_total')) - servedBefore;
      check(
        'the restarted bridge took its share of the reconnects after the backend kill',
        restartedServed > 0,
        `streams_total +${restartedServed}`,
      );
      console.log(
        `# scaleout: ${CLIENTS} clients x ${COUNT} events via nginx -> 2 bridges -> 2 backends; ` +
          `bridge SIGKILL with ${runningAtBridgeKill} streams running cut ${cutByBridgeKill} ` +
          `(all resumed on the other bridge within ${(resumedAfterMs / 1000).toFixed(1)} s), ` +
          `backend SIGKILL with ${runningAtBackendKill} running cut ${cutByBackendKill}; ` +
          `${reconnects(list)} reconnects in all, ${refused} connects refused by the dead bridge, ` +
          `the restarted bridge took ${restartedServed} of the reconnects after the backend kill; every seq once, all end code 0 ` +
          `after ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    } catch (e) {
      printStalled(list, (n) => `${n} of ${list.length} clients had not ended:`);
      await printBridgeMetrics(bridges);
      throw e;
    }

    // --- 2. Chromium: 20 streams over HTTP/2, 6 over HTTP/1.1 -----------------
    const { page } = await launchChromium(chromium, {
      executablePath: args.chromium,
      profilePrefix: 'gravity-scaleout-chromium-',
      ignoreHTTPSErrors: true,
    });
    const streamPath = `/api/streaming/ping?to=browser&count=${BROWSER_COUNT}&interval_ms=${BROWSER_INTERVAL_MS}`;
    const expected = Array.from({ length: BROWSER_COUNT }, (_, i) => i + 1);
    // Loads the page from `origin`, then its openStreams(20 x streamPath, 2500 ms, waitAll).
    const openStreams = async (origin, waitAll, what) => {
      await page.goto(`${origin}/page.html`, { waitUntil: 'load' });
      return withTimeout(
        page.evaluate(([urls, w]) => window.openStreams(urls, 2500, w, 30000), [
          Array(BROWSER_STREAMS).fill(streamPath),
          waitAll,
        ]),
        40000,
        what,
      );
    };

    // TLS + HTTP/2: all 20 at once, each complete.
    {
      const r = await openStreams(front.https, true, 'openStreams over h2');
      checkEqual('Chromium over TLS: the page came over HTTP/2', r.protocol, 'h2');
      checkEqual('over HTTP/2: all streams ended', r.why, 'all ended');
      checkEqual(
        `over HTTP/2: all ${BROWSER_STREAMS} streams had events 2.5 s after opening, none had ended`,
        [r.sample?.started, r.sample?.ended],
        [BROWSER_STREAMS, 0],
      );
      const firstEnd = Math.min(...r.streams.map((s) => s.endAt ?? Infinity));
      const concurrent = r.streams.filter((s) => s.firstAt !== null && s.firstAt < firstEnd).length;
      checkEqual(`over HTTP/2: ${BROWSER_STREAMS} streams received events at once`, concurrent, BROWSER_STREAMS);
      check(
        `over HTTP/2: every stream got seq 1..${BROWSER_COUNT} once, in order, then end code 0`,
        r.streams.every((s) => s.end === 0 && JSON.stringify(s.seqs) === JSON.stringify(expected)),
        JSON.stringify(r.streams.map((s) => ({ n: s.seqs.length, end: s.end, errors: s.errors }))),
      );
      console.log(`# browser h2: ${concurrent} of ${BROWSER_STREAMS} streams concurrent, first events at ` +
        `${Math.min(...r.streams.map((s) => s.firstAt))}-${Math.max(...r.streams.map((s) => s.firstAt))} ms`);
    }

    // Plain HTTP/1.1: 6 connections per host, so 6 streams at a time.
    {
      const r = await openStreams(front.url, false, 'openStreams over HTTP/1.1');
      checkEqual('Chromium over plain HTTP: the page came over HTTP/1.1', r.protocol, 'http/1.1');
      checkEqual('over HTTP/1.1: sampled 2.5 s after opening, while the first streams still ran', [
        r.why,
        r.sample?.ended,
      ], ['sampled', 0]);
      check(
        `over HTTP/1.1: at most 6 of ${BROWSER_STREAMS} streams had events (Chromium's per-host limit)`,
        r.sample?.started >= 1 && r.sample?.started <= 6,
        `${r.sample?.started} had events`,
      );
      console.log(`# browser http/1.1: ${r.sample?.started} of ${BROWSER_STREAMS} streams had events after 2.5 s`);
    }

    // Everything closed: both bridges hold no stream.
    for (const b of bridges) {
      checkEqual(
        `${b.name}: gravity_bridge_active_streams back to 0`,
        await waitForMetric(b.url, 'gravity_bridge_active_streams', 0, 10000),
        0,
      );
    }
  },
  { timeoutMs: 240000 },
);
