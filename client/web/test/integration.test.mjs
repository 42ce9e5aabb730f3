// @gravity/client in Node 20 against the real C++ streaming-server and
// gravity-bridge, both started here on loopback (tests/e2e/harness.mjs
// starts them and stops them at the end).
//
//   SERVER=bazel-bin/examples/streaming/streaming-server BRIDGE=bazel-bin/bridge/gravity-bridge \
//     node --test test/integration.test.mjs
//
// (or --server=... --bridge=... after the file name; ctest passes both).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createFileRegistry, fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { createApi, GravityError } from '../dist/index.js';
import { Streaming } from '../dist/gen/streaming/v1/streaming_pb.js';
import {
  flags,
  lowPort,
  metric,
  randomToken,
  runCleanups,
  sleep,
  startBridge,
  startProcess,
  waitForMetric,
  withTimeout,
} from '../../../tests/e2e/harness.mjs';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = flags(['server', 'bridge']);
const ACTIVE = 'gravity_bridge_active_streams';
const SERVER_READY = /^streaming-server listening on (\S+:\d+)\s*$/;

const adminToken = randomToken();
let serverArgs;
let server;
let bridge;
let api;

async function startBackend(name) {
  return startProcess(name, args.server, serverArgs, SERVER_READY);
}

before(async () => {
  // Below the ephemeral range (harness.mjs's lowPort()): the backend is
  // restarted on it.
  const port = await lowPort();
  serverArgs = [`--listen=127.0.0.1:${port}`, '--drain=1s'];
  process.env.GRAVITY_ADMIN_TOKEN = adminToken; // the server's default --admin_token
  server = await startBackend('streaming-server');
  bridge = await startBridge(args.bridge, `127.0.0.1:${port}`, ['--retry=200ms']);
  api = createApi({ baseUrl: bridge.url }, { streaming: Streaming });
});

after(async () => {
  await runCleanups();
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => runCleanups().finally(() => process.exit(1)));
}

async function collect(iterable) {
  const out = [];
  for await (const m of iterable) out.push(m);
  return out;
}

test('happy path: typed messages, seq as bigint, end code 0 ends the loop', async () => {
  const { data, error } = await api.streaming.ping({ to: 'node', count: 3, intervalMs: 20 });
  assert.equal(error, undefined);
  const messages = await withTimeout(collect(data), 10000, 'ping');
  assert.deepEqual(
    messages.map((m) => [m.seq, m.message]),
    [1n, 2n, 3n].map((seq) => [seq, 'Sending ping to node']),
  );
  assert.equal(typeof messages[0].seq, 'bigint');
  assert.equal(messages[0].$typeName, 'streaming.v1.PingReply');
  assert.equal(data.lastEventId, '3');
  assert.equal(data.reconnects, 0);
});

test('a request too long for a query goes as a POST with a JSON body', async () => {
  const to = 'x'.repeat(3000);
  const { data, error } = await api.streaming.ping({ to, count: 2, intervalMs: 10 });
  assert.equal(error, undefined);
  const messages = await withTimeout(collect(data), 10000, 'ping');
  assert.deepEqual(messages.map((m) => m.message), [`Sending ping to ${to}`, `Sending ping to ${to}`]);
});

test('guard: StreamUsers without a token is {error} code 16 and no data', async () => {
  const result = await api.streaming.streamUsers({ count: 2 });
  assert.equal(result.data, undefined);
  assert.ok(result.error instanceof GravityError);
  assert.equal(result.error.code, 16);
  assert.equal(result.error.httpStatus, 401);
  assert.match(result.error.message, /authorization/i);
});

test('a bearer token given as an option', async () => {
  const authed = createApi({ baseUrl: bridge.url, token: adminToken }, { streaming: Streaming });
  const { data, error } = await authed.streaming.streamUsers({ count: 2, intervalMs: 10 });
  assert.equal(error, undefined);
  const users = await withTimeout(collect(data), 10000, 'streamUsers');
  assert.equal(users.length, 2);
  assert.ok(users.every((u) => u.$typeName === 'streaming.v1.User' && u.id !== ''));
  const wrong = createApi({ baseUrl: bridge.url, token: () => 'wrong' }, { streaming: Streaming });
  const refused = await wrong.streaming.streamUsers({ count: 2 });
  assert.equal(refused.error?.code, 16);
});

