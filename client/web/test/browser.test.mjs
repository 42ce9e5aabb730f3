// @gravity/client in Debian's Chromium (driven by playwright-core): the
// client bundled with esbuild into a page served from ANOTHER origin than the
// bridge, so fetch with CORS (and a preflight for the Authorization header)
// is part of what is tested. Then the demo page served by the bridge itself,
// over cleartext HTTP/1.1 and over the bridge's own HTTPS + HTTP/2 (a
// certificate made for the run by openssl, trusted by a second Chromium by its
// SPKI hash), with its backend and token endpoint as scripts/demo.sh runs them
// (streaming-server --jwt_key, examples/demo/token_server.mjs).
//
//   SERVER=... BRIDGE=... [CHROMIUM=/usr/bin/chromium] [OPENSSL=openssl] node --test test/browser.test.mjs
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { chromium } from 'playwright-core';
import {
  flags,
  launchChromium,
  onCleanup,
  randomToken,
  runCleanups,
  selfSignedCert,
  startBridge,
  startProcess,
  startServer,
  waitForMetric,
  withTimeout,
} from '../../../tests/e2e/harness.mjs';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TOKEN_SERVER = path.resolve(WEB, '..', '..', 'examples', 'demo', 'token_server.mjs');
const args = flags(['server', 'bridge']);

