// The client against a scripted HTTP server (node:http) that plays the
// bridge's wire contract: request mapping (GET query / POST body), headers,
// {data, error}, errors thrown from the loop, reconnection with
// Last-Event-ID, retry:, backoff bounds, maxReconnects, abort and break, and
// unary calls. The real bridge is in integration.test.mjs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createFileRegistry, fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { backoffDelay, createApi, GravityError } from '../dist/index.js';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// --- the test service, compiled now -----------------------------------------

function loadService() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gravity-client-test-'));
  try {
    const out = path.join(dir, 'set.pb');
    execFileSync(process.env.PROTOC ?? 'protoc', [
      `-I${path.join(WEB, 'test/proto')}`,
      '-I/usr/include',
      '--include_imports',
      `--descriptor_set_out=${out}`,
      'client_test.proto',
    ], { cwd: path.join(WEB, 'test/proto') });
    const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(out)));
    return registry.getService('gravity.test.v1.Test');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const Test = loadService();

// --- the scripted bridge -----------------------------------------------------

let server;
let base;
let requests = [];
let handler = () => {};
const sockets = new Set();

before(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const record = { method: req.method, url: req.url, headers: req.headers, body, closed: false, at: Date.now() };
      requests.push(record);
      res.on('close', () => (record.closed = true));
      handler(record, res, requests.length);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});
after(() => {
  for (const s of sockets) s.destroy();
  server.close();
});
beforeEach(() => {
  requests = [];
  handler = () => {};
});

const sse = (res, status = 200) => res.writeHead(status, { 'Content-Type': 'text/event-stream; charset=utf-8' });
const event = (seq, extra = '') => `id: ${seq}\ndata: {"seq":"${seq}","text":"m${seq}"${extra}}\n\n`;
const end = (code = 0, message = '', details = []) => `event: end\ndata: ${JSON.stringify({ code, message, details })}\n\n`;
const statusBody = (res, http, code, message, details = [], headers = {}) => {
  res.writeHead(http, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify({ code, message, details }));
};
const api = (options = {}) => createApi({ baseUrl: base, retryDelayMs: 10, ...options }, { test: Test });

async function collect(iterable) {
  const out = [];
  for await (const m of iterable) out.push(m);
  return out;
}

async function waitFor(predicate, what, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// --- request mapping ---------------------------------------------------------

test('the generated method names: stream and call; client streams left out', () => {
  const a = api();
  assert.deepEqual(Object.keys(a.test).sort(), ['call', 'stream']);
});

test('GET with the query mapping: nested, repeated, int64, enum, bytes, JSON names, explicit presence', async () => {
  handler = (r, res) => {
    sse(res);
    res.end(end());
  };
  const { data, error } = await api().test.stream({
    text: 'a b&c=d/é',
    big: 9007199254740993n,
    nums: [1, 2, 3],
    color: 1,
    blob: new Uint8Array([0xfb, 0xff, 0x00]),
    inner: { name: 'x', deeper: { flag: true } },
    ratio: 0.5,
    maybe: 0,
    snakeCaseField: 's',
    words: ['', 'two'],
  });
  assert.equal(error, undefined);
  assert.deepEqual(await collect(data), []);
  const [r] = requests;
  assert.equal(r.method, 'GET');
  const url = new URL(r.url, base);
  assert.equal(url.pathname, '/gravity.test.v1.Test/Stream');
  assert.deepEqual([...url.searchParams], [
    ['text', 'a b&c=d/é'],
    ['big', '9007199254740993'],
    ['nums', '1'],
    ['nums', '2'],
    ['nums', '3'],
    ['color', 'RED'],
    ['blob', '+/8A'],
    ['inner.name', 'x'],
    ['inner.deeper.flag', 'true'],
    ['ratio', '0.5'],
    ['maybe', '0'],
    ['snakeCaseField', 's'],
    ['words', ''],
    ['words', 'two'],
  ]);
  assert.equal(r.headers.accept, 'text/event-stream');
  assert.equal(r.headers.authorization, undefined);
  assert.equal(r.headers['last-event-id'], undefined);
});

test('an empty request is a GET without a query', async () => {
  handler = (r, res) => {
    sse(res);
    res.end(end());
  };
  const { data } = await api().test.stream();
  await collect(data);
  assert.equal(requests[0].url, '/gravity.test.v1.Test/Stream');
});

for (const [name, request] of [
  ['a map', { labels: { a: 'b' } }],
  ['a well-known type (Timestamp)', { at: { seconds: 1n, nanos: 0 } }],
  ['a repeated message', { items: [{ name: 'x' }] }],
  ['an empty nested message (presence)', { inner: {} }],
  ['a URL over 2048 characters', { text: 'x'.repeat(2100) }],
]) {
  test(`POST with a JSON body for ${name}`, async () => {
    handler = (r, res) => {
      sse(res);
      res.end(end());
    };
    const { data, error } = await api().test.stream(request);
    assert.equal(error, undefined);
    await collect(data);
    const [r] = requests;
    assert.equal(r.method, 'POST');
    assert.equal(r.url, '/gravity.test.v1.Test/Stream');
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.headers.accept, 'text/event-stream');
    const body = JSON.parse(r.body);
    for (const key of Object.keys(request)) assert.ok(key in body, `${key} in ${r.body}`);
  });
}

