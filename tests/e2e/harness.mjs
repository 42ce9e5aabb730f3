// Shared plumbing of the end-to-end tests: command-line flags, starting the
// C++ binaries on port 0, one line per check, a watchdog, and cleanup that
// runs on success, failure, timeout and signals alike.
import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const E2E_DIR = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(E2E_DIR, '..', '..');

// --name=value flags; a missing flag falls back to the environment variable
// NAME (SERVER, BRIDGE), so `SERVER=... npm test` works too. Relative paths
// are taken from where npm was started ($INIT_CWD) or else the current
// directory.
export function flags(required) {
  const out = {};
  for (const arg of process.argv.slice(2)) {
    const m = /^--([a-z_]+)=(.*)$/.exec(arg);
    if (!m) usage(`unknown argument ${arg}`, required);
    out[m[1]] = m[2];
  }
  for (const name of required) {
    out[name] ??= process.env[name.toUpperCase()];
    if (!out[name]) usage(`missing --${name}=<path> (or $${name.toUpperCase()})`, required);
    out[name] = path.resolve(process.env.INIT_CWD ?? process.cwd(), out[name]);
  }
  return out;
}

function usage(message, required) {
  const script = path.basename(process.argv[1]);
  console.error(`${script}: ${message}`);
  console.error(`usage: node ${script} ${required.map((n) => `--${n}=<path>`).join(' ')}`);
  process.exit(2);
}

// --- checks ------------------------------------------------------------------

let passed = 0;
let failed = 0;

// One line per check: "ok - name" or "FAIL - name: detail".
export function check(name, ok, detail = '') {
  if (ok) {
    passed++;
    console.log(`ok - ${name}`);
  } else {
    failed++;
    console.log(`FAIL - ${name}${detail ? `: ${detail}` : ''}`);
  }
  return ok;
}

export function checkEqual(name, actual, expected) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  return check(name, a === e, `got ${a}, want ${e}`);
}

// --- cleanup -----------------------------------------------------------------

const cleanups = [];
const failureHooks = [];

// fn runs (newest first) when the test ends, however it ends.
export function onCleanup(fn) {
  cleanups.push(fn);
}

// fn runs before cleanup when the test fails (e.g. to print logs).
export function onFailure(fn) {
  failureHooks.push(fn);
}

// Runs the cleanups registered so far, newest first, each once: for test
// runners other than run() (client/web's node:test files call it from an
// after() hook).
export async function runCleanups() {
  while (cleanups.length > 0) {
    const fn = cleanups.pop();
    try {
      await withTimeout(Promise.resolve().then(fn), 10000, 'cleanup');
    } catch (e) {
      console.log(`# cleanup: ${e.message}`);
    }
  }
}

let finishing = false;

async function finish(code) {
  if (finishing) return;
  finishing = true;
  if (code !== 0) {
    for (const fn of failureHooks) {
      try {
        await withTimeout(Promise.resolve().then(fn), 5000, 'failure hook');
      } catch (e) {
        console.log(`# failure hook: ${e.message}`);
      }
    }
  }
  for (const fn of cleanups.reverse()) {
    try {
      await withTimeout(Promise.resolve().then(fn), 10000, 'cleanup');
    } catch (e) {
      console.log(`# cleanup: ${e.message}`);
    }
  }
  console.log(`# ${passed} passed, ${failed} failed`);
  process.exit(code);
}

// Runs the test body under a watchdog; exits 0 only when every check passed
// and the body did not throw.
export function run(body, { timeoutMs = 50000 } = {}) {
  const watchdog = setTimeout(() => {
    check(`test finished within ${timeoutMs / 1000}s`, false, 'watchdog fired');
    finish(1);
  }, timeoutMs);
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      check(`not interrupted`, false, signal);
      finish(1);
    });
  }
  Promise.resolve()
    .then(body)
    .then(
      () => {
        clearTimeout(watchdog);
        finish(failed === 0 && passed > 0 ? 0 : 1);
      },
      (error) => {
        clearTimeout(watchdog);
        check('test body ran to the end', false, error?.stack ?? String(error));
        finish(1);
      },
    );
}

