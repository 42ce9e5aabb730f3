// A browser straight to gravity-bridge over its own TLS + HTTP/2 listener, no
// proxy: Debian's Chromium (playwright-core, a fresh profile) trusts the
// run's self-signed certificate by its SPKI hash
// (--ignore-certificate-errors-spki-list, not a blanket ignore), loads the
// page the bridge serves itself (--index_html) and opens 100 EventSources at
// once on that one origin: over h2 all 100 stream at the same time and each
// gets every event and its `end`. Then the contrast that docs/bridge.md
// describes: the same page from a cleartext bridge, over HTTP/1.1, where
// Chromium holds at most 6 connections per host, so at most 6 streams have
// had an event 4 s in.
//
//   node http2_browser.test.mjs --server=bazel-bin/examples/streaming/streaming-server \
//                               --bridge=bazel-bin/bridge/gravity-bridge [--chromium=/usr/bin/chromium]
//   ($OPENSSL, default openssl on PATH)
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import {
  check,
  checkEqual,
  flags,
  launchChromium,
  onCleanup,
  openStreamsPage,
  run,
  selfSignedCert,
  sleep,
  startBridge,
  startServer,
  waitForMetric,
  withTimeout,
} from './harness.mjs';

const args = flags(['server', 'bridge']);

const STREAMS = 100;

// The page: harness.mjs's openStreams(urls, sampleMs, waitAll, timeoutMs).
const PAGE = openStreamsPage('gravity h2 e2e');

// n Ping streams of `count` events `intervalMs` apart, the i-th to "i".
const pings = (n, count, intervalMs) =>
  Array.from({ length: n }, (_, i) => `/api/streaming/ping?to=${i}&count=${count}&interval_ms=${intervalMs}`);

// GET over node:https trusting `ca`: the body.
function httpsText(url, ca) {
  return withTimeout(
    new Promise((resolve, reject) => {
      https
        .get(url, { ca, agent: false }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve(body));
        })
        .on('error', reject);
    }),
    5000,
    `GET ${url}`,
  );
}

