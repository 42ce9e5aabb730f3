// h2_idle_streams.mjs: holds N idle SSE streams over HTTP/2 (bench/run's T7;
// loadgen's `idle` mode does the same over HTTP/1.1). Node built-ins only.
//
//   node bench/h2_idle_streams.mjs --url=https://127.0.0.1:PORT --sessions=100 \
//     --streams=100 [--path='/api/streaming/ping?to=bench&count=1000&interval_ms=600000'] \
//     [--ca=cert.pem | --insecure] [--batch=500] [--timeout=180] [--no_stdin] \
//     [--progress=SECS]
//
// Opens --sessions HTTP/2 connections one after the other (https: TLS with
// ALPN h2; http: h2c with prior knowledge), then --streams GET requests of
// --path on each (header `accept: text/event-stream`), at most --batch of
// them waiting for their response headers at a time. Once every stream has a
// 200 it prints
//   READY streams=N sessions=M seconds=S
// and holds them, reading and dropping what arrives (keep-alive comments),
// until stdin ends or SIGTERM / SIGINT (or --timeout seconds of holding;
// --no_stdin: a signal only, for a background job whose stdin is /dev/null);
// then it cancels every stream, closes the sessions and prints
//   RESULT streams=N held=H lost=L seconds_held=S keepalive_streams=K keepalives=C
// where K is how many streams got at least one SSE comment (a keep-alive,
// ": ...\n\n") after READY and C how many comment blocks arrived then in all.
// SIGUSR2 prints the same figures at any time as
//   STATUS heads=H held=H lost=L keepalive_streams=K keepalives=C seconds=S
// and --progress=SECS prints a STATUS line every SECS seconds until READY
// (how far it got when the peer stops answering).
// Exit status 0 when every stream got its 200 within --timeout and none ended
// while held; 1 otherwise (the first problems go to stderr); 2 on a usage
// error. With N streams in M sessions it needs M descriptors, not N.
import fs from 'node:fs';
import http2 from 'node:http2';

const args = new Map();
for (const a of process.argv.slice(2)) {
  const m = /^--([a-z_]+)(?:=(.*))?$/.exec(a);
  if (!m) {
    console.error(`h2_idle_streams: unknown argument ${a}`);
    process.exit(2);
  }
  args.set(m[1], m[2] ?? '');
}
const url = args.get('url');
const sessions = Number(args.get('sessions') ?? 1);
const perSession = Number(args.get('streams') ?? 100);
const path = args.get('path') ?? '/api/streaming/ping?to=bench&count=1000&interval_ms=600000';
const batch = Number(args.get('batch') ?? 500);
const timeoutS = Number(args.get('timeout') ?? 180);
const progressS = Number(args.get('progress') ?? 0);
if (!url || !(sessions >= 1) || !(perSession >= 1) || !(batch >= 1) || !(timeoutS > 0)) {
  console.error('usage: h2_idle_streams.mjs --url=https://HOST:PORT --sessions=M --streams=N ' +
                '[--path=P] [--ca=PEM | --insecure] [--batch=B] [--timeout=SECS] [--no_stdin]');
  process.exit(2);
}
const tls = {};
if (args.has('ca')) tls.ca = fs.readFileSync(args.get('ca'));
if (args.has('insecure')) tls.rejectUnauthorized = false;

const total = sessions * perSession;
const started = process.hrtime.bigint();
const seconds = (since = started) => (Number(process.hrtime.bigint() - since) / 1e9).toFixed(2);
let problems = 0;
const problem = (what) => {
  if (++problems <= 5) console.error(`h2_idle_streams: ${what}`);
};

const open = []; // sessions
const streams = [];
let ready = false;
let releasing = false;
let lost = 0; // streams that ended or failed while held
let heads = 0;
let keepaliveStreams = 0; // streams with at least one comment after READY
let keepalives = 0; // comment blocks after READY
const keepaliveFigures = () => `keepalive_streams=${keepaliveStreams} keepalives=${keepalives}`;
process.on('SIGUSR2', () => {
  console.log(`STATUS heads=${heads} held=${ready ? total - lost : 0} lost=${lost} ` +
              `${keepaliveFigures()} seconds=${seconds()}`);
});