// --- helpers -----------------------------------------------------------------

export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Waits (bounded) until pred() (may be async) holds, polling every 20 ms;
// returns whether it did.
export async function until(pred, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

export function randomToken() {
  // "gv5ecret" marks every credential of the suites, so that
  // tests/lint/no_secrets_in_logs.sh can find one that leaked into a log.
  return `e2e-gv5ecret-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
}

// Starts `file args...`, waits (up to timeoutMs) for a stdout line matching
// `ready`, and returns { match, output(), exited(), whenExited(), kill(signal) }
// (whenExited(): a promise settled once the process has exited and all its
// output has been read, or 1 s after the exit should a child of its hold its
// stdout or stderr open). The process gets SIGTERM at
// cleanup (SIGKILL if still alive after 3 s); its output is printed when the
// test fails.
export async function startProcess(name, file, args, ready, timeoutMs = 15000) {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let exited = null;
  const exitedPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    });
    child.on('error', (error) => {
      exited = { error };
      resolve();
    });
  });
  const outputRead = Promise.all(
    [child.stdout, child.stderr].map((stream) => new Promise((resolve) => stream.once('close', resolve))),
  );
  let whenExited = null;
  const exitedAndRead = () =>
    (whenExited ??= exitedPromise.then(() => {
      let timer;
      return Promise.race([outputRead, new Promise((resolve) => (timer = setTimeout(resolve, 1000)))]).finally(
        () => clearTimeout(timer),
      );
    }));
  onFailure(() => {
    console.log(`# --- ${name} output (${[file, ...args].join(' ')}) ---`);
    for (const line of output.trimEnd().split('\n')) console.log(`# ${line}`);
  });
  onCleanup(async () => {
    if (exited) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exitedPromise;
    clearTimeout(killer);
  });
  const match = await withTimeout(
    new Promise((resolve, reject) => {
      const scan = () => {
        for (const line of output.split('\n')) {
          const m = ready.exec(line);
          if (m) return resolve(m);
        }
      };
      child.stdout.on('data', (chunk) => {
        output += chunk;
        scan();
      });
      child.stderr.on('data', (chunk) => {
        output += chunk;
      });
      exitedPromise.then(() =>
        reject(new Error(`${name} exited before it was ready: ${JSON.stringify(exited)}\n${output}`)),
      );
    }),
    timeoutMs,
    `${name} to print ${ready}`,
  );
  return {
    match,
    output: () => output,
    exited: () => exited,
    whenExited: exitedAndRead,
    kill: (signal) => child.kill(signal),
  };
}

// A process on a fixed port that the test kills and starts again: start()
// runs startProcess(`${name} #N`, file, argv, ready, readyTimeoutMs), retried
// for up to retryForMs (every retryEveryMs) should the port be busy a moment;
// kill() SIGKILLs it and waits (up to 5 s) until it has exited. `process` is
// the current startProcess result (null once killed).
export class Restartable {
  constructor(name, file, argv, ready, { retryForMs = 10000, retryEveryMs = 200, readyTimeoutMs = 15000 } = {}) {
    Object.assign(this, { name, file, argv, ready, retryForMs, retryEveryMs, readyTimeoutMs });
    this.process = null;
    this.starts = 0;
  }

  async start() {
    const deadline = Date.now() + this.retryForMs;
    for (;;) {
      try {
        this.process = await startProcess(
          `${this.name} #${++this.starts}`,
          this.file,
          this.argv,
          this.ready,
          this.readyTimeoutMs,
        );
        return;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await sleep(this.retryEveryMs);
      }
    }
  }

