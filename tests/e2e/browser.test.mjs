// gravity-bridge in a real browser: Debian's Chromium (driven by
// playwright-core) runs the browser's own EventSource on a page served from
// ANOTHER origin, so CORS with credentials is part of what is tested.
//
//   node browser.test.mjs --server=bazel-bin/examples/streaming/streaming-server \
//                         --bridge=bazel-bin/bridge/gravity-bridge [--chromium=/usr/bin/chromium]
import http from 'node:http';
import { chromium } from 'playwright-core';
import {
  check,
  checkEqual,
  flags,
  launchChromium,
  metric,
  onCleanup,
  randomToken,
  run,
  startBridge,
  startServer,
  waitForMetric,
  withTimeout,
} from './harness.mjs';

const args = flags(['server', 'bridge']);

// The page: two helpers the test calls with page.evaluate(). Both use the
// browser's EventSource with credentials, cross-origin to the bridge.
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>gravity e2e</title></head>
<body><pre id="log"></pre><script>
const log = (line) => { document.getElementById('log').textContent += line + '\\n'; console.log(line); };

// Records messages (data + lastEventId) and the end event, then closes.
window.readStream = (url, timeoutMs) => new Promise((resolve) => {
  const result = { messages: [], end: null, errors: [] };
  const es = new EventSource(url, { withCredentials: true });
  const finish = (why) => { clearTimeout(timer); es.close(); result.why = why; resolve(result); };
  const timer = setTimeout(() => finish('timeout'), timeoutMs);
  es.onmessage = (e) => { log('message ' + e.lastEventId + ' ' + e.data); result.messages.push({ data: e.data, lastEventId: e.lastEventId }); };
  es.addEventListener('end', (e) => { log('end ' + e.data); result.end = e.data; finish('end'); });
  es.onerror = () => {
    log('error, readyState ' + es.readyState);
    result.errors.push(es.readyState);
    if (es.readyState === EventSource.CLOSED) finish('failed');
  };
});

// Opens url and watches it for watchMs: every error event (with readyState),
// and when readyState first became CLOSED (2).
window.watchFailure = (url, watchMs) => new Promise((resolve) => {
  const t0 = performance.now();
  const result = { messages: [], errors: [], closedAfterMs: null };
  const es = new EventSource(url, { withCredentials: true });
  es.onmessage = (e) => result.messages.push(e.data);
  es.onerror = () => {
    log('error, readyState ' + es.readyState);
    result.errors.push({ atMs: Math.round(performance.now() - t0), readyState: es.readyState });
  };
  const poll = setInterval(() => {
    if (result.closedAfterMs === null && es.readyState === EventSource.CLOSED) {
      result.closedAfterMs = Math.round(performance.now() - t0);
    }
  }, 10);
  setTimeout(() => {
    clearInterval(poll);
    result.readyStateAtEnd = es.readyState;
    es.close();
    resolve(result);
  }, watchMs);
});
</script></body></html>`;

const parse = (text) => {
  try {
    return JSON.parse(text);
  } catch {
    return { unparsable: text };
  }
};

// A plain Node HTTP server for the page, on its own origin.
async function startPageServer() {
  const server = http.createServer((req, res) => {
    if (req.url === '/' || req.url.startsWith('/?')) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(PAGE);
    } else if (req.url === '/favicon.ico') {
      res.writeHead(204).end();
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  onCleanup(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${server.address().port}`;
}

