// Our C++ streaming-server against an independent gRPC implementation:
// @grpc/grpc-js with the .proto loaded at run time by @grpc/proto-loader.
//
//   node grpc_js_client.test.mjs --server=bazel-bin/examples/streaming/streaming-server
import path from 'node:path';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { REPO_ROOT, check, checkEqual, flags, onCleanup, randomToken, run, startServer, withTimeout } from './harness.mjs';

const args = flags(['server']);

// Runs one server-streaming call to its end; resolves to { messages, status }
// (status.code 0 is OK). Never rejects on a gRPC error: that is a status.
function collect(call) {
  return withTimeout(
    new Promise((resolve) => {
      const messages = [];
      call.on('data', (message) => messages.push(message));
      call.on('error', () => {}); // reported by 'status' too
      call.on('status', (status) => resolve({ messages, status }));
    }),
    10000,
    'stream to end',
  );
}

const deadline = () => ({ deadline: Date.now() + 10000 });

run(async () => {
  const token = randomToken();
  const server = await startServer(args.server, { adminToken: token });

  const definition = protoLoader.loadSync('streaming/v1/streaming.proto', {
    includeDirs: [path.join(REPO_ROOT, 'proto'), '/usr/include'],
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
  });
  const { Streaming } = grpc.loadPackageDefinition(definition).streaming.v1;
  const client = new Streaming(server.address, grpc.credentials.createInsecure());
  onCleanup(() => client.close());

  // Ping: three messages, seq 1..3, then OK.
  {
    const { messages, status } = await collect(
      client.Ping({ to: 'node', count: 3, interval_ms: 20 }, new grpc.Metadata(), deadline()),
    );
    checkEqual('Ping count=3: seq 1..3', messages.map((m) => m.seq), [1, 2, 3]);
    check(
      'Ping count=3: every message is "Sending ping to node"',
      messages.length === 3 && messages.every((m) => m.message === 'Sending ping to node'),
      JSON.stringify(messages),
    );
    checkEqual('Ping count=3: status OK', status.code, grpc.status.OK);
  }

  // Ping with fail_code 9: the three messages, then FAILED_PRECONDITION.
  {
    const { messages, status } = await collect(
      client.Ping({ to: 'node', count: 3, interval_ms: 20, fail_code: 9 }, new grpc.Metadata(), deadline()),
    );
    checkEqual('Ping fail_code=9: seq 1..3 before the error', messages.map((m) => m.seq), [1, 2, 3]);
    checkEqual('Ping fail_code=9: status 9 (FAILED_PRECONDITION)', status.code, 9);
    check('Ping fail_code=9: status has a message', status.details.length > 0, JSON.stringify(status.details));
  }

  // StreamUsers is guarded: no token, a wrong token, the right token.
  {
    const { messages, status } = await collect(
      client.StreamUsers({ count: 3, interval_ms: 10 }, new grpc.Metadata(), deadline()),
    );
    checkEqual('StreamUsers without token: status 16 (UNAUTHENTICATED)', status.code, grpc.status.UNAUTHENTICATED);
    checkEqual('StreamUsers without token: no messages', messages.length, 0);
  }
  {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', 'Bearer not-the-token');
    const { messages, status } = await collect(client.StreamUsers({ count: 3, interval_ms: 10 }, metadata, deadline()));
    checkEqual('StreamUsers with a wrong token: status 16', status.code, grpc.status.UNAUTHENTICATED);
    checkEqual('StreamUsers with a wrong token: no messages', messages.length, 0);
  }
  {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${token}`);
    const { messages, status } = await collect(client.StreamUsers({ count: 4, interval_ms: 10 }, metadata, deadline()));
    checkEqual('StreamUsers with the token: 4 users', messages.length, 4);
    checkEqual('StreamUsers with the token: 4 distinct ids', new Set(messages.map((m) => m.id)).size, 4);
    check(
      'StreamUsers with the token: ids are non-empty',
      messages.every((m) => typeof m.id === 'string' && m.id.length > 0),
      JSON.stringify(messages),
    );
    checkEqual('StreamUsers with the token: status OK', status.code, grpc.status.OK);
  }

  // Resume: metadata last-event-id 2 continues at seq 3.
  {
    const metadata = new grpc.Metadata();
    metadata.set('last-event-id', '2');
    const { messages, status } = await collect(
      client.Ping({ to: 'node', count: 5, interval_ms: 20 }, metadata, deadline()),
    );
    checkEqual('Ping count=5 with last-event-id 2: seq 3,4,5', messages.map((m) => m.seq), [3, 4, 5]);
    checkEqual('Ping count=5 with last-event-id 2: status OK', status.code, grpc.status.OK);
  }
});