  async kill() {
    if (!this.process) return;
    this.process.kill('SIGKILL');
    const deadline = Date.now() + 5000;
    while (!this.process.exited()) {
      if (Date.now() > deadline) throw new Error(`${this.name} did not die on SIGKILL`);
      await sleep(5);
    }
    this.process = null;
  }

  signal(name) {
    this.process.kill(name);
  }
}

// streaming-server on a free port, with --admin_token when adminToken is
// given, then extraArgs (e.g. --jwt_key); `name` is the one its output is
// printed under. Returns { address: '127.0.0.1:PORT', ... }.
export async function startServer(serverPath, { adminToken, extraArgs = [], name = 'streaming-server' } = {}) {
  const args = ['--listen=127.0.0.1:0', '--drain=1s'];
  if (adminToken !== undefined) args.push(`--admin_token=${adminToken}`);
  args.push(...extraArgs);
  const p = await startProcess(
    name,
    serverPath,
    args,
    /^streaming-server listening on (\S+:\d+)\s*$/,
  );
  return { ...p, address: p.match[1] };
}

// gravity-bridge in front of `backend`; returns { url: 'http://127.0.0.1:PORT', ... }
// ('https://...' when extraArgs has --tls_cert and --tls_key).
export async function startBridge(bridgePath, backend, extraArgs = []) {
  const p = await startProcess(
    'gravity-bridge',
    bridgePath,
    ['--listen=127.0.0.1:0', `--backend=${backend}`, '--drain=1s', '--discovery_timeout=10s', ...extraArgs],
    /^gravity-bridge listening on (https?:\/\/\S+:\d+)\s*$/,
  );
  return { ...p, url: p.match[1] };
}

// redis-server on 127.0.0.1:`port` with its files in `dir` (no RDB
// snapshots, no password, logging to stdout), plus extraArgs (e.g.
// ['--appendonly', 'yes']); resolves once it is ready to accept connections.
export async function startRedis(redisServerPath, dir, port, extraArgs = []) {
  return startProcess(
    'redis-server',
    redisServerPath,
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--protected-mode', 'no',
      '--logfile', '', ...extraArgs],
    /Ready to accept connections/,
  );
}

// examples/chat's chat-server on a free port, on the Redis at `redisAddress`
// (host:port); returns { address: '127.0.0.1:PORT', ... }.
export async function startChatServer(chatServerPath, redisAddress) {
  const p = await startProcess(
    'chat-server',
    chatServerPath,
    ['--listen=127.0.0.1:0', `--redis=${redisAddress}`, '--drain=1s', '--stats_interval=0'],
    /^chat-server listening on (\S+:\d+)/,
  );
  return { ...p, address: p.match[1] };
}

// The value of an unlabelled Prometheus sample in the bridge's /metrics.
export async function metric(bridgeUrl, name) {
  const response = await withTimeout(fetch(`${bridgeUrl}/metrics`), 5000, 'GET /metrics');
  const text = await response.text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`${name} not in /metrics:\n${text}`);
  return Number(m[1]);
}

// Polls metric() until it equals `want` (up to timeoutMs); returns the last value.
export async function waitForMetric(bridgeUrl, name, want, timeoutMs = 3000) {
  const deadline = Date.now() + timeoutMs;
  let value;
  for (;;) {
    value = await metric(bridgeUrl, name);
    if (value === want || Date.now() >= deadline) return value;
    await sleep(50);
  }
}

// --- nginx -------------------------------------------------------------------

// A free loopback port (the kernel picks it).
export function freeLoopbackPort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

