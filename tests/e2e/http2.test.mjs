// gravity-bridge's own TLS and HTTP/2 listener, straight to clients (no
// proxy): Node's node:http2 and node:https, Debian's curl and nghttp
// (nghttp2-client) against
//   - a TLS bridge (--tls_cert/--tls_key, a self-signed certificate made by
//     openssl for the run): h2 by ALPN, HTTP/1.1 by ALPN or without ALPN;
//   - a cleartext bridge: HTTP/1.1 as before, and h2c with prior knowledge;
//   - a third TLS bridge whose certificate is rotated with SIGHUP.
// Over h2 and h2c: 100 concurrent SSE streams on one connection, unary POST,
// errors before the first event, an error mid-stream, a POST body on a stream
// route, RST_STREAM cancelling the upstream call, the protocol in /metrics and
// in the access log. Then TLS versions, the handshake timeout, a preface that
// arrives in pieces, --http2_max_concurrent_streams, and certificate rotation
// (a good pair, garbage, a mismatched pair, a good pair again).
//
//   node http2.test.mjs --server=bazel-bin/examples/streaming/streaming-server \
//                       --bridge=bazel-bin/bridge/gravity-bridge
//   ($OPENSSL, default openssl on PATH; $CURL, default curl; $NGHTTP, default nghttp)
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import {
  check,
  checkEqual,
  flags,
  onCleanup,
  onFailure,
  randomToken,
  run,
  selfSignedCert,
  sleep,
  startBridge,
  startServer,
  until,
  withTimeout,
} from './harness.mjs';

const args = flags(['server', 'bridge']);
const CURL = process.env.CURL ?? 'curl';
const NGHTTP = process.env.NGHTTP ?? 'nghttp';
const STREAMS = 100;
const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR } = http2.constants;

// --- SSE ---------------------------------------------------------------------

// The bridge's SSE body: { retry, events: [{ id, event, data }], comments }.
function parseSse(text) {
  const out = { retry: null, events: [], comments: 0 };
  for (const block of text.split('\n\n')) {
    if (block === '') continue;
    const ev = { id: null, event: 'message', data: null };
    let hasField = false;
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        out.comments++;
        continue;
      }
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? '' : line.slice(i + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'retry') out.retry ??= Number(value);
      else if (field === 'id') (ev.id = value), (hasField = true);
      else if (field === 'event') (ev.event = value), (hasField = true);
      else if (field === 'data') (ev.data = ev.data === null ? value : `${ev.data}\n${value}`), (hasField = true);
    }
    if (hasField) out.events.push(ev);
  }
  return out;
}

const parseJson = (text) => {
  try {
    return JSON.parse(text);
  } catch {
    return { unparsable: text };
  }
};

// What is wrong with a Ping stream's response (empty: nothing): status 200,
// text/event-stream, `retry:` first, messages with ids 1..count and seq
// 1..count, `event: end` last with Status code `endCode`.
function pingProblems(r, { count, to, endCode = 0 }) {
  const problems = [];
  if (r.error && r.rstCode === undefined) problems.push(`error ${r.error}`);
  if (r.status !== 200) problems.push(`status ${r.status}`);
  const type = r.headers?.['content-type'] ?? '';
  if (!type.startsWith('text/event-stream')) problems.push(`content-type ${JSON.stringify(type)}`);
  if (!r.body.startsWith('retry: ')) problems.push(`body starts ${JSON.stringify(r.body.slice(0, 20))}`);
  const sse = parseSse(r.body);
  const messages = sse.events.filter((e) => e.event === 'message');
  const want = Array.from({ length: count }, (_, i) => String(i + 1));
  const ids = messages.map((m) => m.id);
  if (JSON.stringify(ids) !== JSON.stringify(want)) problems.push(`ids ${JSON.stringify(ids)}`);
  const bad = messages.filter((m) => {
    const d = parseJson(m.data);
    return d.seq !== m.id || (to !== undefined && d.message !== `Sending ping to ${to}`);
  });
  if (bad.length > 0) problems.push(`data ${bad[0].data}`);
  const last = sse.events.at(-1);
  if (last?.event !== 'end') problems.push(`last event ${JSON.stringify(last)}`);
  else if (parseJson(last.data).code !== endCode) problems.push(`end ${last.data}`);
  if (sse.events.filter((e) => e.event === 'end').length > 1) problems.push('more than one end');
  return problems;
}

// --- HTTP/2 client -------------------------------------------------------------

// An HTTP/2 session to `url` (https: ALPN h2; http: h2c with prior
// knowledge), once the bridge's SETTINGS have arrived. Errors after that are
// kept in session.errors, not thrown.
async function connectH2(url, options = {}) {
  const session = http2.connect(url, options);
  session.errors = [];
  onCleanup(() => session.destroyed || session.destroy());
  const settings = new Promise((resolve) => session.once('remoteSettings', resolve));
  await withTimeout(
    new Promise((resolve, reject) => {
      session.once('connect', resolve);
      session.once('error', reject);
    }),
    5000,
    `HTTP/2 connect to ${url}`,
  );
  session.on('error', (e) => session.errors.push(e.message));
  await withTimeout(settings, 5000, `the bridge's SETTINGS on ${url}`);
  return session;
}

