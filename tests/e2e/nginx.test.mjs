// docs/bridge.md's deployment, end to end: EventSource (npm eventsource@4) ->
// nginx (Debian's, with docs/bridge.md's proxy settings) -> gravity-bridge ->
// streaming-server. Proves that events pass nginx unbuffered, and that a
// backend killed and restarted mid-stream costs the browser nothing: it
// reconnects with Last-Event-ID and gets every event exactly once.
import { EventSource } from 'eventsource';
import {
  check,
  checkEqual,
  flags,
  freeLoopbackPort,
  run,
  sleep,
  startBridge,
  startNginx,
  startProcess,
  withTimeout,
} from './harness.mjs';

const args = flags(['server', 'bridge']);

// Collects a stream's events until `end` (or until `timeoutMs`), with arrival times.
function collect(url, { onEvent } = {}) {
  return withTimeout(
    new Promise((resolve) => {
      const started = Date.now();
      const es = new EventSource(url);
      const result = { messages: [], end: null, errors: 0, openedAt: null };
      es.addEventListener('open', () => (result.openedAt ??= Date.now() - started));
      es.addEventListener('message', (e) => {
        result.messages.push({ id: e.lastEventId, data: JSON.parse(e.data), at: Date.now() - started });
        onEvent?.(e);
      });
      es.addEventListener('end', (e) => {
        result.end = { data: JSON.parse(e.data), at: Date.now() - started };
        es.close();
        resolve(result);
      });
      es.addEventListener('error', () => result.errors++);  // reconnects by itself
    }),
    20000,
    `EventSource ${url}`,
  );
}

run(async () => {
  const serverPort = await freeLoopbackPort();
  const serverArgs = [`--listen=127.0.0.1:${serverPort}`, '--drain=1s'];
  const ready = /^streaming-server listening on (\S+:\d+)\s*$/;
  let server = await startProcess('streaming-server', args.server, serverArgs, ready);
  const bridge = await startBridge(args.bridge, `127.0.0.1:${serverPort}`, ['--retry=500ms']);
  const front = (await startNginx([bridge.url.replace(/^http:\/\//, '')])).url;

  // 1. Unbuffered: each event arrives when it is sent, not when the stream ends.
  const paced = await collect(`${front}/api/streaming/ping?to=nginx&count=3&interval_ms=400`);
  checkEqual('through nginx: ids 1,2,3', paced.messages.map((m) => m.id), ['1', '2', '3']);
  check('through nginx: end with code 0', paced.end?.data?.code === 0, JSON.stringify(paced.end));
  const first = paced.messages[0]?.at ?? Infinity;
  check(
    'through nginx: the first event arrives long before the end (no buffering)',
    first + 600 < (paced.end?.at ?? 0),
    `first at ${first} ms, end at ${paced.end?.at} ms`,
  );

  // 2. Kill the backend after event 2, start it again on the same port: the
  //    browser resumes from Last-Event-ID and sees every event exactly once.
  let killed = false;
  const resumed = collect(`${front}/api/streaming/ping?to=nginx&count=6&interval_ms=200`, {
    onEvent: (e) => {
      if (e.lastEventId === '2' && !killed) {
        killed = true;
        server.kill('SIGKILL');
      }
    },
  });
  const deadline = Date.now() + 10000;
  while (!killed && Date.now() < deadline) await sleep(20);
  check('backend killed after event 2', killed);
  await sleep(300);
  server = await startProcess('streaming-server (restarted)', args.server, serverArgs, ready);
  const result = await resumed;
  checkEqual(
    'after the restart: every event exactly once, in order',
    result.messages.map((m) => m.id),
    ['1', '2', '3', '4', '5', '6'],
  );
  check('after the restart: EventSource had to reconnect', result.errors >= 1, `${result.errors} errors`);
  check('after the restart: end with code 0', result.end?.data?.code === 0, JSON.stringify(result.end));
});