test('maxUrlLength and httpMethod options', async () => {
  handler = (r, res) => {
    sse(res);
    res.end(end());
  };
  await collect((await api({ maxUrlLength: 10 }).test.stream({ text: 'hello' })).data);
  await collect((await api().test.stream({ text: 'hello' }, { httpMethod: 'POST' })).data);
  await collect((await api({ maxUrlLength: 10 }).test.stream({ text: 'hello' }, { httpMethod: 'GET' })).data);
  assert.deepEqual(requests.map((r) => r.method), ['POST', 'POST', 'GET']);
});

test('headers: token (string and function), options.headers, call headers, lastEventId, baseUrl with a slash', async () => {
  handler = (r, res) => {
    sse(res);
    res.end(end());
  };
  let calls = 0;
  const a = createApi(
    { baseUrl: `${base}/`, token: () => `t${++calls}`, headers: { 'X-App': 'a', 'X-Both': 'client' } },
    { test: Test },
  );
  await collect((await a.test.stream({}, { headers: { 'X-Both': 'call' }, lastEventId: '41' })).data);
  await collect((await api({ token: 'secret' }).test.stream()).data);
  assert.equal(requests[0].url, '/gravity.test.v1.Test/Stream');
  assert.equal(requests[0].headers.authorization, 'Bearer t1');
  assert.equal(requests[0].headers['x-app'], 'a');
  assert.equal(requests[0].headers['x-both'], 'call');
  assert.equal(requests[0].headers['last-event-id'], '41');
  assert.equal(requests[1].headers.authorization, 'Bearer secret');
});

// --- results and errors ------------------------------------------------------

test('messages are typed (int64 as bigint) and unknown fields ignored; end code 0 ends the loop', async () => {
  handler = (r, res) => {
    sse(res);
    res.write(': keep-alive\n\n');
    res.write(event(1, ',"unknownField":true'));
    res.end(event(2) + end());
  };
  const { data, error } = await api().test.stream();
  assert.equal(error, undefined);
  const messages = await collect(data);
  assert.deepEqual(messages.map((m) => [m.seq, m.text]), [[1n, 'm1'], [2n, 'm2']]);
  assert.equal(messages[0].$typeName, 'gravity.test.v1.Reply');
  assert.equal(data.lastEventId, '2');
});