// A free loopback port below 32768 (the kernel's ephemeral range starts at
// 32768), for a process the test kills and starts again on the same port: no
// outgoing connection takes it while the process is down, and the restart
// finds it free. Node's listen() sets SO_REUSEADDR, as the binaries do, so
// connections in TIME_WAIT do not count. Each call gives another port.
const lowPortsTaken = new Set();
export async function lowPort() {
  const first = 20000 + (process.pid % 5000) * 2;
  for (let port = first; port < first + 2000; port++) {
    if (lowPortsTaken.has(port)) continue;
    const free = await new Promise((resolve) => {
      const probe = net.createServer();
      probe.once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (free) {
      lowPortsTaken.add(port);
      return port;
    }
  }
  throw new Error('no free port in 20000..32767');
}

// A self-signed certificate for 127.0.0.1 (and localhost) in `dir`, made by
// openssl ($OPENSSL, default openssl on PATH) for this run: { cert, key }.
export async function selfSignedCert(dir) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  await withTimeout(
    promisify(execFile)(process.env.OPENSSL ?? 'openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ]),
    15000,
    'openssl req -x509',
  );
  return { cert, key };
}

// The base64 SHA-256 of a PEM certificate's DER SubjectPublicKeyInfo, the form
// Chromium's --ignore-certificate-errors-spki-list takes (trust that one key,
// not a blanket ignore); the same as
// `openssl x509 -pubkey -noout -in cert.pem | openssl pkey -pubin -outform der
//  | openssl dgst -sha256 -binary | base64`.
export function spkiHash(certFile) {
  const spki = new crypto.X509Certificate(fs.readFileSync(certFile)).publicKey.export({ type: 'spki', format: 'der' });
  return crypto.createHash('sha256').update(spki).digest('base64');
}

// Debian's nginx ($NGINX, default /usr/sbin/nginx) in front of `upstreams`
// (host:port each, e.g. bridges), with docs/bridge.md's proxy settings ("Behind
// nginx"), in a temporary directory, on a free loopback port, plain HTTP/1.1.
// Options:
//   serverParams: appended to each upstream's `server` line ("max_fails=1 ...");
//   location: more directives for `location /` ("proxy_next_upstream error;");
//   files: { 'page.html': text, ... }, each served by nginx itself at /<name>
//     (as text/html), next to the proxy;
//   tls: true for a second server, the same locations over TLS + HTTP/2 on
//     another free port, with a self-signed certificate (selfSignedCert()).
//   workerConnections: nginx's worker_connections (default 4096; a proxied
//     stream takes two), with worker_rlimit_nofile to match.
// Ready when GET /healthz answers 200 through it. Stopped at cleanup (its own
// process group, so the workers too); its error.log is printed when the test
// fails. Returns { url: 'http://127.0.0.1:PORT', https: 'https://127.0.0.1:PORT'
// (with tls), pid, errorLog() }.
export async function startNginx(
  upstreams,
  { serverParams = '', location = '', files = {}, tls = false, workerConnections = 4096 } = {},
) {
  const nginx = process.env.NGINX ?? '/usr/sbin/nginx';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gravity-nginx-'));
  fs.chmodSync(dir, 0o755); // nginx's workers run as nobody
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  const port = await freeLoopbackPort();
  const servers = upstreams.map((u) => `server ${u} ${serverParams};`).join(' ');
  if (Object.keys(files).length > 0) fs.mkdirSync(path.join(dir, 'www'), { mode: 0o755 });
  for (const [name, text] of Object.entries(files)) {
    fs.writeFileSync(path.join(dir, 'www', name), text, { mode: 0o644 });
  }
  const locations = `${Object.keys(files)
    .map((name) => `
    location = /${name} { root ${dir}/www; default_type text/html; }`)
    .join('')}
    location / {
      proxy_pass http://gravity;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 1h;
      ${location}
    }`;
  let tlsServer = '';
  let httpsPort = null;
  if (tls) {
    const { cert, key } = await selfSignedCert(dir);
    httpsPort = await freeLoopbackPort();
    tlsServer = `
  server {
    listen 127.0.0.1:${httpsPort} ssl http2;
    ssl_certificate ${cert};
    ssl_certificate_key ${key};
    ${locations}
  }`;
  }
  const conf = `
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
${workerConnections > 4096 ? `worker_rlimit_nofile ${workerConnections + 64};
` : ''}events { worker_connections ${workerConnections}; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream gravity { ${servers} keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    ${locations}
  }${tlsServer}
}
`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const child = spawn(nginx, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], {
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
      process.kill(-child.pid, 'SIGTERM'); // the master stops its workers
    } catch {}
    await Promise.race([exited, sleep(3000)]);
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {}
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10000;
  for (;;) {
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) break;
    } catch {}
    if (Date.now() > deadline) throw new Error(`nginx did not come up: ${output}\n${errorLog()}`);
    await sleep(100);
  }
  const https = httpsPort === null ? undefined : `https://127.0.0.1:${httpsPort}`;
  return { url, https, pid: child.pid, errorLog };
}

