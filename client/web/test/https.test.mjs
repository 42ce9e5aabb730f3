// Node clients over HTTPS to gravity-bridge's own TLS listener (--tls_cert,
// --tls_key; a self-signed certificate made for the run by openssl):
// @gravity/client (dist/, over Node's fetch) and an independent SSE client,
// the eventsource package (npm eventsource@4, tests/e2e's node_modules).
//
// Node's fetch (undici) takes no CA per request, and NODE_EXTRA_CA_CERTS is
// read once, when node starts, so the clients run in a child node started
// with NODE_EXTRA_CA_CERTS=<the run's cert.pem> (Node's documented way to add
// a CA to every TLS client of a process, fetch included). The same child
// without it must fail the handshake: the certificate is really checked.
//
//   SERVER=... BRIDGE=... [OPENSSL=openssl] node --test test/https.test.mjs
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  flags,
  onCleanup,
  runCleanups,
  selfSignedCert,
  startBridge,
  startServer,
  withTimeout,
} from '../../../tests/e2e/harness.mjs';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REPO = path.resolve(WEB, '..', '..');
const args = flags(['server', 'bridge']);
const COUNT = 5;

// The child: an ES module given to `node --input-type=module -e`, so its
// imports are file URLs. It prints one JSON object:
//   healthz: GET /healthz with fetch itself ({ status } or { error, cause });
//   ping:    @gravity/client's Ping, `for await` ({ messages, lastEventId, reconnects } or { error });
//   echo:    @gravity/client's unary Echo ({ text, typeName } or { error });
//   es:      an EventSource on /api/streaming/ping, closed on `end` or on its
//            first error ({ messages: [{ id, data }], end, errors }).
const CHILD = `
const { createApi } = await import(${JSON.stringify(pathToFileURL(path.join(WEB, 'dist/index.js')).href)});
const { Streaming } = await import(${JSON.stringify(pathToFileURL(path.join(WEB, 'dist/gen/streaming/v1/streaming_pb.js')).href)});
const { EventSource } = await import(${JSON.stringify(pathToFileURL(path.join(REPO, 'tests/e2e/es_clients.mjs')).href)});
const [base, count] = [process.argv[1], Number(process.argv[2])];
const plainError = (e) => ({ code: e.code, httpStatus: e.httpStatus, message: e.message, cause: e.cause?.cause?.code ?? e.cause?.code });
const out = {};

try {
  out.healthz = { status: (await fetch(base + '/healthz')).status };
} catch (e) {
  out.healthz = { error: e.message, cause: e.cause?.code };
}

const api = createApi({ baseUrl: base, maxReconnects: 0 }, { streaming: Streaming });
const ping = await api.streaming.ping({ to: 'node over https', count, intervalMs: 20 });
if (ping.error) {
  out.ping = { error: plainError(ping.error) };
} else {
  const messages = [];
  try {
    for await (const m of ping.data) messages.push([String(m.seq), m.message]);
    out.ping = { messages, lastEventId: ping.data.lastEventId, reconnects: ping.data.reconnects };
  } catch (e) {
    out.ping = { messages, thrown: plainError(e) };
  }
}

const echo = await api.streaming.echo({ text: 'echo over https' });
out.echo = echo.error ? { error: plainError(echo.error) } : { text: echo.data.text, typeName: echo.data.$typeName };

out.es = await new Promise((resolve) => {
  const es = new EventSource(base + '/api/streaming/ping?to=es-https&count=' + count + '&interval_ms=20');
  const r = { messages: [], end: null, errors: [] };
  const done = () => { es.close(); resolve(r); };
  es.addEventListener('message', (e) => r.messages.push({ id: e.lastEventId, data: JSON.parse(e.data) }));
  es.addEventListener('end', (e) => { r.end = JSON.parse(e.data); done(); });
  es.addEventListener('error', (e) => { r.errors.push({ code: e.code, message: e.message }); done(); });
});

// Exit once written: a closed EventSource may still hold its reconnection timer.
process.stdout.write(JSON.stringify(out), () => process.exit(0));
`;

// Runs CHILD against `base` with the environment `env` (NODE_EXTRA_CA_CERTS
// or not): its JSON.
async function runChild(base, env) {
  const childEnv = { ...process.env, ...env };
  delete childEnv.NODE_TEST_CONTEXT; // the child is no part of this test run
  if (!('NODE_EXTRA_CA_CERTS' in env)) delete childEnv.NODE_EXTRA_CA_CERTS;
  const { stdout } = await withTimeout(
    new Promise((resolve, reject) => {
      execFile(
        process.execPath,
        ['--input-type=module', '-e', CHILD, base, String(COUNT)],
        { cwd: WEB, env: childEnv, timeout: 25000 },
        (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve({ stdout })),
      );
    }),
    30000,
    'the client child process',
  );
  return JSON.parse(stdout);
}

let bridge;
let certFile;

before(async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gravity-client-https-'));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  const cert = await selfSignedCert(dir);
  certFile = cert.cert;
  const server = await startServer(args.server);
  bridge = await startBridge(args.bridge, server.address, [`--tls_cert=${cert.cert}`, `--tls_key=${cert.key}`]);
  assert.match(bridge.url, /^https:\/\/127\.0\.0\.1:\d+$/);
});

after(async () => {
  await runCleanups();
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => runCleanups().finally(() => process.exit(1)));
}

const pings = (to) => Array.from({ length: COUNT }, (_, i) => [String(i + 1), `Sending ping to ${to}`]);

test('over https:// with NODE_EXTRA_CA_CERTS: @gravity/client Ping (for await) and unary Echo, eventsource@4 ids 1..N and end', async () => {
  const r = await runChild(bridge.url, { NODE_EXTRA_CA_CERTS: certFile });
  assert.deepEqual(r.healthz, { status: 200 });
  assert.deepEqual(r.ping, { messages: pings('node over https'), lastEventId: String(COUNT), reconnects: 0 });
  assert.deepEqual(r.echo, { text: 'echo over https', typeName: 'streaming.v1.EchoReply' });
  assert.deepEqual(r.es.errors, []);
  assert.deepEqual(
    r.es.messages,
    pings('es-https').map(([seq, message]) => ({ id: seq, data: { message, seq } })),
  );
  assert.equal(r.es.end?.code, 0);
});

test('over https:// without the CA: the self-signed certificate is refused by fetch, @gravity/client and eventsource', async () => {
  const r = await runChild(bridge.url, {});
  assert.equal(r.healthz.cause, 'DEPTH_ZERO_SELF_SIGNED_CERT', JSON.stringify(r.healthz));
  // @gravity/client: {error} UNAVAILABLE (14, no HTTP answer), caused by the certificate.
  for (const call of [r.ping, r.echo]) {
    assert.deepEqual(
      { code: call.error?.code, httpStatus: call.error?.httpStatus, cause: call.error?.cause },
      { code: 14, httpStatus: undefined, cause: 'DEPTH_ZERO_SELF_SIGNED_CERT' },
      JSON.stringify(call),
    );
  }
  assert.deepEqual(r.es.messages, []);
  assert.equal(r.es.end, null);
  assert.equal(r.es.errors.length, 1, JSON.stringify(r.es));
  assert.match(r.es.errors[0].message, /self-signed certificate/);
});