test('HTTP error: {error} from the Status JSON, no data', async () => {
  const details = [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'R' }];
  handler = (r, res) => statusBody(res, 401, 16, 'missing token', details);
  const result = await api().test.stream();
  assert.equal(result.data, undefined);
  assert.ok(result.error instanceof GravityError);
  assert.equal(result.error.code, 16);
  assert.equal(result.error.codeName, 'UNAUTHENTICATED');
  assert.equal(result.error.message, 'missing token');
  assert.deepEqual(result.error.details, details);
  assert.equal(result.error.httpStatus, 401);
  assert.equal(requests.length, 1);
});

test('HTTP error without a Status JSON body: code from the HTTP status', async () => {
  handler = (r, res) => {
    res.writeHead(502, { 'Content-Type': 'text/html' });
    res.end('<h1>Bad Gateway</h1>');
  };
  // maxReconnects 0: a 502 is otherwise tried again (see "retrying 502, 503, 504").
  const { error } = await api({ maxReconnects: 0 }).test.stream();
  assert.equal(error.code, 14);
  assert.equal(error.httpStatus, 502);
  assert.equal(requests.length, 1);
  handler = (r, res) => {
    res.writeHead(500, { 'Content-Type': 'text/plain' });
    res.end('oops');
  };
  const other = await api().test.stream();
  assert.equal(other.error.code, 2);
  assert.equal(other.error.httpStatus, 500);
  assert.equal(requests.length, 2, 'a 500 is not tried again');
});

test('200 that is not text/event-stream: {error} INTERNAL', async () => {
  handler = (r, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<html></html>');
  };
  const { error } = await api().test.stream();
  assert.equal(error.code, 13);
});

test('network failure: {error} UNAVAILABLE', async () => {
  const dead = http.createServer();
  await new Promise((resolve) => dead.listen(0, '127.0.0.1', resolve));
  const port = dead.address().port;
  await new Promise((resolve) => dead.close(resolve));
  const a = createApi({ baseUrl: `http://127.0.0.1:${port}` }, { test: Test });
  const streamed = await a.test.stream();
  assert.equal(streamed.data, undefined);
  assert.equal(streamed.error.code, 14);
  const unary = await a.test.call({ text: 'x' });
  assert.equal(unary.error.code, 14);
});

test('end with an error: thrown from the loop after every earlier message', async () => {
  handler = (r, res) => {
    sse(res);
    res.end(event(1) + event(2) + end(10, 'aborted at 2', [{ '@type': 'x' }]));
  };
  const { data } = await api().test.stream();
  const seen = [];
  await assert.rejects(
    async () => {
      for await (const m of data) seen.push(m.seq);
    },
    (e) => e instanceof GravityError && e.code === 10 && e.message === 'aborted at 2' && e.details.length === 1,
  );
  assert.deepEqual(seen, [1n, 2n]);
});

test('a malformed message is an INTERNAL error from the loop', async () => {
  handler = (r, res) => {
    sse(res);
    res.end('data: {"seq": "not a number"}\n\n' + end());
  };
  const { data } = await api().test.stream();
  await assert.rejects(collect(data), (e) => e.code === 13);
});

test('a stream can be iterated once', async () => {
  handler = (r, res) => {
    sse(res);
    res.end(end());
  };
  const { data } = await api().test.stream();
  await collect(data);
  assert.throws(() => data[Symbol.asyncIterator](), TypeError);
});

// --- reconnection -------------------------------------------------------------

