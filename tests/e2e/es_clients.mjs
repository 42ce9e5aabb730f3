// EventSource clients (npm eventsource@4) that read Ping streams and check
// them as they go, for the fault and scale-out tests. Separate from
// harness.mjs, which client/web's tests import without this package.
import { EventSource } from 'eventsource';
import { check, onCleanup, withTimeout } from './harness.mjs';

export { EventSource };

const clients = new Set();
onCleanup(() => {
  for (const c of clients) c.es.close();
});

// A fetch for EventSource that counts `: keep-alive` comments in the bytes it
// passes on (EventSource itself never shows comments).
function countingFetch(client) {
  const needle = ': keep-alive';
  return async (url, init) => {
    const response = await fetch(url, init);
    if (!response.body) return response;
    const decoder = new TextDecoder();
    let carry = '';
    const counter = new TransformStream({
      transform(chunk, controller) {
        const text = carry + decoder.decode(chunk, { stream: true });
        for (let at = text.indexOf(needle); at !== -1; at = text.indexOf(needle, at + needle.length)) {
          client.keepalives++;
        }
        carry = text.slice(-(needle.length - 1));
        controller.enqueue(chunk);
      },
    });
    return new Response(response.body.pipeThrough(counter), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

// One EventSource on a Ping stream of `count` events. It checks each event as
// it arrives (seq = the expected next one, lastEventId = seq), closes on
// `end`, and gives up only when EventSource itself fails for good (a non-200
// answer, e.g. a 502 from nginx). With keepalives, it counts the stream's
// `: keep-alive` comments in c.keepalives. Closed at cleanup if still open.
export function startClient(index, url, count, { keepalives = false } = {}) {
  const c = {
    index,
    count,
    next: 1,
    wrong: [],
    opens: 0,
    errors: 0,
    keepalives: 0,
    end: null,
    failed: null,
    lastEventAt: Date.now(),
    lastErrorAt: 0,
  };
  c.done = new Promise((resolve) => {
    const es = new EventSource(url, keepalives ? { fetch: countingFetch(c) } : undefined);
    c.es = es;
    es.addEventListener('open', () => c.opens++);
    es.addEventListener('message', (e) => {
      c.lastEventAt = Date.now();
      let seq = NaN;
      try {
        seq = Number(JSON.parse(e.data).seq);
      } catch {}
      if (seq !== c.next || e.lastEventId !== String(seq)) {
        if (c.wrong.length < 5) c.wrong.push(`seq ${seq} (id ${e.lastEventId}) where ${c.next} was due`);
      }
      if (Number.isInteger(seq)) c.next = seq + 1;
    });
    es.addEventListener('end', (e) => {
      try {
        c.end = JSON.parse(e.data);
      } catch {
        c.end = { unparsable: e.data };
      }
      es.close();
      resolve();
    });
    es.addEventListener('error', (e) => {
      c.errors++;
      c.lastErrorAt = Date.now();
      if (es.readyState === EventSource.CLOSED) {
        c.failed = `${e.code ?? ''} ${e.message ?? ''}`.trim();
        resolve();
      }
    });
  });
  clients.add(c);
  c.done.then(() => clients.delete(c));
  return c;
}

// Every seq 1..count once, in order, then end code 0.
export const complete = (c) => c.end?.code === 0 && c.wrong.length === 0 && c.next === c.count + 1 && !c.failed;
// How many of `list` have neither ended nor failed.
export const running = (list) => list.filter((c) => !c.end && !c.failed).length;
// The error events (each one a reconnect, or the final failure) of `list`.
export const reconnects = (list) => list.reduce((n, c) => n + c.errors, 0);

export function describe(c) {
  return (
    `client ${c.index}: next seq ${c.next}/${c.count}, opens ${c.opens}, errors ${c.errors}, ` +
    `end ${JSON.stringify(c.end)}, failed ${c.failed}, readyState ${c.es.readyState}, ` +
    `last event ${Date.now() - c.lastEventAt} ms ago${c.wrong.length ? `, wrong: ${c.wrong.join('; ')}` : ''}`
  );
}

// One check: every client of `list` complete(), naming up to 10 that are not.
export function checkAllComplete(name, list) {
  const bad = list.filter((c) => !complete(c));
  return check(
    name,
    bad.length === 0,
    `${bad.length} did not:\n${bad.slice(0, 10).map((c) => `  ${describe(c)}`).join('\n')}`,
  );
}

// Prints (up to 20 of) the clients of `list` that have not ended.
export function printStalled(list, header) {
  const stalled = list.filter((c) => !c.end && !c.failed);
  console.log(`# ${header(stalled.length)}`);
  for (const c of stalled.slice(0, 20)) console.log(`#   ${describe(c)}`);
}

// Prints a bridge's /metrics samples (no comments) under `# --- title ---`.
export async function printMetrics(bridgeUrl, title) {
  try {
    const text = await withTimeout(fetch(`${bridgeUrl}/metrics`).then((r) => r.text()), 5000, 'GET /metrics');
    console.log(`# --- ${title} ---`);
    for (const line of text.trimEnd().split('\n')) if (!line.startsWith('#')) console.log(`# ${line}`);
  } catch (e) {
    console.log(`# ${title}: ${e.message}`);
  }
}