function finish(status) {
  clearTimeout(bound);
  for (const s of streams) if (!s.destroyed) s.close(http2.constants.NGHTTP2_CANCEL);
  for (const s of open) if (!s.destroyed) s.close();
  // Sessions close once their streams have; do not wait long for it.
  setTimeout(() => process.exit(status), 500).unref();
  for (const s of open) {
    s.on('close', () => {
      if (open.every((x) => x.destroyed)) process.exit(status);
    });
  }
  if (open.length === 0) process.exit(status);
}

function release() {
  if (releasing) return;
  releasing = true;
  if (!ready) {
    problem(`released before all streams were open (${heads} of ${total} heads)`);
    finish(1);
    return;
  }
  console.log(`RESULT streams=${total} held=${total - lost} lost=${lost} ` +
              `seconds_held=${seconds(readyAt)} ${keepaliveFigures()}`);
  finish(problems === 0 && lost === 0 ? 0 : 1);
}
process.on('SIGTERM', release);
process.on('SIGINT', release);
if (!args.has('no_stdin')) {
  process.stdin.on('end', release);
  process.stdin.on('error', release);
  process.stdin.resume();
}

let readyAt = started;
const bound = setTimeout(() => {
  if (!ready) problem(`only ${heads} of ${total} streams had their 200 headers after ${timeoutS} s`);
  else problem(`held for --timeout=${timeoutS} s without being released`);
  release();
}, timeoutS * 1000);

function connect() {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url, tls);
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

let waiting = 0; // streams waiting for their headers
let wake = null;
function slot() {
  if (waiting < batch) return Promise.resolve();
  return new Promise((resolve) => { wake = resolve; });
}
function headDone() {
  waiting--;
  if (wake) { const w = wake; wake = null; w(); }
}

function request(session) {
  const stream = session.request({ ':method': 'GET', ':path': path, accept: 'text/event-stream' });
  streams.push(stream);
  waiting++;
  let gotHead = false;
  stream.on('response', (headers) => {
    gotHead = true;
    headDone();
    if (headers[':status'] !== 200) {
      problem(`status ${headers[':status']} for ${path}`);
      release();
      return;
    }
    if (++heads === total) {
      ready = true;
      readyAt = process.hrtime.bigint();
      console.log(`READY streams=${total} sessions=${sessions} seconds=${seconds()}`);
    }
  });
  // Nothing but keep-alive comments arrives on an idle stream: count the
  // comment blocks (a chunk may hold several, or a block may be split; a
  // block starts at the stream's start or after a blank line).
  let comments = 0;
  let last = '\n\n';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    if (!ready) return;
    const text = last + chunk;
    let n = 0;
    for (let i = text.indexOf('\n\n:'); i >= 0; i = text.indexOf('\n\n:', i + 3)) n++;
    last = text.slice(-2);
    if (n === 0) return;
    if (comments === 0) keepaliveStreams++;
    comments += n;
    keepalives += n;
  });
  const gone = (why) => {
    if (releasing) return;
    if (!gotHead) { gotHead = true; headDone(); }
    lost++;
    problem(`a stream ${why} while ${ready ? 'held' : 'opening'}`);
    if (!ready) release();
  };
  stream.on('end', () => gone('ended'));
  stream.on('error', (e) => gone(`failed (${e.code || e.message})`));
}

if (progressS > 0) {
  const timer = setInterval(() => {
    if (ready || releasing) clearInterval(timer);
    else process.emit('SIGUSR2');
  }, progressS * 1000);
  timer.unref();
}

try {
  for (let i = 0; i < sessions && !releasing; i++) {
    const session = await connect();
    open.push(session);
    session.on('error', (e) => {
      if (!releasing) problem(`session error ${e.code || e.message}`);
    });
    session.on('goaway', (code) => {
      if (!releasing) problem(`GOAWAY (code ${code})`);
    });
    for (let j = 0; j < perSession && !releasing; j++) {
      await slot();
      request(session);
    }
  }
} catch (e) {
  problem(`connect to ${url}: ${e.code || e.message}`);
  release();
}