test('a cut without end resumes with Last-Event-ID: every message once, onReconnect told', async () => {
  handler = (r, res, n) => {
    sse(res);
    if (n === 1) res.end('retry: 20\n\n' + event(1) + event(2)); // cut, no end
    else if (n === 2) res.end('retry: 20\n\n'); // backend still down: the bridge's 200 + retry
    else if (n === 3) res.destroy(); // network error mid-response
    else res.end(event(3) + event(4) + end());
  };
  const reconnects = [];
  const { data } = await api({ onReconnect: (info) => reconnects.push(info) }).test.stream();
  const messages = await collect(data);
  assert.deepEqual(messages.map((m) => m.seq), [1n, 2n, 3n, 4n]);
  assert.deepEqual(requests.map((r) => r.headers['last-event-id']), [undefined, '2', '2', '2']);
  assert.deepEqual(reconnects.map((i) => [i.attempt, i.lastEventId, i.error.code]), [
    [1, '2', 14],
    [2, '2', 14],
    [3, '2', 14],
  ]);
  assert.equal(reconnects[0].method, 'gravity.test.v1.Test/Stream');
  // retry: 20 honoured, with backoff: 20 × 2^(n−1) plus up to 50 %.
  for (const info of reconnects) {
    const exp = 20 * 2 ** (info.attempt - 1);
    assert.ok(info.delayMs >= exp && info.delayMs <= exp * 1.5, `${info.delayMs} for attempt ${info.attempt}`);
  }
  assert.equal(data.reconnects, 3);
  // A reconnection is a request like the first (same URL and method).
  assert.ok(requests.every((r) => r.url === requests[0].url && r.method === 'GET'));
});

test('the attempt count restarts after a message', async () => {
  handler = (r, res, n) => {
    sse(res);
    if (n <= 3) res.end(event(n)); // each connection: one message, then a cut
    else res.end(end());
  };
  const reconnects = [];
  const { data } = await api({ maxReconnects: 1, onReconnect: (i) => reconnects.push(i.attempt) }).test.stream();
  assert.deepEqual((await collect(data)).map((m) => m.seq), [1n, 2n, 3n]);
  assert.deepEqual(reconnects, [1, 1, 1]);
});

test('maxReconnects attempts without a message, then UNAVAILABLE from the loop', async () => {
  handler = (r, res, n) => {
    sse(res);
    res.end(n === 1 ? event(1) : '');
  };
  const { data } = await api({ maxReconnects: 3 }).test.stream();
  const seen = [];
  await assert.rejects(
    async () => {
      for await (const m of data) seen.push(m.seq);
    },
    (e) => e.code === 14 && /3 reconnection attempt/.test(e.message),
  );
  assert.deepEqual(seen, [1n]);
  assert.equal(requests.length, 4);
});

test('maxReconnects 0: a cut throws at once', async () => {
  handler = (r, res) => {
    sse(res);
    res.end(event(1));
  };
  const { data } = await api().test.stream({}, { maxReconnects: 0 });
  await assert.rejects(collect(data), (e) => e.code === 14);
  assert.equal(requests.length, 1);
});

test('an HTTP error on a reconnection is thrown; no further attempt', async () => {
  handler = (r, res, n) => {
    if (n === 1) {
      sse(res);
      res.end(event(1));
    } else statusBody(res, 403, 7, 'revoked');
  };
  const { data } = await api().test.stream();
  await assert.rejects(collect(data), (e) => e.code === 7 && e.httpStatus === 403);
  assert.equal(requests.length, 2);
});

test('never a reconnection after end', async () => {
  handler = (r, res) => {
    sse(res);
    res.end(event(1) + end(9, 'failed precondition'));
  };
  const reconnects = [];
  const { data } = await api({ onReconnect: (i) => reconnects.push(i) }).test.stream();
  await assert.rejects(collect(data), (e) => e.code === 9);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(requests.length, 1);
  assert.equal(reconnects.length, 0);
});

test('backoffDelay: exponential from the base, capped, jitter up to 50 %, never below retry:', () => {
  assert.equal(backoffDelay(1, 1000, 30000, () => 0), 1000);
  assert.equal(backoffDelay(1, 1000, 30000, () => 1), 1500);
  assert.equal(backoffDelay(3, 1000, 30000, () => 0), 4000);
  assert.equal(backoffDelay(10, 1000, 30000, () => 0), 30000);
  assert.equal(backoffDelay(100, 1000, 30000, () => 0), 30000);
  assert.equal(backoffDelay(3, 60000, 30000, () => 0), 60000);
});

