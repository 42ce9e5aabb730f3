// Scale-out with real parts: Debian's nginx (the README's proxy settings) in
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
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { EventSource } from 'eventsource';
import { chromium } from 'playwright-core';
import {
  check,
  checkEqual,
  flags,
  metric,
  onCleanup,
  onFailure,
  run,
  sleep,
  startProcess,
  waitForMetric,
  withTimeout,
} from './harness.mjs';

const args = flags(['server', 'bridge']);
const NGINX = process.env.NGINX ?? '/usr/sbin/nginx';
const CHROMIUM = args.chromium ?? process.env.CHROMIUM ?? '/usr/bin/chromium';
const OPENSSL = process.env.OPENSSL ?? 'openssl';

const CLIENTS = 200;
const COUNT = 600;
const INTERVAL_MS = 25;  // 15 s of events per stream, the faults in the middle
const BROWSER_STREAMS = 20;
const BROWSER_COUNT = 50;
const BROWSER_INTERVAL_MS = 100;  // 5 s per browser stream

// --- processes ----------------------------------------------------------------

// Ports below 32768 (the kernel's ephemeral range starts at 32768), so no
// outgoing connection takes a port while its process is down and the restart
// finds it free. Node's listen() sets SO_REUSEADDR, as both binaries do.
const taken = new Set();
async function lowPort() {
  const first = 20000 + (process.pid % 5000) * 2;
  for (let port = first; port < first + 2000; port++) {
    if (taken.has(port)) continue;
    const free = await new Promise((resolve) => {
      const probe = net.createServer();
      probe.once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (free) {
      taken.add(port);
      return port;
    }
  }
  throw new Error('no free port in 20000..32767');
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

// A process on a fixed port that the test kills and starts again.
class Restartable {
  constructor(name, file, argv, ready) {
    Object.assign(this, { name, file, argv, ready, process: null, starts: 0 });
  }

  // Bounded: a few tries within 10 s, should the port be busy a moment.
  async start() {
    const deadline = Date.now() + 10000;
    for (;;) {
      try {
        this.process = await startProcess(`${this.name} #${++this.starts}`, this.file, this.argv, this.ready, 15000);
        return;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await sleep(200);
      }
    }
  }

  async kill() {
    this.process.kill('SIGKILL');
    const deadline = Date.now() + 5000;
    while (!this.process.exited()) {
      if (Date.now() > deadline) throw new Error(`${this.name} did not die on SIGKILL`);
      await sleep(5);
    }
  }
}

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

// A self-signed certificate for 127.0.0.1, made by openssl for this run.
async function selfSignedCert(dir) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  await withTimeout(
    promisify(execFile)(OPENSSL, [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ]),
    15000,
    'openssl req -x509',
  );
  return { cert, key };
}

// nginx with the README's proxy settings in front of `bridges`: plain
// HTTP/1.1 on one port, TLS + HTTP/2 on another, and the browser page at
// /page.html on both. Returns { http, https, errorLog() }.
async function startNginx(bridges, page) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gravity-scaleout-'));
  fs.chmodSync(dir, 0o755);  // nginx's workers run as nobody
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'www'), { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'www', 'page.html'), page, { mode: 0o644 });
  const { cert, key } = await selfSignedCert(dir);
  const [httpPort, httpsPort] = [await freePort(), await freePort()];
  // max_fails=1 fail_timeout=1s: a dead bridge is skipped for 1 s, then tried
  // again, so the restarted one gets its share back soon.
  const servers = bridges.map((b) => `server ${b.url.slice('http://'.length)} max_fails=1 fail_timeout=1s;`).join(' ');
  const location = `
    location = /page.html { root ${dir}/www; default_type text/html; }
    location / {
      proxy_pass http://gravity;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 1h;
      proxy_next_upstream error timeout;
      proxy_connect_timeout 5s;
      add_header X-Upstream $upstream_addr always;
    }`;
  const conf = `
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream gravity { ${servers} keepalive 64; }
  server {
    listen 127.0.0.1:${httpPort};
    ${location}
  }
  server {
    listen 127.0.0.1:${httpsPort} ssl http2;
    ssl_certificate ${cert};
    ssl_certificate_key ${key};
    ${location}
  }
}
`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  // Its own process group, so cleanup reaches the workers too.
  const child = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const errorLog = () => {
    try {
      return fs.readFileSync(path.join(dir, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  };
  onFailure(() => {
    console.log(`# --- nginx output ---\n# ${output}`);
    const lines = errorLog().trimEnd().split('\n');
    console.log(`# --- nginx error.log (last 40 of ${lines.length} lines) ---`);
    for (const line of lines.slice(-40)) console.log(`# ${line}`);
  });
  onCleanup(async () => {
    try {
      process.kill(-child.pid, 'SIGTERM');  // the master stops its workers
    } catch {}
    await Promise.race([exited, sleep(3000)]);
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {}
  });
  const http = `http://127.0.0.1:${httpPort}`;
  const deadline = Date.now() + 10000;
  for (;;) {
    try {
      const r = await fetch(`${http}/healthz`);
      if (r.ok) break;
    } catch {}
    if (Date.now() > deadline) throw new Error(`nginx did not come up: ${output}\n${errorLog()}`);
    await sleep(100);
  }
  return { http, https: `https://127.0.0.1:${httpsPort}`, errorLog };
}

// --- EventSource clients ----------------------------------------------------------

const clients = new Set();
onCleanup(() => {
  for (const c of clients) c.es.close();
});

// One EventSource on a Ping stream of `count` events. It checks each event as
// it arrives (seq = the expected next one, lastEventId = seq), closes on
// `end`, and gives up only when EventSource itself fails for good (a non-200
// answer, e.g. a 502 from nginx).
function startClient(index, url, count) {
  const c = {
    index,
    count,
    next: 1,
    wrong: [],
    opens: 0,
    errors: 0,
    end: null,
    failed: null,
    lastEventAt: Date.now(),
    lastErrorAt: 0,
  };
  c.done = new Promise((resolve) => {
    const es = new EventSource(url);
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
      c.lastErrorAt = Date.now();
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
const running = (list) => list.filter((c) => !c.end && !c.failed).length;
const reconnects = (list) => list.reduce((n, c) => n + c.errors, 0);

function describe(c) {
  return (
    `client ${c.index}: next seq ${c.next}/${c.count}, opens ${c.opens}, errors ${c.errors}, ` +
    `end ${JSON.stringify(c.end)}, failed ${c.failed}, readyState ${c.es.readyState}, ` +
    `last event ${Date.now() - c.lastEventAt} ms ago${c.wrong.length ? `, wrong: ${c.wrong.join('; ')}` : ''}`
  );
}

async function printMetrics(bridges) {
  for (const b of bridges) {
    try {
      const text = await withTimeout(fetch(`${b.url}/metrics`).then((r) => r.text()), 5000, 'GET /metrics');
      console.log(`# --- ${b.name} /metrics ---`);
      for (const line of text.trimEnd().split('\n')) if (!line.startsWith('#')) console.log(`# ${line}`);
    } catch (e) {
      console.log(`# ${b.name} /metrics: ${e.message}`);
    }
  }
}

// Waits (bounded) until pred() holds; returns whether it did.
async function until(pred, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

// --- the browser page ---------------------------------------------------------------

// openStreams(url, n, sampleMs, waitAll): opens n EventSources on url at
// once; after sampleMs notes how many have had their first event and how many
// have ended; then (waitAll) waits for every one to end, or closes them all.
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>gravity scale-out</title></head><body><script>
window.openStreams = (url, n, sampleMs, waitAll, timeoutMs) => new Promise((resolve) => {
  const t0 = performance.now();
  const streams = [];
  let settled = false;
  const finish = (why) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    for (const s of streams) s.es.close();
    resolve({
      why,
      protocol: performance.getEntriesByType('navigation')[0]?.nextHopProtocol,
      sample,
      streams: streams.map(({ es, ...rest }) => rest),
    });
  };
  let sample = null;
  const timer = setTimeout(() => finish('timeout'), timeoutMs);
  const maybeDone = () => { if (waitAll && sample && streams.every((s) => s.end !== null || s.closed)) finish('all ended'); };
  for (let i = 0; i < n; i++) {
    const s = { seqs: [], firstAt: null, endAt: null, end: null, errors: 0, closed: false };
    s.es = new EventSource(url);
    s.es.onmessage = (e) => {
      if (s.firstAt === null) s.firstAt = Math.round(performance.now() - t0);
      s.seqs.push(Number(JSON.parse(e.data).seq));
    };
    s.es.addEventListener('end', (e) => {
      s.endAt = Math.round(performance.now() - t0);
      s.end = JSON.parse(e.data).code;
      s.es.close();
      maybeDone();
    });
    s.es.onerror = () => { s.errors++; if (s.es.readyState === EventSource.CLOSED) { s.closed = true; maybeDone(); } };
    streams.push(s);
  }
  setTimeout(() => {
    sample = {
      atMs: Math.round(performance.now() - t0),
      started: streams.filter((s) => s.firstAt !== null).length,
      ended: streams.filter((s) => s.end !== null || s.closed).length,
    };
    if (!waitAll) finish('sampled');
    else maybeDone();
  }, sampleMs);
});
</script></body></html>`;

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
    const front = await startNginx(bridges, PAGE);

    // --- 1. 200 clients; a bridge, then a backend killed and restarted -------
    const started = Date.now();
    const url = `${front.http}/api/streaming/ping?to=scale&count=${COUNT}&interval_ms=${INTERVAL_MS}`;
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
        const r = await withTimeout(fetch(`${front.http}/healthz`), 10000, 'GET /healthz through nginx');
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
        startClient(`extra ${i}`, `${front.http}/api/streaming/ping?to=extra&count=20&interval_ms=10`, 20),
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
        const r = await withTimeout(fetch(`${front.http}/healthz`), 10000, 'GET /healthz through nginx');
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
      const bad = list.filter((c) => !complete(c));
      check(
        `all ${CLIENTS} clients saw every seq 1..${COUNT} exactly once, in order, then end code 0`,
        bad.length === 0,
        `${bad.length} did not:\n${bad.slice(0, 10).map((c) => `  ${describe(c)}`).join('\n')}`,
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
      const stalled = list.filter((c) => !c.end && !c.failed);
      console.log(`# ${stalled.length} of ${list.length} clients had not ended:`);
      for (const c of stalled.slice(0, 20)) console.log(`#   ${describe(c)}`);
      await printMetrics(bridges);
      throw e;
    }

    // --- 2. Chromium: 20 streams over HTTP/2, 6 over HTTP/1.1 -----------------
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'gravity-scaleout-chromium-'));
    onCleanup(() => fs.rmSync(profile, { recursive: true, force: true }));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      ignoreHTTPSErrors: true,
      timeout: 20000,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    onCleanup(() => context.close());
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(15000);
    const consoleLines = [];
    page.on('console', (m) => consoleLines.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => consoleLines.push(`[pageerror] ${e.message}`));
    onFailure(() => {
      console.log('# --- browser console ---');
      for (const line of consoleLines) console.log(`# ${line}`);
    });
    const streamPath = `/api/streaming/ping?to=browser&count=${BROWSER_COUNT}&interval_ms=${BROWSER_INTERVAL_MS}`;
    const expected = Array.from({ length: BROWSER_COUNT }, (_, i) => i + 1);

    // TLS + HTTP/2: all 20 at once, each complete.
    {
      await page.goto(`${front.https}/page.html`, { waitUntil: 'load' });
      const r = await withTimeout(
        page.evaluate(([u, n]) => window.openStreams(u, n, 2500, true, 30000), [streamPath, BROWSER_STREAMS]),
        40000,
        'openStreams over h2',
      );
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
      await page.goto(`${front.http}/page.html`, { waitUntil: 'load' });
      const r = await withTimeout(
        page.evaluate(([u, n]) => window.openStreams(u, n, 2500, false, 30000), [streamPath, BROWSER_STREAMS]),
        40000,
        'openStreams over HTTP/1.1',
      );
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
