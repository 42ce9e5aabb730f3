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
// The handler, the client and the flags are in ping_bridge.mjs, shared with
// h2.mjs (the same bridge on node:http2 over TLS).
//
// Usage: node bridge.mjs [--listen=127.0.0.1:0] [--backend=127.0.0.1:50051]
//   (or env LISTEN / BACKEND). Prints
//   "node-bridge listening on http://127.0.0.1:PORT" once it accepts.
import http from 'node:http';
import { backendClient, flag, requestHandler, serve } from './ping_bridge.mjs';

const listen = flag('listen', 'LISTEN', '127.0.0.1:0');
const backend = flag('backend', 'BACKEND', '127.0.0.1:50051');
const protoRoot = flag('proto_root', 'PROTO_ROOT', undefined);

const client = backendClient(backend, protoRoot);
serve(http.createServer(requestHandler(client)), {
  listen,
  name: 'node-bridge',
  scheme: 'http',
  backend,
  client,
});