// --- retrying 502, 503, 504 -----------------------------------------------------
// A draining bridge answers 503 with Retry-After: 1; a proxy answers 502 or
// 504 while the bridge behind it restarts. Those are tried again like a cut
// (same backoff and maxReconnects, never sooner than Retry-After, capped at
// 60 s); any other HTTP error stays final.

const draining = (res, retryAfter = '1') =>
  statusBody(res, 503, 14, 'the bridge is draining', [], retryAfter === null ? {} : { 'Retry-After': retryAfter });
const badGateway = (res) => {
  res.writeHead(502, { 'Content-Type': 'text/html' });
  res.end('<h1>502 Bad Gateway</h1>');
};

test('retrying 502, 503, 504 on a reconnection: Retry-After waited, Last-Event-ID kept, every message once', async () => {
  handler = (r, res, n) => {
    if (n === 1) {
      sse(res);
      res.end(event(1)); // cut, no end
    } else if (n === 2) draining(res, '1');
    else if (n === 3) badGateway(res);
    else if (n === 4) statusBody(res, 504, 4, 'the backend did not answer in time');
    else {
      sse(res);
      res.end(event(2) + event(3) + end());
    }
  };
  const reconnects = [];
  const { data, error } = await api({ onReconnect: (i) => reconnects.push(i) }).test.stream();
  assert.equal(error, undefined);
  assert.deepEqual((await collect(data)).map((m) => m.seq), [1n, 2n, 3n]);
  assert.deepEqual(requests.map((r) => r.headers['last-event-id']), [undefined, '1', '1', '1', '1']);
  assert.deepEqual(reconnects.map((i) => [i.attempt, i.lastEventId, i.error.code, i.error.httpStatus]), [
    [1, '1', 14, undefined],
    [2, '1', 14, 503],
    [3, '1', 14, 502],
    [4, '1', 4, 504],
  ]);
  assert.equal(reconnects[1].error.message, 'the bridge is draining');
  // Retry-After: 1 is the floor of the wait after the 503, plus up to 50 % jitter.
  assert.ok(reconnects[1].delayMs >= 1000 && reconnects[1].delayMs <= 1500, `${reconnects[1].delayMs}`);
  const waited = requests[2].at - requests[1].at;
  assert.ok(waited >= 990 && waited < 5000, `waited ${waited} ms after Retry-After: 1`);
  // Without Retry-After (502, 504) the plain backoff: retryDelayMs 10 × 2^(n−1), + up to 50 %.
  assert.ok(reconnects[2].delayMs >= 40 && reconnects[2].delayMs <= 60, `${reconnects[2].delayMs}`);
  assert.ok(reconnects[3].delayMs >= 80 && reconnects[3].delayMs <= 120, `${reconnects[3].delayMs}`);
  assert.equal(data.reconnects, 4);
  assert.ok(requests.every((r) => r.url === requests[0].url && r.method === 'GET'));
});

test('retrying 502, 503, 504 on the first request: {data} once a stream is open, lastEventId sent on each', async () => {
  handler = (r, res, n) => {
    if (n === 1) draining(res, '1');
    else if (n === 2) badGateway(res);
    else if (n === 3) statusBody(res, 504, 4, 'slow backend');
    else {
      sse(res);
      res.end(event(8) + end());
    }
  };
  const reconnects = [];
  const started = Date.now();
  const { data, error } = await api({ onReconnect: (i) => reconnects.push(i) }).test.stream({}, { lastEventId: '7' });
  assert.equal(error, undefined);
  assert.ok(Date.now() - started >= 990, 'Retry-After: 1 waited before the first retry');
  assert.equal(data.reconnects, 3);
  assert.deepEqual((await collect(data)).map((m) => m.seq), [8n]);
  assert.deepEqual(requests.map((r) => r.headers['last-event-id']), ['7', '7', '7', '7']);
  assert.deepEqual(reconnects.map((i) => [i.attempt, i.error.httpStatus]), [[1, 503], [2, 502], [3, 504]]);
});