// One request on `session`. Returns { stream, r, done }: r fills in as the
// response arrives (status, headers, body, headersAt, firstEventAt, endAt in
// ms from the request), `done` resolves with r when the stream is closed
// (r.rstCode: NGHTTP2_NO_ERROR when it ended cleanly).
function h2request(session, urlPath, { method = 'GET', headers = {}, body, onData, timeoutMs = 15000 } = {}) {
  const t0 = Date.now();
  const r = {
    status: null, headers: null, body: '', ended: false, rstCode: undefined, error: null,
    headersAt: null, firstEventAt: null, endAt: null,
  };
  const stream = session.request({ ':method': method, ':path': urlPath, ...headers }, { endStream: body === undefined });
  stream.setEncoding('utf8');
  stream.on('response', (h) => {
    r.status = h[':status'];
    r.headers = h;
    r.headersAt = Date.now() - t0;
  });
  stream.on('data', (chunk) => {
    r.body += chunk;
    if (r.firstEventAt === null && r.body.includes('\ndata: ')) r.firstEventAt = Date.now() - t0;
    if (r.endAt === null && r.body.includes('\nevent: end\n')) r.endAt = Date.now() - t0;
    onData?.(r);
  });
  stream.on('end', () => (r.ended = true));
  stream.on('error', (e) => (r.error = e.message));
  const closed = new Promise((resolve) =>
    stream.on('close', () => {
      r.rstCode = stream.rstCode;
      resolve(r);
    }),
  );
  if (body !== undefined) stream.end(body);
  return { stream, r, done: withTimeout(closed, timeoutMs, `${method} ${urlPath}`) };
}

const SSE = { accept: 'text/event-stream' };

// /metrics read over an HTTP/2 session (so that reading it opens no connection).
async function metricsOver(session) {
  const r = await h2request(session, '/metrics').done;
  if (r.status !== 200) throw new Error(`GET /metrics: ${r.status} ${r.body}`);
  return r.body;
}

// One series' value in Prometheus text ('name' or 'name{label="v"}'); undefined if absent.
function sample(text, series) {
  const escaped = series.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

// Polls `series` over `session` until it equals `want` (up to timeoutMs):
// { value, elapsedMs }.
async function waitForSample(session, series, want, timeoutMs) {
  const t0 = Date.now();
  for (;;) {
    const value = sample(await metricsOver(session), series);
    if (value === want || Date.now() - t0 >= timeoutMs) return { value, elapsedMs: Date.now() - t0 };
    await sleep(25);
  }
}

// --- other clients -------------------------------------------------------------

// GET over node:https (HTTP/1.1), with `options` for tls.connect (ca, ALPNProtocols).
function httpsGet(url, options) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const req = https.get(url, { agent: false, headers: SSE, ...options }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () =>
          resolve({
            status: res.statusCode,
            headers: res.headers,
            body,
            httpVersion: res.httpVersion,
            alpn: res.socket.alpnProtocol,
          }),
        );
      });
      req.on('error', reject);
    }),
    15000,
    `https.get ${url}`,
  );
}

// Runs `file args`, never rejecting: { code, stdout, stderr }.
function runTool(file, argv, timeoutMs = 20000) {
  return new Promise((resolve) => {
    execFile(file, argv, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      resolve({ code: error ? (error.code ?? error.signal ?? 'error') : 0, stdout, stderr });
    });
  });
}

// curl -sS -N <argv>: { code, status, version (%{http_version}), body, stderr }.
async function curl(argv) {
  const out = await runTool(CURL, ['-sS', '-N', '--max-time', '15', '-w', '\n%{http_version} %{http_code}', ...argv]);
  const i = out.stdout.lastIndexOf('\n');
  const [version, status] = out.stdout.slice(i + 1).split(' ');
  return { code: out.code, status: Number(status), version, body: out.stdout.slice(0, Math.max(i, 0)), stderr: out.stderr };
}

// A TLS handshake to 127.0.0.1:port: { ok, code (error code), protocol,
// alpn, authorized, fingerprint256 }.
function tlsHandshake(port, options) {
  return withTimeout(
    new Promise((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ALPNProtocols: ['h2', 'http/1.1'], ...options });
      socket.once('secureConnect', () => {
        const result = {
          ok: true,
          protocol: socket.getProtocol(),
          alpn: socket.alpnProtocol,
          authorized: socket.authorized,
          fingerprint256: socket.getPeerCertificate().fingerprint256,
        };
        socket.destroy();
        resolve(result);
      });
      socket.once('error', (e) => {
        socket.destroy();
        resolve({ ok: false, code: e.code, message: e.message });
      });
    }),
    10000,
    `TLS handshake to port ${port}`,
  );
}

