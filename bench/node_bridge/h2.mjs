// bridge.mjs over HTTP/2: the same plain Node.js SSE bridge (the same
// request handler and @grpc/grpc-js client, from ping_bridge.mjs), served by
// node:http2's createSecureServer (TLS, ALPN h2 only: allowHTTP1 false)
// through its request/response compatibility API, with Node's default HTTP/2
// settings. bench/run's T6 measures gravity-bridge's HTTP/2 against it. What
// a team would write in an afternoon to move bridge.mjs to HTTP/2:
//
//   GET /api/streaming/ping?to=..&count=..&interval_ms=..&fail_code=..
//     -> 200, text/event-stream, one res.write (DATA frame) per event, then
//        the end event and END_STREAM; bridge.mjs has the details.
//
// Usage: node h2.mjs --tls_cert=PEM --tls_key=PEM [--listen=127.0.0.1:0]
//   [--backend=127.0.0.1:50051] (or env LISTEN / BACKEND / TLS_CERT / TLS_KEY).
//   Prints "node-h2-bridge listening on https://127.0.0.1:PORT" once it accepts.
import fs from 'node:fs';
import http2 from 'node:http2';
import { backendClient, flag, requestHandler, serve } from './ping_bridge.mjs';

const listen = flag('listen', 'LISTEN', '127.0.0.1:0');
const backend = flag('backend', 'BACKEND', '127.0.0.1:50051');
const protoRoot = flag('proto_root', 'PROTO_ROOT', undefined);
const certFile = flag('tls_cert', 'TLS_CERT', '');
const keyFile = flag('tls_key', 'TLS_KEY', '');
if (!certFile || !keyFile) {
  console.error('h2.mjs: --tls_cert and --tls_key are required');
  process.exit(2);
}

const client = backendClient(backend, protoRoot);
const server = http2.createSecureServer(
  { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile), allowHTTP1: false },
  requestHandler(client),
);
serve(server, { listen, name: 'node-h2-bridge', scheme: 'https', backend, client });