function sample(text, series) {
  const escaped = series.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

run(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gravity-http2-browser-'));
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cert = await selfSignedCert(dir);
  const pageFile = path.join(dir, 'index.html');
  fs.writeFileSync(pageFile, PAGE);
  const ca = fs.readFileSync(cert.cert);

  const server = await startServer(args.server);
  const tlsBridge = await startBridge(args.bridge, server.address, [
    `--tls_cert=${cert.cert}`,
    `--tls_key=${cert.key}`,
    `--index_html=${pageFile}`,
    '--access_log=-',
  ]);
  const plainBridge = await startBridge(args.bridge, server.address, [`--index_html=${pageFile}`]);
  check(`TLS bridge prints an https:// URL (${tlsBridge.url})`, tlsBridge.url.startsWith('https://'));

  const { page } = await launchChromium(chromium, {
    executablePath: args.chromium,
    profilePrefix: 'gravity-http2-chromium-',
    spki: cert.cert,
  });

  // --- TLS + HTTP/2: 100 streams at once --------------------------------------
  {
    const response = await page.goto(`${tlsBridge.url}/`, { waitUntil: 'load' });
    checkEqual('Chromium loaded the page from the TLS bridge (certificate trusted by its SPKI hash): 200', response?.status(), 200);
    const security = await response?.securityDetails();
    checkEqual('Chromium: the page came over TLS 1.3', security?.protocol, 'TLS 1.3');
    const h2Before = sample(await httpsText(`${tlsBridge.url}/metrics`, ca), 'gravity_bridge_connections_total{protocol="h2"}');
    const r = await withTimeout(
      page.evaluate(([urls]) => window.openStreams(urls, 500, true, 15000), [pings(STREAMS, 3, 300)]),
      20000,
      'openStreams over h2',
    );
    checkEqual('Chromium to the TLS bridge: the page came over HTTP/2 (nextHopProtocol h2)', r.protocol, 'h2');
    checkEqual(`over HTTP/2: all ${STREAMS} EventSources ended within 15 s`, r.why, 'all ended');
    const bad = r.streams.filter(
      (s) =>
        s.end !== 0 ||
        s.errors !== 0 ||
        JSON.stringify(s.seqs) !== '[1,2,3]' ||
        JSON.stringify(s.ids) !== '["1","2","3"]' ||
        s.messages.some((m) => m !== `Sending ping to ${s.to}`),
    );
    check(
      `over HTTP/2: each of the ${STREAMS} EventSources got ids 1,2,3 (seq 1..3, its own "to"), then end code 0, no error event`,
      bad.length === 0,
      `${bad.length} bad, e.g. ${JSON.stringify(bad.slice(0, 3))}`,
    );
    const firstEnd = Math.min(...r.streams.map((s) => s.endAt ?? Infinity));
    const concurrent = r.streams.filter((s) => s.firstAt !== null && s.firstAt < firstEnd).length;
    checkEqual(
      `over HTTP/2: all ${STREAMS} streams had their first event before any stream ended (they ran at once)`,
      concurrent,
      STREAMS,
    );
    // What the bridge saw: an access-log line per stream, each over h2.
    let lines = [];
    const deadline = Date.now() + 3000;
    for (;;) {
      lines = tlsBridge
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l))
        .filter((l) => l.route === '/streaming.v1.Streaming/Ping');
      if (lines.length >= STREAMS || Date.now() > deadline) break;
      await sleep(50);
    }
    checkEqual(
      `over HTTP/2: the bridge's access log has ${STREAMS} Ping lines, all "protocol":"h2"`,
      [lines.length, lines.filter((l) => l.protocol === 'h2').length],
      [STREAMS, STREAMS],
    );
    // /metrics is read over HTTP/1.1 (node:https), so every h2 connection is Chromium's.
    const metricsAfter = await httpsText(`${tlsBridge.url}/metrics`, ca);
    const h2After = sample(metricsAfter, 'gravity_bridge_connections_total{protocol="h2"}');
    // Chromium accepts gzip: every EventSource was compressed, and decoded.
    check(
      `Chromium's ${STREAMS} EventSources were gzip-compressed (gravity_bridge_streams_compressed_total)`,
      sample(metricsAfter, 'gravity_bridge_streams_compressed_total') >= STREAMS,
      String(sample(metricsAfter, 'gravity_bridge_streams_compressed_total')),
    );
    checkEqual(
      `over HTTP/2: the ${STREAMS} EventSources opened no new connection (connections_total{protocol="h2"} unchanged)`,
      h2After - h2Before,
      0,
    );
    console.log(
      `# browser h2: ${concurrent} of ${STREAMS} streams at once, first events at ` +
        `${Math.min(...r.streams.map((s) => s.firstAt))}-${Math.max(...r.streams.map((s) => s.firstAt))} ms, ` +
        `all ended by ${Math.max(...r.streams.map((s) => s.endAt ?? 0))} ms; ` +
        `h2 connections from Chromium in all: ${h2After}`,
    );
  }

  // --- Cleartext HTTP/1.1: at most 6 at a time -----------------------------------
  // Streams of 5 s (50 events, 100 ms apart), sampled 4 s in: none has ended,
  // so no connection has been freed for a waiting stream yet.
  {
    const response = await page.goto(`${plainBridge.url}/`, { waitUntil: 'load' });
    checkEqual('Chromium loaded the page from the cleartext bridge: 200', response?.status(), 200);
    const r = await withTimeout(
      page.evaluate(([urls]) => window.openStreams(urls, 4000, false, 15000), [pings(STREAMS, 50, 100)]),
      20000,
      'openStreams over HTTP/1.1',
    );
    checkEqual('Chromium to the cleartext bridge: the page came over HTTP/1.1', r.protocol, 'http/1.1');
    checkEqual('over HTTP/1.1: sampled 4 s in, while no stream had ended yet', [r.why, r.sample?.ended], ['sampled', 0]);
    check(
      `over HTTP/1.1: 1 to 6 of ${STREAMS} streams had events 4 s in (Chromium's 6 connections per host)`,
      r.sample?.started >= 1 && r.sample?.started <= 6,
      `${r.sample?.started} had events`,
    );
    console.log(`# browser http/1.1: ${r.sample?.started} of ${STREAMS} streams had events 4 s in`);
    checkEqual(
      'cleartext bridge: gravity_bridge_active_streams back to 0 after the page closed its EventSources',
      await waitForMetric(plainBridge.url, 'gravity_bridge_active_streams', 0, 5000),
      0,
    );
  }
});
