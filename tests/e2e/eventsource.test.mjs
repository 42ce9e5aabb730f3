// gravity-bridge's SSE wire contract as seen by an independent SSE client,
// the `eventsource` npm package (WHATWG EventSource for Node), with the bridge
// in front of the C++ streaming-server.
//
//   node eventsource.test.mjs --server=bazel-bin/examples/streaming/streaming-server \
//                             --bridge=bazel-bin/bridge/gravity-bridge
import { EventSource } from 'eventsource';
import {
  check,
  checkEqual,
  flags,
  metric,
  randomToken,
  run,
  startBridge,
  startServer,
  waitForMetric,
  withTimeout,
} from './harness.mjs';

const args = flags(['server', 'bridge']);

// Opens `url` and records every message and the `end` event; closes the
// EventSource on `end` (so it does not reconnect) or when it fails for good
// (readyState CLOSED after an error). Resolves to
// { messages: [{type, data, lastEventId}], end: {data}|null, errors: [{code, message}], readyState }.
function stream(url) {
  return withTimeout(
    new Promise((resolve) => {
      const es = new EventSource(url);
      const result = { messages: [], end: null, errors: [], readyState: null };
      const done = () => {
        result.readyState = es.readyState;
        es.close();
        resolve(result);
      };
      es.addEventListener('message', (e) =>
        result.messages.push({ type: e.type, data: e.data, lastEventId: e.lastEventId }),
      );
      es.addEventListener('end', (e) => {
        result.end = { data: e.data, lastEventId: e.lastEventId };
        done();
      });
      es.addEventListener('error', (e) => {
        result.errors.push({ code: e.code, message: e.message });
        // CONNECTING means it will reconnect: a cut stream. Stop there too, a
        // test stream must end with `end`, not by being cut.
        done();
      });
    }),
    10000,
    `EventSource ${url}`,
  );
}

const parse = (text) => {
  try {
    return JSON.parse(text);
  } catch {
    return { unparsable: text };
  }
};

run(async () => {
  const token = randomToken();
  const server = await startServer(args.server, { adminToken: token });
  const bridge = await startBridge(args.bridge, server.address);
  const base = bridge.url;

  // The google.api.http route: three messages with ids 1..3, then end code 0.
  {
    const r = await stream(`${base}/api/streaming/ping?to=es&count=3&interval_ms=20`);
    checkEqual('ping via /api/streaming/ping: no error event', r.errors, []);
    checkEqual('ping: 3 message events with lastEventId 1,2,3', r.messages.map((m) => m.lastEventId), ['1', '2', '3']);
    checkEqual(
      'ping: data is proto3 JSON {message, seq} (int64 seq as a string)',
      r.messages.map((m) => parse(m.data)),
      [1, 2, 3].map((seq) => ({ message: 'Sending ping to es', seq: String(seq) })),
    );
    const end = r.end && parse(r.end.data);
    check('ping: an `end` event follows the messages', r.end !== null);
    checkEqual('ping: end data has code 0', end?.code, 0);
    check('ping: end data is a Status ({code, message})', end && typeof end.message === 'string', r.end?.data);
  }

  // The gRPC-path route with fail_code: the messages, then end with code 9.
  {
    const r = await stream(`${base}/streaming.v1.Streaming/Ping?to=es&count=3&interval_ms=20&fail_code=9`);
    checkEqual('ping fail_code=9 via /streaming.v1.Streaming/Ping: no error event', r.errors, []);
    checkEqual('ping fail_code=9: lastEventId 1,2,3', r.messages.map((m) => m.lastEventId), ['1', '2', '3']);
    const end = r.end && parse(r.end.data);
    checkEqual('ping fail_code=9: end data has code 9', end?.code, 9);
    check('ping fail_code=9: end data has a message', end?.message?.length > 0, r.end?.data);
  }

  // Resume: ?lastEventId=1 (for clients that cannot set Last-Event-ID) continues at 2.
  {
    const r = await stream(`${base}/api/streaming/ping?to=es&count=3&interval_ms=20&lastEventId=1`);
    checkEqual('ping ?lastEventId=1: lastEventId 2,3', r.messages.map((m) => m.lastEventId), ['2', '3']);
    checkEqual('ping ?lastEventId=1: end code 0', r.end && parse(r.end.data).code, 0);
  }

  // The guarded method: 401 without credentials (EventSource gives up), and
  // a stream with ?access_token=.
  {
    const r = await stream(`${base}/streaming.v1.Streaming/StreamUsers?count=3&interval_ms=10`);
    checkEqual('StreamUsers without token: one error event with HTTP 401', r.errors.map((e) => e.code), [401]);
    checkEqual('StreamUsers without token: EventSource CLOSED (no reconnect)', r.readyState, EventSource.CLOSED);
    checkEqual('StreamUsers without token: no messages', r.messages.length, 0);
  }
  {
    const r = await stream(
      `${base}/streaming.v1.Streaming/StreamUsers?count=3&interval_ms=10&access_token=${encodeURIComponent(token)}`,
    );
    checkEqual('StreamUsers ?access_token=: no error event', r.errors, []);
    const ids = r.messages.map((m) => parse(m.data).id);
    checkEqual('StreamUsers ?access_token=: 3 distinct user ids', new Set(ids.filter(Boolean)).size, 3);
    checkEqual('StreamUsers ?access_token=: end code 0', r.end && parse(r.end.data).code, 0);
  }

  // Every stream above has ended: the bridge holds none.
  const active = await waitForMetric(base, 'gravity_bridge_active_streams', 0);
  checkEqual('bridge /metrics: gravity_bridge_active_streams 0 at the end', active, 0);
  const total = await metric(base, 'gravity_bridge_streams_total');
  checkEqual('bridge /metrics: gravity_bridge_streams_total counts the 5 requests', total, 5);
});
