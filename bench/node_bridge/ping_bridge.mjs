// What bridge.mjs (HTTP/1.1) and h2.mjs (HTTP/2 over TLS) share: the flags,
// the one @grpc/grpc-js client, the request handler (written against the
// request/response API that node:http and node:http2's compatibility layer
// both offer), listening and stopping. See bridge.mjs for what the handler
// does; nothing here is tuned.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const here = path.dirname(fileURLToPath(import.meta.url));

export function flag(name, env, fallback) {
  const prefix = `--${name}=`;
  const arg = process.argv.slice(2).find((a) => a.startsWith(prefix));
  if (arg) return arg.slice(prefix.length);
  return process.env[env] || fallback;
}

// One client, so one HTTP/2 connection shared by all calls, like
// gravity-bridge's one channel.
export function backendClient(backend, protoRoot = path.resolve(here, '../../proto')) {
  const definition = protoLoader.loadSync('streaming/v1/streaming.proto', {
    includeDirs: [protoRoot, '/usr/include'],
    longs: String, // int64 as a string, as in proto3 JSON
    enums: String,
    defaults: false, // proto3 JSON leaves out fields with default values
    oneofs: true,
  });
  const proto = grpc.loadPackageDefinition(definition);
  return new proto.streaming.v1.Streaming(backend, grpc.credentials.createInsecure());
}

function intParam(params, name) {
  const v = params.get(name);
  if (v === null || v === '') return 0;
  if (!/^-?\d+$/.test(v)) throw new Error(`${name} must be an integer`);
  return Number(v);
}

function handlePing(client, req, res, url) {
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

  const headers = { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' };
  // A connection-specific header, which HTTP/2 forbids.
  if (req.httpVersionMajor < 2) headers.Connection = 'keep-alive';
  res.writeHead(200, headers);
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

// The request listener of both servers.
export function requestHandler(client) {
  return (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/api/streaming/ping') {
      handlePing(client, req, res, url);
      return;
    }
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ code: 5, message: `no route for ${req.method} ${url.pathname}` }));
  };
}

// Listens on LISTEN (host:port), prints "<name> listening on <scheme>://host:port
// (backend ...)" once it accepts; SIGTERM / SIGINT close the server and the
// client and exit within a second.
export function serve(server, { listen, name, scheme, backend, client }) {
  const sep = listen.lastIndexOf(':');
  const host = listen.slice(0, sep) || '127.0.0.1';
  const port = Number(listen.slice(sep + 1) || 0);
  server.listen(port, host, () => {
    const a = server.address();
    console.log(`${name} listening on ${scheme}://${a.address}:${a.port} (backend ${backend})`);
  });
  const stop = () => {
    server.close();
    client.close();
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