test('an unknown route: 404 with code 5 (NOT_FOUND), as the wire contract says', async () => {
  // A service the backend does not have, from a descriptor built here.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gravity-client-it-'));
  let Missing;
  try {
    const out = path.join(dir, 'set.pb');
    execFileSync(process.env.PROTOC ?? 'protoc', ['-I.', '-I/usr/include', '--include_imports', `--descriptor_set_out=${out}`, 'client_test.proto'], {
      cwd: path.join(WEB, 'test/proto'),
    });
    Missing = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(out))).getService('gravity.test.v1.Test');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const missing = createApi({ baseUrl: bridge.url }, { test: Missing });
  const { data, error } = await missing.test.stream({ text: 'x' });
  assert.equal(data, undefined);
  assert.equal(error.httpStatus, 404);
  assert.equal(error.code, 5);
});

test('mid-stream error: 2 messages, then GravityError code 10 thrown from the loop', async () => {
  const { data, error } = await api.streaming.ping({ to: 'f', count: 2, intervalMs: 20, failCode: 10 });
  assert.equal(error, undefined);
  const seen = [];
  await withTimeout(
    assert.rejects(
      async () => {
        for await (const m of data) seen.push(m.seq);
      },
      (e) => e instanceof GravityError && e.code === 10,
    ),
    10000,
    'ping with fail_code',
  );
  assert.deepEqual(seen, [1n, 2n]);
});

test('abort: the signal throws CANCELLED and the bridge ends the stream (active_streams back to 0)', async () => {
  assert.equal(await waitForMetric(bridge.url, ACTIVE, 0), 0);
  const controller = new AbortController();
  const { data } = await api.streaming.ping({ to: 'a', count: 1000, intervalMs: 20 }, { signal: controller.signal });
  assert.equal(await metric(bridge.url, ACTIVE), 1);
  let n = 0;
  await withTimeout(
    assert.rejects(
      async () => {
        for await (const m of data) if (++n === 2) controller.abort();
      },
      (e) => e.code === 1,
    ),
    10000,
    'aborted loop',
  );
  assert.equal(await waitForMetric(bridge.url, ACTIVE, 0, 5000), 0);
});

test('break: the bridge ends the stream (active_streams back to 0)', async () => {
  const { data } = await api.streaming.ping({ to: 'b', count: 1000, intervalMs: 20 });
  assert.equal(await metric(bridge.url, ACTIVE), 1);
  let n = 0;
  for await (const m of data) if (++n === 2) break;
  assert.equal(await waitForMetric(bridge.url, ACTIVE, 0, 5000), 0);
});

test('resume: the backend SIGKILLed and restarted mid-stream; every seq exactly once', async () => {
  const reconnects = [];
  const { data, error } = await api.streaming.ping(
    { to: 'resume', count: 8, intervalMs: 150 },
    { onReconnect: (info) => reconnects.push(info) },
  );
  assert.equal(error, undefined);
  const seqs = [];
  let restarted;
  await withTimeout(
    (async () => {
      for await (const m of data) {
        seqs.push(m.seq);
        if (m.seq === 3n && !restarted) {
          server.kill('SIGKILL');
          restarted = sleep(300).then(async () => {
            server = await startBackend('streaming-server (restarted)');
          });
        }
      }
    })(),
    30000,
    'resumed ping',
  );
  await restarted;
  assert.deepEqual(seqs, [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]);
  assert.ok(reconnects.length >= 1, 'the client reconnected');
  assert.ok(reconnects.every((i) => i.lastEventId === '3'), JSON.stringify(reconnects.map((i) => i.lastEventId)));
  assert.equal(data.reconnects, reconnects.length);
});

// Unary calls need the bridge's unary support and the example's Echo method.
test('unary: Echo OK gives {data: EchoReply}', async () => {
  assert.equal(typeof api.streaming.echo, 'function', 'streaming.v1.Streaming/Echo in the generated code');
  const { data, error } = await api.streaming.echo({ text: 'hello, gravity' });
  assert.equal(error, undefined, error && String(error));
  assert.equal(data.$typeName, 'streaming.v1.EchoReply');
  assert.equal(data.text, 'hello, gravity');
});

test('unary: Echo with fail_code gives {error} with that code', async () => {
  assert.equal(typeof api.streaming.echo, 'function', 'streaming.v1.Streaming/Echo in the generated code');
  const { data, error } = await api.streaming.echo({ text: 'x', failCode: 9 });
  assert.equal(data, undefined);
  assert.ok(error instanceof GravityError);
  assert.equal(error.code, 9);
  const second = await api.streaming.echo({ text: 'y', failCode: 5 });
  assert.equal(second.error?.code, 5);
});