test('the first request: 503 until maxReconnects runs out gives that {error}', async () => {
  handler = (r, res) => draining(res, null);
  const { data, error } = await api({ maxReconnects: 2 }).test.stream();
  assert.equal(data, undefined);
  assert.equal(error.code, 14);
  assert.equal(error.httpStatus, 503);
  assert.equal(error.message, 'the bridge is draining');
  assert.equal(requests.length, 3);
});

test('a reconnection answered 503 until maxReconnects runs out: UNAVAILABLE from the loop', async () => {
  handler = (r, res, n) => {
    if (n === 1) {
      sse(res);
      res.end(event(1));
    } else draining(res, null);
  };
  const { data } = await api({ maxReconnects: 2 }).test.stream();
  const seen = [];
  await assert.rejects(
    async () => {
      for await (const m of data) seen.push(m.seq);
    },
    (e) => e.code === 14 && /the bridge is draining; not resumed after 2 reconnection attempt/.test(e.message) &&
      e.cause?.httpStatus === 503,
  );
  assert.deepEqual(seen, [1n]);
  assert.equal(requests.length, 3);
});

for (const [http, code, body] of [
  [400, 3, 'bad query'],
  [401, 16, 'token expired'],
  [404, 5, 'no such topic'],
  [404, 12, undefined], // a proxy's page, no Status JSON: the code from the HTTP status
  [429, 8, 'too many streams'],
  [500, 13, 'internal'],
]) {
  test(`a reconnection answered ${http}${body ? '' : ' (no Status JSON)'} is final: thrown with its code, no further attempt`, async () => {
    handler = (r, res, n) => {
      if (n === 1) {
        sse(res);
        res.end(event(1));
      } else if (body === undefined) {
        res.writeHead(http, { 'Content-Type': 'text/html', 'Retry-After': '0' });
        res.end('<h1>Not Found</h1>');
      } else statusBody(res, http, code, body, [], { 'Retry-After': '0' });
    };
    const { data } = await api().test.stream();
    await assert.rejects(collect(data), (e) => {
      assert.ok(e instanceof GravityError);
      assert.equal(e.code, code);
      assert.equal(e.httpStatus, http);
      assert.equal(e.message, body ?? `HTTP ${http} Not Found`);
      return true;
    });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(requests.length, 2);
  });
}

test('a 4xx on the first request is {error} at once, not retried', async () => {
  handler = (r, res) => statusBody(res, 403, 7, 'denied', [], { 'Retry-After': '1' });
  const { error } = await api().test.stream();
  assert.equal(error.code, 7);
  assert.equal(requests.length, 1);
});

test('Retry-After: a hostile 999999 or a far HTTP-date is capped at 60 s; a near HTTP-date counts; garbage is ignored', async () => {
  const cases = [
    ['999999', 60000, 90000],
    ['99999999999999999999999', 60000, 90000],
    [new Date(Date.now() + 3600e3).toUTCString(), 60000, 90000],
    [new Date(Date.now() + 3000).toUTCString(), 1000, 4500], // HTTP-date has whole seconds
    // A past date or a value that is neither form: the backoff alone (attempt 2: 20 ms + up to 50 %).
    [new Date(Date.now() - 3600e3).toUTCString(), 20, 30],
    ['soon', 20, 30],
    ['-5', 20, 30],
    ['1.5', 20, 30],
  ];
  for (const [retryAfter, min, max] of cases) {
    requests = [];
    handler = (r, res, n) => {
      if (n === 1) {
        sse(res);
        res.end(event(1));
      } else draining(res, retryAfter);
    };
    const controller = new AbortController();
    const delays = [];
    const onReconnect = (i) => {
      delays.push(i.delayMs);
      if (i.attempt === 2) controller.abort(); // abort during the wait that follows the 503
    };
    const { data } = await api({ onReconnect }).test.stream({}, { signal: controller.signal });
    const started = Date.now();
    await assert.rejects(collect(data), (e) => e.code === 1);
    assert.ok(Date.now() - started < 2000, `${retryAfter}: ended promptly`);
    assert.equal(delays.length, 2, retryAfter);
    assert.ok(delays[1] >= min && delays[1] <= max, `Retry-After ${retryAfter}: waited ${delays[1]} ms`);
    assert.equal(requests.length, 2);
  }
});