run(async () => {
  // The page's origin is http://127.0.0.1:<port> (not localhost): exactly
  // that string is the bridge's CORS allowlist.
  const origin = await startPageServer();
  const server = await startServer(args.server, { adminToken: randomToken() });
  const bridge = await startBridge(args.bridge, server.address, [`--cors_origin=${origin}`]);
  const base = bridge.url;
  check(`page origin ${origin} differs from bridge origin ${base}`, new URL(origin).origin !== new URL(base).origin);

  const { page } = await launchChromium(chromium, { executablePath: args.chromium });
  // What went over the wire to the bridge, as the browser saw it.
  const requests = [];
  const responses = [];
  page.on('request', (r) => r.url().startsWith(base) && requests.push(r.url()));
  page.on('response', async (r) => {
    if (!r.url().startsWith(base)) return;
    const entry = { url: r.url(), status: r.status(), headers: r.headers() };
    responses.push(entry);
    try {
      entry.headers = await r.allHeaders();
    } catch {
      // keep the provisional headers
    }
  });

  await page.goto(`${origin}/`, { waitUntil: 'load' });
  check('page loaded from its own origin', (await page.evaluate(() => location.origin)) === origin);

  // 1. Ping: three messages with seq 1..3, then end code 0.
  {
    const url = `${base}/api/streaming/ping?to=browser&count=3&interval_ms=50`;
    const r = await withTimeout(page.evaluate(([u]) => window.readStream(u, 10000), [url]), 15000, 'readStream');
    checkEqual('ping in Chromium: ended by the end event', r.why, 'end');
    checkEqual('ping in Chromium: no error event', r.errors, []);
    checkEqual('ping in Chromium: lastEventId 1,2,3', r.messages.map((m) => m.lastEventId), ['1', '2', '3']);
    checkEqual(
      'ping in Chromium: messages {message, seq} with seq 1..3',
      r.messages.map((m) => parse(m.data)),
      [1, 2, 3].map((seq) => ({ message: 'Sending ping to browser', seq: String(seq) })),
    );
    checkEqual('ping in Chromium: end code 0', r.end && parse(r.end).code, 0);
    const response = responses.find((x) => x.url === url);
    checkEqual('ping in Chromium: HTTP 200', response?.status, 200);
    checkEqual('ping in Chromium: Access-Control-Allow-Origin is the page origin', response?.headers['access-control-allow-origin'], origin);
    checkEqual('ping in Chromium: Access-Control-Allow-Credentials true', response?.headers['access-control-allow-credentials'], 'true');
  }

  // 2. A guarded stream without credentials: 401, EventSource fails for good
  //    (readyState CLOSED, one error event), and the bridge saw one request.
  {
    await waitForMetric(base, 'gravity_bridge_active_streams', 0);
    const before = await metric(base, 'gravity_bridge_streams_total');
    const url = `${base}/streaming.v1.Streaming/StreamUsers`;
    const r = await withTimeout(page.evaluate(([u]) => window.watchFailure(u, 2500), [url]), 10000, 'watchFailure');
    const after = await metric(base, 'gravity_bridge_streams_total');
    check(
      'StreamUsers without credentials: readyState CLOSED (2) within 2 s',
      r.closedAfterMs !== null && r.closedAfterMs <= 2000,
      `closedAfterMs ${r.closedAfterMs}`,
    );
    checkEqual('StreamUsers without credentials: still CLOSED after 2.5 s', r.readyStateAtEnd, 2);
    checkEqual(
      'StreamUsers without credentials: exactly one error event, with readyState CLOSED',
      r.errors.map((e) => e.readyState),
      [2],
    );
    checkEqual('StreamUsers without credentials: no messages', r.messages.length, 0);
    checkEqual('StreamUsers without credentials: the bridge saw one stream request (streams_total +1)', after - before, 1);
    checkEqual('StreamUsers without credentials: the browser sent one request', requests.filter((u) => u === url).length, 1);
    const response = responses.find((x) => x.url === url);
    checkEqual('StreamUsers without credentials: HTTP 401', response?.status, 401);
    checkEqual(
      'StreamUsers without credentials: the 401 carries CORS headers for the page origin',
      response?.headers['access-control-allow-origin'],
      origin,
    );
  }

  const active = await waitForMetric(base, 'gravity_bridge_active_streams', 0);
  checkEqual('bridge /metrics: gravity_bridge_active_streams 0 at the end', active, 0);
});
