// A plain Node.js SSE bridge for streaming.v1.Streaming/Ping on @grpc/grpc-js:
// the baseline that bench/run measures gravity-bridge against
// (bench/README.md has the targets). It is what a team
// would write in an afternoon, nothing tuned:
//
//   GET /api/streaming/ping?to=..&count=..&interval_ms=..&fail_code=..
//     -> Streaming/Ping on the backend (one @grpc/grpc-js client, so one HTTP/2
//        connection shared by all calls, like gravity-bridge's one channel)
//     -> 200, text/event-stream; per message
//          "id: <seq>\ndata: <JSON.stringify(message)>\n\n"
//        (int64 as string, default-valued fields omitted: proto3 JSON), then
//          "event: end\ndata: {"code":N,"message":".."}\n\n"
//        and the response ends (chunked HTTP/1.1, one res.write per event).
//   A `Last-Event-ID` request header is passed on as `last-event-id` metadata.
//   Client disconnect -> call.cancel().
//   Backpressure: when res.write() returns false (the socket's buffer is over
//   its high-water mark) the gRPC call stream is paused, and resumed on the
//   response's 'drain'; a paused grpc-js stream stops asking for messages, so
//   HTTP/2 flow control then holds the backend back.
//
// Usage: node bridge.mjs [--listen=127.0.0.1:0] [--backend=127.0.0.1:50051]
//   (or env LISTEN / BACKEND). Prints
//   "node-bridge listening on http://127.0.0.1:PORT" once it accepts.
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const here = path.dirname(fileURLToPath(import.meta.url));

function flag(name, env, fallback) {
  const prefix = `--${name}=`;
  const arg = process.argv.slice(2).find((a) => a.startsWith(prefix));
  if (arg) return arg.slice(prefix.length);
  return process.env[env] || fallback;
}

const listen = flag('listen', 'LISTEN', '127.0.0.1:0');
const backend = flag('backend', 'BACKEND', '127.0.0.1:50051');
const protoRoot = flag('proto_root', 'PROTO_ROOT', path.resolve(here, '../../proto'));

const definition = protoLoader.loadSync('streaming/v1/streaming.proto', {
  includeDirs: [protoRoot, '/usr/include'],
  longs: String, // int64 as a string, as in proto3 JSON
  enums: String,
  defaults: false, // proto3 JSON leaves out fields with default values
  oneofs: true,
});
const proto = grpc.loadPackageDefinition(definition);
const client = new proto.streaming.v1.Streaming(backend, grpc.credentials.createInsecure());

function intParam(params, name) {
  const v = params.get(name);
  if (v === null || v === '') return 0;
  if (!/^-?\d+$/.test(v)) throw new Error(`${name} must be an integer`);
  return Number(v);
}

function handlePing(req, res, url) {
  let request;
  try {
    request = {
      to: url.searchParams.get('to') || '',
      count: intParam(url.searchParams, 'count'),
      intervalMs: intParam(url.searchParams, 'interval_ms'),
      failCode: intParam(url.searchParams, 'fail_code'),
    };
  } catch (e) {
    res.writeHead(400, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ code: 3, message: e.message }));
    return;
  }
  const metadata = new grpc.Metadata();
  const lastEventId = req.headers['last-event-id'];
  if (lastEventId) metadata.set('last-event-id', String(lastEventId));

  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache',
    Connection: 'keep-alive',
  });
  res.flushHeaders();

  const call = client.Ping(request, metadata);
  let finished = false; // the end event has been written
  let readEnded = false; // every message has been read from the call
  let status = null;

  const finish = () => {
    if (finished || !readEnded || status === null) return;
    finished = true;
    res.end(
      `event: end\ndata: ${JSON.stringify({ code: status.code, message: status.details || '' })}\n\n`,
    );
  };

  call.on('data', (msg) => {
    const ok = res.write(`id: ${msg.seq ?? '0'}\ndata: ${JSON.stringify(msg)}\n\n`);
    if (!ok) {
      call.pause();
      res.once('drain', () => call.resume());
    }
  });
  call.on('end', () => {
    readEnded = true;
    finish();
  });
  call.on('status', (s) => {
    status = s;
    finish();
  });
  call.on('error', (err) => {
    // grpc-js pushes the end of the read side, emits 'error' for a non-OK
    // status, then 'status'; 'end' follows once the buffered messages are
    // written, so the end event goes after them.
    if (status === null) status = { code: err.code ?? 2, details: err.details || err.message };
    finish();
  });
  res.on('close', () => {
    if (!finished) {
      finished = true;
      call.cancel();
    }
  });
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (req.method === 'GET' && url.pathname === '/api/streaming/ping') {
    handlePing(req, res, url);
    return;
  }
  res.writeHead(404, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ code: 5, message: `no route for ${req.method} ${url.pathname}` }));
});

const sep = listen.lastIndexOf(':');
const host = listen.slice(0, sep) || '127.0.0.1';
const port = Number(listen.slice(sep + 1) || 0);
server.listen(port, host, () => {
  const a = server.address();
  console.log(`node-bridge listening on http://${a.address}:${a.port} (backend ${backend})`);
});

const stop = () => {
  server.close();
  client.close();
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