// Opens a TCP connection to port, writes `bytes` (if any) and nothing more:
// how long until the bridge closed it (null: still open after waitMs).
function closedAfter(port, bytes, waitMs) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const socket = net.connect(port, '127.0.0.1', () => bytes && socket.write(bytes));
    socket.on('data', () => {});
    socket.on('error', () => {});
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(null);
    }, waitMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - t0);
    });
  });
}

// Writes `chunks` to port, `gapMs` apart; resolves with what came back
// within waitMs (or until the bridge closed).
function rawExchange(port, chunks, gapMs, waitMs) {
  return new Promise((resolve) => {
    let received = Buffer.alloc(0);
    const socket = net.connect(port, '127.0.0.1', async () => {
      for (const chunk of chunks) {
        socket.write(chunk);
        await sleep(gapMs);
      }
    });
    socket.on('data', (d) => (received = Buffer.concat([received, d])));
    socket.on('error', () => {});
    const timer = setTimeout(() => socket.destroy(), waitMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
  });
}

const fingerprintOf = (certFile) => new crypto.X509Certificate(fs.readFileSync(certFile)).fingerprint256;

// The access-log lines (JSON on stderr with --access_log=-) in a process's output.
const accessLog = (bridge) =>
  bridge
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map(parseJson);

const occurrences = (text, needle) => text.split(needle).length - 1;

// --- one suite, over h2 (TLS) and over h2c -------------------------------------

// `protocol`: 'h2' or 'h2c', the label the bridge gives the connection.
async function h2Suite(protocol, bridge, connectOptions) {
  const what = protocol === 'h2' ? 'h2 over TLS' : 'h2c (prior knowledge)';
  const session = await connectH2(bridge.url, connectOptions);
  checkEqual(`${what}: the session's protocol`, session.alpnProtocol, protocol);
  checkEqual(
    `${what}: the bridge's SETTINGS_MAX_CONCURRENT_STREAMS is the default 100`,
    session.remoteSettings.maxConcurrentStreams,
    100,
  );
  const connections = `gravity_bridge_connections_total{protocol="${protocol}"}`;
  const before = await metricsOver(session);
  check(`${what}: /metrics has ${connections} >= 1 (this connection)`, sample(before, connections) >= 1, `${sample(before, connections)}`);

  // 1. 100 SSE streams at once, on this one connection.
  {
    const t0 = Date.now();
    const requests = Array.from({ length: STREAMS }, (_, i) =>
      h2request(session, `/api/streaming/ping?to=${protocol}-${i}&count=5&interval_ms=100`, { headers: SSE }),
    );
    const results = await Promise.all(requests.map((q) => q.done));
    const elapsed = Date.now() - t0;
    const bad = results
      .map((r, i) => ({ i, problems: pingProblems(r, { count: 5, to: `${protocol}-${i}` }) }))
      .filter((x) => x.problems.length > 0);
    check(
      `${what}: ${STREAMS} concurrent streams on one session: each 200 text/event-stream, retry: first, ids 1..5, then end code 0`,
      bad.length === 0,
      `${bad.length} bad, e.g. ${bad.slice(0, 3).map((b) => `#${b.i}: ${b.problems.join('; ')}`).join(' | ')}`,
    );
    const notClean = results.filter((r) => !r.ended || r.rstCode !== NGHTTP2_NO_ERROR);
    check(
      `${what}: all ${STREAMS} streams ended cleanly (END_STREAM, no RST_STREAM error code)`,
      notClean.length === 0,
      `${notClean.length}, e.g. rstCode ${notClean[0]?.rstCode} ended ${notClean[0]?.ended} error ${notClean[0]?.error}`,
    );
    const firstEnd = Math.min(...results.map((r) => r.endAt ?? Infinity));
    const startedBeforeFirstEnd = results.filter((r) => r.headersAt !== null && r.headersAt < firstEnd).length;
    checkEqual(
      `${what}: all ${STREAMS} streams were answered (HEADERS) before the first one ended: they ran at once`,
      startedBeforeFirstEnd,
      STREAMS,
    );
    const after = await metricsOver(session);
    checkEqual(
      `${what}: ${connections} unchanged by the ${STREAMS} streams (one connection)`,
      sample(after, connections),
      sample(before, connections),
    );
    console.log(
      `# ${what}: ${STREAMS} streams x 5 events in ${elapsed} ms; first events at ` +
        `${Math.min(...results.map((r) => r.firstEventAt))}-${Math.max(...results.map((r) => r.firstEventAt))} ms`,
    );
  }

  // 2. Unary POST.
  {
    const r = await h2request(session, '/api/streaming/echo', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'hi' }),
    }).done;
    checkEqual(`${what}: POST /api/streaming/echo: 200`, r.status, 200);
    check(
      `${what}: POST /api/streaming/echo: Content-Type application/json`,
      (r.headers?.['content-type'] ?? '').startsWith('application/json'),
      r.headers?.['content-type'],
    );
    checkEqual(`${what}: POST /api/streaming/echo {"text":"hi"} answers {"text":"hi"}`, parseJson(r.body), { text: 'hi' });
    checkEqual(`${what}: POST /api/streaming/echo: ended cleanly`, [r.ended, r.rstCode], [true, NGHTTP2_NO_ERROR]);
  }

  // 3. Errors before the first event: an HTTP status with a Status JSON body.
  {
    const r = await h2request(session, '/nope', { headers: SSE }).done;
    checkEqual(`${what}: GET /nope: 404`, r.status, 404);
    checkEqual(
      `${what}: GET /nope: Status JSON code 5 "no method at /nope"`,
      [parseJson(r.body).code, parseJson(r.body).message],
      [5, 'no method at /nope'],
    );
    check(
      `${what}: GET /nope: Content-Type application/json`,
      (r.headers?.['content-type'] ?? '').startsWith('application/json'),
      r.headers?.['content-type'],
    );
    const u = await h2request(session, '/streaming.v1.Streaming/StreamUsers', { headers: SSE }).done;
    checkEqual(`${what}: StreamUsers without credentials: 401`, u.status, 401);
    checkEqual(`${what}: StreamUsers without credentials: Status JSON code 16`, parseJson(u.body).code, 16);
    checkEqual(`${what}: StreamUsers without credentials: ended cleanly`, [u.ended, u.rstCode], [true, NGHTTP2_NO_ERROR]);
  }

  // 4. An error mid-stream: the events, then end with the code; and a POST
  //    body (DATA frames) on a stream route.
  {
    const r = await h2request(session, '/api/streaming/ping?to=fail&count=2&interval_ms=20&fail_code=9', {
      headers: SSE,
    }).done;
    const problems = pingProblems(r, { count: 2, to: 'fail', endCode: 9 });
    check(`${what}: fail_code=9: ids 1,2 then end code 9`, problems.length === 0, problems.join('; '));
    const p = await h2request(session, '/api/streaming/ping', {
      method: 'POST',
      headers: { ...SSE, 'content-type': 'application/json' },
      body: JSON.stringify({ to: `${protocol}-post`, count: 3, interval_ms: 20 }),
    }).done;
    const postProblems = pingProblems(p, { count: 3, to: `${protocol}-post` });
    check(`${what}: POST /api/streaming/ping with a JSON body: ids 1..3 then end code 0`, postProblems.length === 0, postProblems.join('; '));
  }

  // 5. RST_STREAM (CANCEL) from the client cancels the upstream call.
  {
    const idle = await waitForSample(session, 'gravity_bridge_active_streams', 0, 3000);
    checkEqual(`${what}: gravity_bridge_active_streams 0 before the cancel test`, idle.value, 0);
    const cancelled = 'gravity_bridge_streams_ended_total{code="CANCELLED"}';
    const cancelledBefore = sample(await metricsOver(session), cancelled);
    let firstEvent;
    const gotFirst = new Promise((resolve) => (firstEvent = resolve));
    const long = h2request(session, `/api/streaming/ping?to=${protocol}-long&count=1000&interval_ms=50`, {
      headers: SSE,
      onData: (r) => r.firstEventAt !== null && firstEvent(),
    });
    await withTimeout(gotFirst, 5000, 'the long stream\'s first event');
    checkEqual(`${what}: a long stream running: gravity_bridge_active_streams 1`, sample(await metricsOver(session), 'gravity_bridge_active_streams'), 1);
    long.stream.close(NGHTTP2_CANCEL);
    const t0 = Date.now();
    const r = await long.done;
    checkEqual(`${what}: the long stream closed by us with CANCEL`, r.rstCode, NGHTTP2_CANCEL);
    const drop = await waitForSample(session, 'gravity_bridge_active_streams', 0, 3000);
    const droppedAfter = Date.now() - t0;
    check(
      `${what}: after RST_STREAM(CANCEL), gravity_bridge_active_streams back to 0 within 1 s`,
      drop.value === 0 && droppedAfter <= 1000,
      `value ${drop.value} after ${droppedAfter} ms`,
    );
    checkEqual(
      `${what}: the cancelled stream counted as ${cancelled} +1`,
      sample(await metricsOver(session), cancelled) - cancelledBefore,
      1,
    );
    const h = await h2request(session, '/healthz').done;
    checkEqual(`${what}: the session still serves after the RST_STREAM (GET /healthz 200)`, h.status, 200);
    console.log(`# ${what}: active_streams back to 0 ${droppedAfter} ms after RST_STREAM`);
  }

  // 6. The access log names the protocol.
  {
    let lines = [];
    await until(() => {
      lines = accessLog(bridge).filter((l) => l.protocol === protocol && l.route === '/streaming.v1.Streaming/Ping');
      return lines.length >= STREAMS;
    }, 3000);
    check(
      `${what}: the access log has a line with "protocol":"${protocol}" for each of the ${STREAMS} Ping streams`,
      lines.length >= STREAMS,
      `${lines.length} such lines; last lines: ${bridge.output().trimEnd().split('\n').slice(-2).join(' | ')}`,
    );
  }

  checkEqual(`${what}: no session error`, session.errors, []);
  session.close();
}