// The client and the example's descriptors as one script: window.Gravity.
async function bundle() {
  const result = await esbuild.build({
    stdin: {
      contents: [
        "export { createApi, GravityError } from './dist/index.js';",
        "export { Streaming } from './dist/gen/streaming/v1/streaming_pb.js';",
      ].join('\n'),
      resolveDir: WEB,
      loader: 'js',
    },
    bundle: true,
    format: 'iife',
    globalName: 'Gravity',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  return result.outputFiles[0].text;
}

// Helpers the test calls with page.evaluate(); results are plain JSON.
const HELPERS = `
const { createApi, Streaming } = Gravity;
const api = (base, options = {}) => createApi({ baseUrl: base, credentials: 'include', ...options }, { streaming: Streaming });
const plainError = (e) => ({ name: e.name, code: e.code, message: e.message, httpStatus: e.httpStatus, isGravityError: e instanceof Gravity.GravityError });
window.run = async (what, base, token) => {
  const out = { messages: [], error: null, thrown: null, seqTypes: [] };
  let result;
  if (what === 'ping') result = await api(base).streaming.ping({ to: 'browser', count: 3, intervalMs: 50 });
  else if (what === 'fail') result = await api(base).streaming.ping({ to: 'browser', count: 2, intervalMs: 20, failCode: 10 });
  else if (what === 'echo' || what === 'echo-fail') {
    const reply = await api(base).streaming.echo({ text: 'from the browser', failCode: what === 'echo' ? 0 : 9 });
    return reply.error ? { error: plainError(reply.error) } : { reply: { text: reply.data.text, type: reply.data.$typeName } };
  }
  else if (what === 'users') result = await api(base, token === undefined ? {} : { token }).streaming.streamUsers({ count: 2, intervalMs: 20 });
  if (result.error) {
    out.error = plainError(result.error);
    out.hasData = result.data !== undefined;
    return out;
  }
  try {
    for await (const m of result.data) {
      out.messages.push(JSON.parse(JSON.stringify(m, (k, v) => typeof v === 'bigint' ? v.toString() : v)));
      if ('seq' in m) out.seqTypes.push(typeof m.seq);
    }
  } catch (e) {
    out.thrown = plainError(e);
  }
  return out;
};
`;

let base;
let origin;
let page;
let context;
let backend;
const adminToken = randomToken();
let consoleLines = [];
const responses = [];

before(async () => {
  const script = await bundle();
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>client e2e</title></head><body>
<script>${script.replace(/<\/script/gi, '<\\/script')}</script><script>${HELPERS}</script></body></html>`;
  const pageServer = http.createServer((req, res) => {
    if (req.url === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(html);
    } else if (req.url === '/favicon.ico') res.writeHead(204).end();
    else res.writeHead(404).end();
  });
  await new Promise((resolve) => pageServer.listen(0, '127.0.0.1', resolve));
  onCleanup(() => {
    pageServer.closeAllConnections();
    return new Promise((resolve) => pageServer.close(() => resolve()));
  });
  origin = `http://127.0.0.1:${pageServer.address().port}`;

  backend = await startServer(args.server, { adminToken });
  const bridge = await startBridge(args.bridge, backend.address, [`--cors_origin=${origin}`]);
  base = bridge.url;

  ({ context, page, consoleLines } = await launchChromium(chromium, {
    executablePath: args.chromium,
    profilePrefix: 'gravity-client-chromium-',
  }));
  page.on('response', (r) => {
    if (r.url().startsWith(base)) responses.push({ url: r.url(), method: r.request().method(), status: r.status(), headers: r.headers() });
  });
  await page.goto(`${origin}/`, { waitUntil: 'load' });
  assert.notEqual(new URL(origin).origin, new URL(base).origin);
});

after(async () => {
  if (consoleLines.length > 0) console.log(`# browser console:\n# ${consoleLines.join('\n# ')}`);
  await runCleanups();
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => runCleanups().finally(() => process.exit(1)));
}

const inPage = (what, token) =>
  withTimeout(page.evaluate(([w, b, t]) => window.run(w, b, t), [what, base, token]), 20000, `page run(${what})`);

test('Chromium, cross-origin: ping through the client, seq as bigint, CORS headers', async () => {
  const r = await inPage('ping');
  assert.equal(r.error, null);
  assert.equal(r.thrown, null);
  assert.deepEqual(r.messages, [1, 2, 3].map((seq) => ({ $typeName: 'streaming.v1.PingReply', message: 'Sending ping to browser', seq: String(seq) })));
  assert.deepEqual(r.seqTypes, ['bigint', 'bigint', 'bigint']);
  const response = responses.find((x) => x.url.includes('/streaming.v1.Streaming/Ping') && x.method === 'GET');
  assert.equal(response?.status, 200);
  assert.equal(response?.headers['access-control-allow-origin'], origin);
});

test('Chromium, cross-origin: the guard gives {error} code 16 and no data', async () => {
  const r = await inPage('users');
  assert.equal(r.hasData, false);
  assert.deepEqual(
    { code: r.error?.code, httpStatus: r.error?.httpStatus, isGravityError: r.error?.isGravityError },
    { code: 16, httpStatus: 401, isGravityError: true },
  );
});

test('Chromium, cross-origin: a token (Authorization, preflighted) passes the guard', async () => {
  const r = await inPage('users', adminToken);
  assert.equal(r.error, null);
  assert.equal(r.messages.length, 2);
  const wrong = await inPage('users', 'wrong');
  assert.equal(wrong.error?.code, 16);
});

test('Chromium, cross-origin: mid-stream error thrown after 2 messages', async () => {
  const r = await inPage('fail');
  assert.equal(r.error, null);
  assert.equal(r.messages.length, 2);
  assert.equal(r.thrown?.code, 10);
  assert.equal(r.thrown?.isGravityError, true);
  assert.equal(await waitForMetric(base, 'gravity_bridge_active_streams', 0), 0);
});

test('Chromium, cross-origin: unary Echo (a preflighted JSON POST): {data} and {error}', async () => {
  const ok = await inPage('echo');
  assert.deepEqual(ok, { reply: { text: 'from the browser', type: 'streaming.v1.EchoReply' } });
  const failed = await inPage('echo-fail');
  assert.equal(failed.error?.code, 9);
  assert.equal(failed.error?.isGravityError, true);
});

// The demo page (examples/demo) as `npm run demo` builds it, once per run: the
// path of the HTML file.
let demoHtml;
function buildDemoPage() {
  demoHtml ??= (async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gravity-client-demo-'));
    onCleanup(() => rm(dir, { recursive: true, force: true }));
    const html = path.join(dir, 'index.html');
    execFileSync(process.execPath, [path.join(WEB, 'scripts/demo.mjs'), html], { cwd: WEB, stdio: 'ignore' });
    return html;
  })();
  return demoHtml;
}

// The demo's backend, as scripts/demo.sh runs it, once per run: a
// streaming-server whose StreamUsers wants a JWT with role admin (--jwt_key, an
// ES256 key pair made here; --jwt_leeway=0s), { address, privateKeyFile }.
let demoBackend;
function startDemoBackend() {
  demoBackend ??= (async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gravity-client-demo-jwt-'));
    onCleanup(() => rm(dir, { recursive: true, force: true }));
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const privateKeyFile = path.join(dir, 'jwt-private.pem');
    const publicKeyFile = path.join(dir, 'jwt-public.pem');
    await writeFile(privateKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await writeFile(publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }));
    const server = await startServer(args.server, {
      name: 'streaming-server (demo, --jwt_key)',
      extraArgs: [`--jwt_key=${publicKeyFile}`, '--jwt_leeway=0s'],
    });
    return { address: server.address, privateKeyFile };
  })();
  return demoBackend;
}