test('aborting during a Retry-After wait ends at once: CANCELLED, no further request', async () => {
  handler = (r, res, n) => {
    if (n === 1) {
      sse(res);
      res.end(event(1));
    } else draining(res, '30');
  };
  const controller = new AbortController();
  let waiting;
  const onReconnect = (i) => {
    if (i.error.httpStatus === 503) waiting = Date.now();
  };
  const { data } = await api({ onReconnect }).test.stream({}, { signal: controller.signal });
  const loop = collect(data);
  await waitFor(() => waiting !== undefined, 'the wait after the 503');
  await new Promise((r) => setTimeout(r, 100));
  const aborted = Date.now();
  controller.abort();
  await assert.rejects(loop, (e) => e instanceof GravityError && e.code === 1);
  assert.ok(Date.now() - aborted < 1000, `ended ${Date.now() - aborted} ms after the abort`);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(requests.length, 2);
});

test('aborting during the first request\'s Retry-After wait: {error} CANCELLED at once', async () => {
  handler = (r, res) => draining(res, '30');
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 200);
  const started = Date.now();
  const { data, error } = await api().test.stream({}, { signal: controller.signal });
  assert.equal(data, undefined);
  assert.equal(error.code, 1);
  assert.ok(Date.now() - started < 1500, `ended after ${Date.now() - started} ms`);
  assert.equal(requests.length, 1);
});

test('close() during a Retry-After wait ends the loop quietly', async () => {
  handler = (r, res, n) => {
    if (n === 1) {
      sse(res);
      res.end(event(1));
    } else draining(res, '30');
  };
  const { data } = await api({ onReconnect: (i) => i.error.httpStatus === 503 && setTimeout(() => data.close(), 50) })
    .test.stream();
  const started = Date.now();
  assert.deepEqual((await collect(data)).map((m) => m.seq), [1n]);
  assert.ok(Date.now() - started < 1500);
  assert.equal(requests.length, 2);
});

test('a slow subscriber cut by the bridge with retry: (no end) resumes after the last event', async () => {
  handler = (r, res, n) => {
    sse(res);
    // The bridge's cut of a subscriber that fell behind: a retry: block, then the close.
    if (n === 1) res.end('retry: 20\n\n' + event(1) + event(2) + 'retry: 30\n\n');
    else res.end(event(3) + end());
  };
  const reconnects = [];
  const { data } = await api({ onReconnect: (i) => reconnects.push(i) }).test.stream();
  assert.deepEqual((await collect(data)).map((m) => m.seq), [1n, 2n, 3n]);
  assert.deepEqual(requests.map((r) => r.headers['last-event-id']), [undefined, '2']);
  assert.equal(reconnects.length, 1);
  assert.equal(reconnects[0].error.code, 14);
  assert.ok(reconnects[0].delayMs >= 30 && reconnects[0].delayMs <= 45, `${reconnects[0].delayMs}`);
});

// --- abort and break -----------------------------------------------------------

function endless(r, res) {
  sse(res);
  let seq = 0;
  const timer = setInterval(() => res.write(event(++seq)), 5);
  res.on('close', () => clearInterval(timer));
}