// --- the test --------------------------------------------------------------------

run(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gravity-http2-'));
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  // Two certificates with different keys (A, B); the rotated bridge reads
  // live/cert.pem and live/key.pem, which start as A.
  for (const d of ['a', 'b', 'live']) fs.mkdirSync(path.join(dir, d));
  const certA = await selfSignedCert(path.join(dir, 'a'));
  const certB = await selfSignedCert(path.join(dir, 'b'));
  const live = { cert: path.join(dir, 'live', 'cert.pem'), key: path.join(dir, 'live', 'key.pem') };
  const install = (pair) => {
    // Write each file next to its place, then rename: the bridge never reads half a file.
    for (const which of ['key', 'cert']) {
      fs.copyFileSync(pair[which], `${live[which]}.tmp`);
      fs.renameSync(`${live[which]}.tmp`, live[which]);
    }
  };
  install(certA);
  const fpA = fingerprintOf(certA.cert);
  const fpB = fingerprintOf(certB.cert);
  check('the two test certificates differ', fpA !== fpB);
  const caA = fs.readFileSync(certA.cert);
  const caBoth = [caA, fs.readFileSync(certB.cert)];

  const server = await startServer(args.server, { adminToken: randomToken() });
  const tlsBridge = await startBridge(args.bridge, server.address, [
    `--tls_cert=${certA.cert}`,
    `--tls_key=${certA.key}`,
    '--tls_handshake_timeout=1s',
    '--access_log=-',
  ]);
  const plainBridge = await startBridge(args.bridge, server.address, ['--access_log=-']);
  check(`TLS bridge prints an https:// URL (${tlsBridge.url})`, tlsBridge.url.startsWith('https://127.0.0.1:'));
  check(`cleartext bridge prints an http:// URL (${plainBridge.url})`, plainBridge.url.startsWith('http://127.0.0.1:'));
  const tlsPort = Number(new URL(tlsBridge.url).port);
  const plainPort = Number(new URL(plainBridge.url).port);
  onFailure(() => console.log(`# TLS bridge ${tlsBridge.url}, cleartext bridge ${plainBridge.url}, files in ${dir}`));

  // --- 1. h2 over TLS and h2c -------------------------------------------------
  await h2Suite('h2', tlsBridge, { ca: caA });
  await h2Suite('h2c', plainBridge, {});

  // --- 2. HTTP/1.1 still works: over TLS (ALPN http/1.1, or no ALPN) and in clear
  {
    const monitor = await connectH2(tlsBridge.url, { ca: caA });
    const before = await metricsOver(monitor);
    const ping = (to) => `${tlsBridge.url}/api/streaming/ping?to=${to}&count=3&interval_ms=20`;
    const a = await httpsGet(ping('h1-alpn'), { ca: caA, ALPNProtocols: ['http/1.1'] });
    checkEqual('HTTPS with ALPN http/1.1: negotiated http/1.1, answered HTTP/1.1', [a.alpn, a.httpVersion], ['http/1.1', '1.1']);
    const aProblems = pingProblems(a, { count: 3, to: 'h1-alpn' });
    check('HTTPS with ALPN http/1.1: ids 1..3 then end code 0', aProblems.length === 0, aProblems.join('; '));
    const b = await httpsGet(ping('h1-noalpn'), { ca: caA });
    checkEqual('HTTPS without ALPN: no protocol negotiated, answered HTTP/1.1', [b.alpn, b.httpVersion], [false, '1.1']);
    const bProblems = pingProblems(b, { count: 3, to: 'h1-noalpn' });
    check('HTTPS without ALPN: ids 1..3 then end code 0', bProblems.length === 0, bProblems.join('; '));
    const after = await metricsOver(monitor);
    const h1 = 'gravity_bridge_connections_total{protocol="http/1.1"}';
    checkEqual(`TLS bridge: ${h1} +2 after the two HTTPS/1.1 connections`, sample(after, h1) - sample(before, h1), 2);
    const h2 = 'gravity_bridge_connections_total{protocol="h2"}';
    checkEqual(`TLS bridge: ${h2} unchanged by them`, sample(after, h2) - sample(before, h2), 0);
    let lines = [];
    await until(() => {
      lines = accessLog(tlsBridge).filter((l) => l.protocol === 'http/1.1' && l.route === '/streaming.v1.Streaming/Ping');
      return lines.length >= 2;
    }, 3000);
    checkEqual('TLS bridge: the access log has "protocol":"http/1.1" for the two HTTPS/1.1 streams', lines.length, 2);
    monitor.close();

    const c = await withTimeout(fetch(`${plainBridge.url}/api/streaming/ping?to=clear&count=3&interval_ms=20`), 15000, 'fetch');
    const cText = await c.text();
    const cProblems = pingProblems({ status: c.status, headers: { 'content-type': c.headers.get('content-type') }, body: cText }, { count: 3, to: 'clear' });
    check('cleartext HTTP/1.1 (fetch): ids 1..3 then end code 0', cProblems.length === 0, cProblems.join('; '));
  }

  // --- 3. curl and nghttp -------------------------------------------------------
  {
    const url = (base, to) => `${base}/api/streaming/ping?to=${to}&count=3&interval_ms=20`;
    const a = await curl(['--http2', '--cacert', certA.cert, '-H', 'Accept: text/event-stream', url(tlsBridge.url, 'curl-h2')]);
    checkEqual('curl --http2 --cacert https://: exit 0, HTTP/2, 200', [a.code, a.version, a.status], [0, '2', 200]);
    const aProblems = pingProblems({ status: a.status, headers: { 'content-type': 'text/event-stream' }, body: a.body }, { count: 3, to: 'curl-h2' });
    check('curl --http2 https://: ids 1..3 then end code 0', aProblems.length === 0, `${aProblems.join('; ')} ${a.stderr}`);

    const b = await curl(['--http2-prior-knowledge', url(plainBridge.url, 'curl-h2c')]);
    checkEqual('curl --http2-prior-knowledge http://: exit 0, HTTP/2, 200', [b.code, b.version, b.status], [0, '2', 200]);
    const bProblems = pingProblems({ status: b.status, headers: { 'content-type': 'text/event-stream' }, body: b.body }, { count: 3, to: 'curl-h2c' });
    check('curl --http2-prior-knowledge: ids 1..3 then end code 0', bProblems.length === 0, `${bProblems.join('; ')} ${b.stderr}`);

    // curl --http2 on http:// asks for an Upgrade to h2c, which the bridge does
    // not do: it must answer in HTTP/1.1 as if the Upgrade were not there.
    const c = await curl(['--http2', url(plainBridge.url, 'curl-upgrade')]);
    checkEqual('curl --http2 http:// (Upgrade: h2c, not taken): exit 0, HTTP/1.1, 200', [c.code, c.version, c.status], [0, '1.1', 200]);
    const cProblems = pingProblems({ status: c.status, headers: { 'content-type': 'text/event-stream' }, body: c.body }, { count: 3, to: 'curl-upgrade' });
    check('curl --http2 http:// (Upgrade: h2c): ids 1..3 then end code 0', cProblems.length === 0, `${cProblems.join('; ')} ${c.stderr}`);

    const e = await curl(['--http2', '--cacert', certA.cert, '-H', 'Content-Type: application/json', '-d', '{"text":"hi"}', `${tlsBridge.url}/api/streaming/echo`]);
    checkEqual('curl --http2 POST /api/streaming/echo: HTTP/2 200 {"text":"hi"}', [e.version, e.status, parseJson(e.body)], ['2', 200, { text: 'hi' }]);

    // nghttp -v: every frame, so the END_STREAM flag itself can be seen.
    const n = await runTool(NGHTTP, ['-v', url(plainBridge.url, 'nghttp')]);
    checkEqual('nghttp h2c: exit 0', n.code, 0);
    check(
      'nghttp h2c: the bridge\'s SETTINGS carry SETTINGS_MAX_CONCURRENT_STREAMS 100',
      /recv SETTINGS frame[^]*?\[SETTINGS_MAX_CONCURRENT_STREAMS\(0x03\):100\]/.test(n.stdout),
      n.stdout.slice(0, 800),
    );
    check('nghttp h2c: :status 200', /recv \(stream_id=\d+\) :status: 200/.test(n.stdout), n.stdout.slice(0, 1500));
    check('nghttp h2c: the events, then end code 0', /id: 3\ndata: [^\n]*"seq":"3"[^]*event: end\ndata: \{"code":0/.test(n.stdout), n.stdout.slice(-800));
    check(
      'nghttp h2c: the response ends with a frame flagged END_STREAM',
      /recv (DATA|HEADERS) frame <[^>]*flags=0x0[15][^>]*>\s*\n\s*; END_STREAM/.test(n.stdout),
      n.stdout.slice(-800),
    );
    check('nghttp h2c: no RST_STREAM received', !/recv RST_STREAM/.test(n.stdout), n.stdout.slice(-800));
    const t = await runTool(NGHTTP, ['-v', url(tlsBridge.url, 'nghttp-tls')]);
    check('nghttp https://: exit 0, negotiated h2', t.code === 0 && /negotiated protocol: h2$/im.test(t.stdout), `${t.code} ${t.stdout.slice(0, 800)} ${t.stderr}`);
    check('nghttp https://: the events, then end code 0', /id: 3\n[^]*event: end\ndata: \{"code":0/.test(t.stdout), t.stdout.slice(-800));
  }

  // --- 4. TLS versions, the handshake timeout -------------------------------------
  {
    const v13 = await tlsHandshake(tlsPort, { ca: caA });
    checkEqual('TLS: a default client gets TLSv1.3, ALPN h2, the certificate verified', [v13.ok, v13.protocol, v13.alpn, v13.authorized], [true, 'TLSv1.3', 'h2', true]);
    const v12 = await tlsHandshake(tlsPort, { ca: caA, maxVersion: 'TLSv1.2' });
    checkEqual('TLS: a TLS 1.2 client gets TLSv1.2 and ALPN h2', [v12.ok, v12.protocol, v12.alpn], [true, 'TLSv1.2', 'h2']);
    // @SECLEVEL=0 lets this OpenSSL offer TLS 1.1 at all, so that the refusal is the bridge's.
    const v11 = await tlsHandshake(tlsPort, { ca: caA, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
    check(
      'TLS: a TLS 1.1 client is refused with a protocol_version alert',
      !v11.ok && /PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL/i.test(`${v11.code} ${v11.message}`),
      JSON.stringify(v11),
    );
    const http1Only = await tlsHandshake(tlsPort, { ca: caA, ALPNProtocols: ['http/1.1'] });
    checkEqual('TLS: a client offering only http/1.1 gets http/1.1', http1Only.alpn, 'http/1.1');

    // --tls_handshake_timeout=1s: a client that sends nothing, or half a
    // ClientHello, is closed after about 1 s; a finished handshake is not.
    const idle = await connectH2(tlsBridge.url, { ca: caA });
    const [silent, partial] = await Promise.all([
      closedAfter(tlsPort, null, 6000),
      closedAfter(tlsPort, Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]), 6000), // a record header promising 512 bytes
    ]);
    check(
      'TLS handshake timeout 1s: a connection that sends nothing is closed after 0.8-3 s',
      silent !== null && silent >= 800 && silent <= 3000,
      `closed after ${silent} ms`,
    );
    check(
      'TLS handshake timeout 1s: a connection that stalls mid-ClientHello is closed after 0.8-3 s',
      partial !== null && partial >= 800 && partial <= 3000,
      `closed after ${partial} ms`,
    );
    const h = await h2request(idle, '/healthz').done;
    checkEqual(
      'TLS handshake timeout: a connection that finished its handshake and then idled for longer still serves (GET /healthz 200)',
      [idle.closed, h.status],
      [false, 200],
    );
    idle.close();
  }

  // --- 5. Cleartext: the first bytes decide, however they are split --------------
  {
    const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
    const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]); // an empty SETTINGS frame
    const h2 = await rawExchange(plainPort, [preface.subarray(0, 3), preface.subarray(3, 10), Buffer.concat([preface.subarray(10), settings])], 100, 1500);
    checkEqual(
      'h2c: a preface that arrives in 3 pieces, 100 ms apart, is answered with a SETTINGS frame',
      [h2.length >= 9, h2[3], h2.subarray(0, 4).toString('latin1') !== 'HTTP'],
      [true, 4, true],
    );
    const h1 = await rawExchange(
      plainPort,
      ['G', 'ET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'],
      100,
      3000,
    );
    check(
      'HTTP/1.1: a request whose first byte arrives alone is still HTTP/1.1 (200)',
      h1.toString('latin1').startsWith('HTTP/1.1 200'),
      JSON.stringify(h1.toString('latin1').slice(0, 80)),
    );
  }

  // --- 6. --http2_max_concurrent_streams, and certificate rotation with SIGHUP ----
  const rotated = await startBridge(args.bridge, server.address, [
    `--tls_cert=${live.cert}`,
    `--tls_key=${live.key}`,
    '--http2_max_concurrent_streams=7',
  ]);
  const rotatedPort = Number(new URL(rotated.url).port);
  {
    const session = await connectH2(rotated.url, { ca: caBoth });
    checkEqual('--http2_max_concurrent_streams=7: the bridge\'s SETTINGS say 7', session.remoteSettings.maxConcurrentStreams, 7);
    // Eight long streams: seven run, the eighth waits for a free slot (the
    // client holds it back, as the SETTINGS ask), and runs once one is cancelled.
    const streams = Array.from({ length: 8 }, (_, i) =>
      h2request(session, `/api/streaming/ping?to=slot${i}&count=1000&interval_ms=50`, { headers: SSE }),
    );
    const sevenRunning = await until(() => streams.filter((s) => s.r.firstEventAt !== null).length >= 7, 5000);
    await sleep(300);
    checkEqual(
      '--http2_max_concurrent_streams=7: 7 of 8 streams run at once, the 8th has no response yet',
      [sevenRunning, streams.filter((s) => s.r.headersAt !== null).length],
      [true, 7],
    );
    const waiting = streams.find((s) => s.r.headersAt === null);
    streams.find((s) => s.r.headersAt !== null).stream.close(NGHTTP2_CANCEL);
    const eighth = await until(() => waiting?.r.firstEventAt !== null, 3000);
    check('--http2_max_concurrent_streams=7: the 8th stream runs once one of the 7 is cancelled', eighth);
    for (const s of streams) if (!s.stream.closed) s.stream.close(NGHTTP2_CANCEL);
    await Promise.all(streams.map((s) => s.done));
    session.close();
  }
  {
    const reloaded = () => occurrences(rotated.output(), 'TLS certificate reloaded');
    const failed = () => occurrences(rotated.output(), 'TLS reload failed');
    const first = await tlsHandshake(rotatedPort, { ca: caBoth });
    checkEqual('rotation: before SIGHUP, a new connection gets certificate A', first.fingerprint256, fpA);

    // A stream opened before the reload must run to its end across it.
    const before = await connectH2(rotated.url, { ca: caBoth });
    const beforeFingerprint = before.socket.getPeerCertificate().fingerprint256;
    const long = h2request(before, '/api/streaming/ping?to=across&count=20&interval_ms=100', { headers: SSE, timeoutMs: 20000 });
    await until(() => long.r.firstEventAt !== null, 5000);

    install(certB);
    rotated.kill('SIGHUP');
    check('rotation: SIGHUP with pair B logs "TLS certificate reloaded"', await until(() => reloaded() === 1, 5000), rotated.output().slice(-500));
    const second = await tlsHandshake(rotatedPort, { ca: caBoth });
    checkEqual('rotation: after SIGHUP, a new connection gets certificate B', second.fingerprint256, fpB);
    const afterSession = await connectH2(rotated.url, { ca: caBoth });
    const h = await h2request(afterSession, '/healthz').done;
    checkEqual('rotation: a new h2 session (certificate B) serves (GET /healthz 200)', h.status, 200);
    afterSession.close();

    const hb = await h2request(before, '/healthz').done;
    checkEqual('rotation: the connection opened before SIGHUP still serves new streams', hb.status, 200);
    const r = await long.done;
    const problems = pingProblems(r, { count: 20, to: 'across' });
    check('rotation: the h2 stream opened before SIGHUP ran to its end (ids 1..20, end code 0)', problems.length === 0, problems.join('; '));
    checkEqual('rotation: ... and ended cleanly (no RST_STREAM error code)', r.rstCode, NGHTTP2_NO_ERROR);
    checkEqual('rotation: the old connection still shows certificate A', beforeFingerprint, fpA);
    before.close();

    // Garbage in the certificate file: refused, B stays in service.
    fs.writeFileSync(live.cert, 'this is not a certificate\n');
    rotated.kill('SIGHUP');
    check('rotation: SIGHUP with a garbage certificate logs "TLS reload failed"', await until(() => failed() === 1, 5000), rotated.output().slice(-500));
    checkEqual('rotation: the bridge is still running after the failed reload', rotated.exited(), null);
    const third = await tlsHandshake(rotatedPort, { ca: caBoth });
    checkEqual('rotation: after the failed reload, new connections still get certificate B', third.fingerprint256, fpB);
    const s3 = await connectH2(rotated.url, { ca: caBoth });
    const p3 = await h2request(s3, '/api/streaming/ping?to=still&count=2&interval_ms=20', { headers: SSE }).done;
    const p3Problems = pingProblems(p3, { count: 2, to: 'still' });
    check('rotation: after the failed reload, streams still work (ids 1,2, end code 0)', p3Problems.length === 0, p3Problems.join('; '));
    s3.close();

    // A certificate with another certificate's key (A's certificate, B's key): refused too.
    fs.copyFileSync(certA.cert, live.cert);
    fs.copyFileSync(certB.key, live.key);
    rotated.kill('SIGHUP');
    check('rotation: SIGHUP with a certificate and a key that do not match logs "TLS reload failed"', await until(() => failed() === 2, 5000), rotated.output().slice(-500));
    const fourth = await tlsHandshake(rotatedPort, { ca: caBoth });
    checkEqual('rotation: after the mismatched pair, new connections still get certificate B', fourth.fingerprint256, fpB);

    // A good pair again: taken.
    install(certA);
    rotated.kill('SIGHUP');
    check('rotation: SIGHUP with pair A again logs "TLS certificate reloaded" a second time', await until(() => reloaded() === 2, 5000), rotated.output().slice(-500));
    const fifth = await tlsHandshake(rotatedPort, { ca: caBoth });
    checkEqual('rotation: after the good reload, new connections get certificate A again', [fifth.fingerprint256, fifth.authorized], [fpA, true]);
    checkEqual('rotation: the bridge is still running', rotated.exited(), null);
  }
});