// A bridge in front of the demo backend serving the demo page at /
// (--index_html), and the demo's token endpoint (examples/demo/token_server.mjs)
// allowing the bridge's origin, over TLS too when extraArgs has --tls_cert and
// --tls_key. Streams are cut after 2 s (with retry: 100 ms), as demo.sh cuts
// them after 15 s, and tokens live 2 s, so that checkDemoPage() sees cuts
// resumed, for both reasons. Returns { bridge, pageUrl } (pageUrl: the page
// with ?token_url=).
async function startDemoBridge(extraArgs = []) {
  const backend = await startDemoBackend();
  const bridge = await startBridge(args.bridge, backend.address, [
    `--index_html=${await buildDemoPage()}`,
    '--max_stream_duration=2s',
    '--retry=100ms',
    ...extraArgs,
  ]);
  const tls = extraArgs.filter((a) => a.startsWith('--tls_cert=') || a.startsWith('--tls_key='));
  const tokenServer = await startProcess(
    'token_server.mjs',
    process.execPath,
    [TOKEN_SERVER, `--key=${backend.privateKeyFile}`, '--listen=127.0.0.1:0', '--ttl=2', `--cors_origin=${bridge.url}`, ...tls],
    /^token-server listening on (https?:\/\/\S+:\d+)\s*$/,
  );
  const tokenUrl = `${tokenServer.match[1]}/token`;
  return { bridge, tokenUrl, pageUrl: `${bridge.url}/?token_url=${encodeURIComponent(tokenUrl)}` };
}