// --- Chromium ------------------------------------------------------------------

// Debian's Chromium, headless, driven by playwright-core's `chromium` (the
// caller's: client/web has its own node_modules), with a fresh profile in a
// temporary directory. Options: executablePath (default $CHROMIUM, else
// /usr/bin/chromium), profilePrefix (the temporary directory's name), spki (a
// PEM certificate file: Chromium trusts that one key,
// --ignore-certificate-errors-spki-list, not a blanket ignore), args (more
// command-line flags, after CHROMIUM_FLAGS), and any more of
// launchPersistentContext's (e.g. ignoreHTTPSErrors). Closed and
// its profile removed at cleanup; the page's console (and uncaught errors) is
// collected in consoleLines and printed when the test fails. Returns
// { context, page, consoleLines }.
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchChromium(
  chromium,
  { executablePath, profilePrefix = 'gravity-e2e-chromium-', spki, args = [], ...options } = {},
) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), profilePrefix));
  onCleanup(() => fs.rmSync(profile, { recursive: true, force: true }));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: executablePath ?? process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    timeout: 20000,
    args: [
      ...CHROMIUM_FLAGS,
      ...(spki === undefined ? [] : [`--ignore-certificate-errors-spki-list=${spkiHash(spki)}`]),
      ...args,
    ],
    ...options,
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
  return { context, page, consoleLines };
}

// A page (openStreamsPage(title): the HTML) for page.evaluate() with
// window.openStreams(urls, sampleMs, waitAll, timeoutMs): opens an
// EventSource on each of `urls` at once; after sampleMs notes how many have
// had their first event and how many have ended; then (waitAll) waits for
// every one to end, or closes them all. Resolves { why ('all ended',
// 'sampled' or 'timeout'), protocol (the page's nextHopProtocol), sample,
// streams }, each stream { to (its URL's `to` parameter), ids, seqs,
// messages, firstAt, endAt, end (the end event's code), errors, closed },
// times in ms from the first `new EventSource`.
export const OPEN_STREAMS_SCRIPT = `
window.openStreams = (urls, sampleMs, waitAll, timeoutMs) => new Promise((resolve) => {
  const t0 = performance.now();
  const streams = [];
  let settled = false;
  let sample = null;
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
  const timer = setTimeout(() => finish('timeout'), timeoutMs);
  const maybeDone = () => { if (waitAll && sample && streams.every((s) => s.end !== null || s.closed)) finish('all ended'); };
  for (const url of urls) {
    const to = new URL(url, location.href).searchParams.get('to');
    const s = { to, ids: [], seqs: [], messages: [], firstAt: null, endAt: null, end: null, errors: 0, closed: false };
    s.es = new EventSource(url);
    s.es.onmessage = (e) => {
      if (s.firstAt === null) s.firstAt = Math.round(performance.now() - t0);
      const data = JSON.parse(e.data);
      s.ids.push(e.lastEventId);
      s.seqs.push(Number(data.seq));
      s.messages.push(data.message);
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
`;

export const openStreamsPage = (title) => `<!doctype html>
<html><head><meta charset="utf-8"><title>${title}</title></head><body><script>${OPEN_STREAMS_SCRIPT}</script></body></html>`;