test('break closes the request', async () => {
  handler = endless;
  const { data } = await api().test.stream();
  let n = 0;
  for await (const m of data) if (++n === 3) break;
  await waitFor(() => requests[0].closed, 'the server to see the request closed');
  assert.equal(requests.length, 1);
});

test('aborting the signal throws CANCELLED from the loop and closes the request', async () => {
  handler = endless;
  const controller = new AbortController();
  const { data } = await api().test.stream({}, { signal: controller.signal });
  let n = 0;
  await assert.rejects(
    async () => {
      for await (const m of data) if (++n === 3) controller.abort();
    },
    (e) => e instanceof GravityError && e.code === 1,
  );
  await waitFor(() => requests[0].closed, 'the server to see the request closed');
});

test('aborting during a reconnection delay throws CANCELLED; no further request', async () => {
  handler = (r, res) => {
    sse(res);
    res.end('retry: 60000\n\n' + event(1));
  };
  const controller = new AbortController();
  const { data } = await api({ onReconnect: () => controller.abort() }).test.stream({}, { signal: controller.signal });
  await assert.rejects(collect(data), (e) => e.code === 1);
  assert.equal(requests.length, 1);
});

test('an already aborted signal: {error} CANCELLED, nothing sent', async () => {
  const { error } = await api().test.stream({}, { signal: AbortSignal.abort() });
  assert.equal(error.code, 1);
  const unary = await api().test.call({}, { signal: AbortSignal.abort() });
  assert.equal(unary.error.code, 1);
  assert.equal(requests.length, 0);
});

test('close() ends the loop quietly and closes the request', async () => {
  handler = endless;
  const { data } = await api().test.stream();
  let n = 0;
  for await (const m of data) if (++n === 2) data.close();
  await waitFor(() => requests[0].closed, 'the server to see the request closed');
});

// --- unary ---------------------------------------------------------------------

test('unary: POST <base>/<Service>/<Method> with the proto3 JSON; 200 gives {data}', async () => {
  handler = (r, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ seq: '5', text: 'echo', unknownField: 1 }));
  };
  const { data, error } = await api({ token: 'tok' }).test.call({ text: 'hi', big: 7n, labels: { a: 'b' } });
  assert.equal(error, undefined);
  assert.equal(data.seq, 5n);
  assert.equal(data.text, 'echo');
  const [r] = requests;
  assert.equal(r.method, 'POST');
  assert.equal(r.url, '/gravity.test.v1.Test/Call');
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal(r.headers.authorization, 'Bearer tok');
  assert.deepEqual(JSON.parse(r.body), { text: 'hi', big: '7', labels: { a: 'b' } });
});

test('unary: an error status gives {error} with code, message, details', async () => {
  handler = (r, res) => statusBody(res, 409, 10, 'echo failed', [{ '@type': 'd' }]);
  const { data, error } = await api().test.call({ text: 'x' });
  assert.equal(data, undefined);
  assert.equal(error.code, 10);
  assert.equal(error.message, 'echo failed');
  assert.deepEqual(error.details, [{ '@type': 'd' }]);
  assert.equal(error.httpStatus, 409);
});

test('unary: a reply that is not JSON gives {error} INTERNAL', async () => {
  handler = (r, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end('hello');
  };
  const { error } = await api().test.call({});
  assert.equal(error.code, 13);
});

test('an end event whose Status JSON leaves out code 0 ends the loop normally', async () => {
  handler = (r, res) => {
    sse(res);
    res.end(event(1) + 'event: end\ndata: {}\n\n');
  };
  const { data } = await api().test.stream();
  assert.deepEqual((await collect(data)).map((m) => m.seq), [1n]);
});

test('return() on an iterator that never started closes the request', async () => {
  handler = endless;
  const { data } = await api().test.stream();
  await waitFor(() => requests.length === 1, 'the request');
  await data[Symbol.asyncIterator]().return();
  await waitFor(() => requests[0].closed, 'the server to see the request closed');
});