// What a user does on the demo page, `demo` (loaded from startDemoBridge()),
// and what they must see.
async function checkDemoPage(demo) {
  const items = (id) => demo.$$eval(`#${id} li`, (lis) => lis.map((li) => li.textContent));
  const text = (id) => demo.$eval(`#${id}`, (e) => e.textContent);

  // Ping live: the page starts one stream on load; run a short one instead.
  await demo.fill('#ping-count', '3');
  await demo.fill('#ping-interval', '50');
  await demo.click('#ping-start');
  await demo.waitForFunction(() => document.getElementById('ping-status').textContent.startsWith('done'));
  assert.deepEqual(await items('ping-messages'), [1, 2, 3].map((n) => `#${n} Sending ping to browser`));

  // StreamUsers: without a token 401, with a token without the admin role
  // 403; then 8 users over 4 s with tokens that live 2 s (and the bridge's
  // 2 s cut): each cut resumed with token() called again, every user once.
  await demo.click('#users-no-token');
  await demo.waitForFunction(() => document.getElementById('users-status').textContent.startsWith('refused'));
  assert.match(await text('users-status'), /UNAUTHENTICATED \(16\)/);
  await demo.click('#users-no-admin');
  await demo.waitForFunction(() => /PERMISSION_DENIED/.test(document.getElementById('users-status').textContent));
  assert.match(await text('users-status'), /^refused: PERMISSION_DENIED \(7\)/);
  const tokensBefore = Number(await text('users-tokens'));
  await demo.fill('#users-count', '8');
  await demo.fill('#users-interval', '500');
  await demo.click('#users-start');
  await demo.waitForFunction(() => document.getElementById('users-status').textContent.startsWith('done'), null, {
    timeout: 20000,
  });
  const users = await items('users-messages');
  assert.deepEqual(
    users.filter((u) => u.startsWith('#')).map((u) => u.split(' ')[0]),
    [1, 2, 3, 4, 5, 6, 7, 8].map((n) => `#${n}`),
    users.join('\n'),
  );
  const cuts = users.filter((u) => u.startsWith('—'));
  console.log(`# the demo's StreamUsers panel:\n# ${users.join('\n# ')}`);
  assert.ok(cuts.length >= 1, users.join('\n'));
  assert.ok(cuts.some((c) => /expired; reconnecting with a new one/.test(c)), users.join('\n'));
  assert.equal(Number(await text('users-reconnects')), cuts.length);
  assert.ok(Number(await text('users-tokens')) >= tokensBefore + 2, `tokens fetched: ${await text('users-tokens')}`);
  assert.match(await text('users-token-info'), /^#\d+ \(role admin\) (expires in \d+ s, at|expired at) /);

  // fail_code: three messages, then the error thrown from the loop.
  await demo.fill('#fail-code', '10');
  await demo.click('#fail-form button');
  await demo.waitForFunction(() => document.getElementById('fail-status').textContent.startsWith('ended'));
  const fail = await items('fail-messages');
  assert.equal(fail.length, 4);
  assert.match(fail[3], /ABORTED \(10\)/);

  // A ping longer than the bridge's --max_stream_duration: cut, resumed by
  // the client (the counter goes up), every ping once.
  const reconnectsBefore = Number(await text('reconnects'));
  await demo.fill('#ping-count', '8');
  await demo.fill('#ping-interval', '400');
  await demo.click('#ping-start');
  await demo.waitForFunction(() => document.getElementById('ping-status').textContent.startsWith('done'), null, {
    timeout: 20000,
  });
  assert.deepEqual(await items('ping-messages'), [1, 2, 3, 4, 5, 6, 7, 8].map((n) => `#${n} Sending ping to browser`));
  const reconnectsAfter = Number(await text('reconnects'));
  assert.ok(reconnectsAfter >= reconnectsBefore + 1, `reconnects: ${reconnectsBefore} before, ${reconnectsAfter} after`);
}

test('the demo page (examples/demo, built by npm run demo) served by gravity-bridge --index_html', async () => {
  const { pageUrl } = await startDemoBridge();
  const demo = await context.newPage();
  demo.setDefaultTimeout(15000);
  demo.on('pageerror', (e) => consoleLines.push(`[demo pageerror] ${e.message}`));
  await demo.goto(pageUrl, { waitUntil: 'load' });
  await checkDemoPage(demo);
  await demo.close();
});

test('the demo page over HTTPS + HTTP/2: gravity-bridge --tls_cert/--tls_key, Chromium trusting the certificate by its SPKI hash', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gravity-client-tls-'));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  const cert = await selfSignedCert(dir);
  const { bridge: tlsBridge, tokenUrl, pageUrl } = await startDemoBridge([
    `--tls_cert=${cert.cert}`,
    `--tls_key=${cert.key}`,
    '--access_log=-',
  ]);
  assert.match(tokenUrl, /^https:\/\//);
  assert.match(tlsBridge.url, /^https:\/\/127\.0\.0\.1:\d+$/);

  // The other Chromium, without the SPKI flag, refuses the certificate: what
  // makes the page load below is that flag, not a blanket ignore.
  const untrusting = await context.newPage();
  await assert.rejects(untrusting.goto(`${tlsBridge.url}/`), /ERR_CERT_AUTHORITY_INVALID/);
  await untrusting.close();

  // A Chromium of its own (a fresh profile, closed at cleanup) trusting this
  // run's certificate by its SPKI hash.
  const { page: demo, consoleLines: tlsConsole } = await launchChromium(chromium, {
    executablePath: args.chromium,
    profilePrefix: 'gravity-client-chromium-tls-',
    spki: cert.cert,
  });
  try {
    const response = await demo.goto(pageUrl, { waitUntil: 'load' });
    assert.equal(response?.status(), 200);
    assert.equal((await response?.securityDetails())?.protocol, 'TLS 1.3');
    assert.equal(await demo.evaluate(() => performance.getEntriesByType('navigation')[0]?.nextHopProtocol), 'h2');

    await checkDemoPage(demo);

    // The client's calls went over that h2 connection too: the page's fetch
    // entries to the bridge (not the token endpoint's, Node's HTTPS/1.1), and
    // every request in the bridge's access log.
    const fetches = await demo.evaluate(
      (bridgeOrigin) =>
        performance
          .getEntriesByType('resource')
          .filter((e) => e.initiatorType === 'fetch' && new URL(e.name).origin === bridgeOrigin)
          .map((e) => ({ path: new URL(e.name).pathname, protocol: e.nextHopProtocol })),
      new URL(tlsBridge.url).origin,
    );
    assert.ok(fetches.some((f) => f.path === '/streaming.v1.Streaming/Ping'), JSON.stringify(fetches));
    assert.deepEqual(fetches.filter((f) => f.protocol !== 'h2'), []);
    const logged = tlsBridge
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
    const routes = new Set(logged.map((l) => l.route));
    for (const route of ['/streaming.v1.Streaming/Ping', '/streaming.v1.Streaming/StreamUsers']) {
      assert.ok(routes.has(route), `${route} not in the access log: ${[...routes]}`);
    }
    assert.deepEqual(logged.filter((l) => l.protocol !== 'h2'), []);
  } finally {
    consoleLines.push(...tlsConsole.map((l) => `[https demo] ${l}`));
  }
});
