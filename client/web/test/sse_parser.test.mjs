// The SSE parser against the WHATWG rules, with the stream split at every
// possible place: each case is parsed whole, byte by byte, and at every split
// point into two chunks, and must give the same events every time.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SseParser } from '../dist/sse_parser.js';

const enc = new TextEncoder();

function parseChunks(chunks, { lastEventId } = {}) {
  const parser = new SseParser({ lastEventId });
  const events = [];
  for (const chunk of chunks) events.push(...parser.push(chunk));
  events.push(...parser.end());
  return { events, parser };
}

// Every way of cutting `bytes` that the cases need: whole, each byte alone,
// and every split into two chunks.
function chunkings(bytes) {
  const out = [[bytes], Array.from(bytes, (b) => Uint8Array.of(b))];
  for (let i = 1; i < bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  return out;
}

function check(name, input, expected, { lastEventId, retry } = {}) {
  test(name, () => {
    const bytes = typeof input === 'string' ? enc.encode(input) : input;
    for (const chunks of chunkings(bytes)) {
      const { events, parser } = parseChunks(chunks);
      const where = `chunks ${JSON.stringify(chunks.map((c) => c.length))}`;
      assert.deepEqual(events, expected, where);
      if (lastEventId !== undefined) assert.equal(parser.lastEventId, lastEventId, where);
      if (retry !== undefined) assert.equal(parser.retry, retry, where);
    }
  });
}

const msg = (data, lastEventId = '', type = 'message') => ({ type, data, lastEventId });

check('LF line ends', 'data: a\n\ndata: b\n\n', [msg('a'), msg('b')]);
check('CRLF line ends (split between CR and LF at every place)', 'data: a\r\n\r\ndata: b\r\n\r\n', [msg('a'), msg('b')]);
check('CR-only line ends', 'data: a\r\rdata: b\r\r', [msg('a'), msg('b')]);
check('mixed CR, LF and CRLF', 'data: a\rdata: b\r\n\ndata: c\n\r', [msg('a\nb'), msg('c')]);
check('a CR at the end of one chunk and LF at the start of the next is one line end', 'data: x\r\n\r\n', [msg('x')]);
check('CR CR is two line ends (an empty line): dispatch', 'data: x\r\r', [msg('x')]);
check('a BOM at the start is dropped', '\uFEFFdata: a\n\n', [msg('a')]);
check('only the first BOM is dropped: a second makes an unknown field', '\uFEFF\uFEFFdata: a\n\ndata: b\n\n', [msg('b')]);
check('a BOM later in the stream is data', 'data: \uFEFFa\n\n', [msg('\uFEFFa')]);
check('comments are ignored (the bridge\'s keep-alives)', ': keep-alive\n\n:\ndata: a\n: x\n\n', [msg('a')]);
check('multi-line data joined with LF', 'data: one\ndata: two\ndata:\ndata: four\n\n', [msg('one\ntwo\n\nfour')]);
check('"data" without a colon is an empty data line', 'data\ndata\n\n', [msg('\n')]);
check('one space after the colon is dropped, not two', 'data:  two\ndata:none\n\n', [msg(' two\nnone')]);
check('no data: no event', 'event: end\n\nid: 3\n\n', [], { lastEventId: '3' });
check('event types', 'event: end\ndata: {"code":0}\n\ndata: after\n\n', [msg('{"code":0}', '', 'end'), msg('after')]);
check('an empty event field is "message"', 'event:\ndata: a\n\n', [msg('a')]);
check('id sets the last event id; it persists', 'id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\n', [msg('a', '1'), msg('b', '1'), msg('c', '2')], {
  lastEventId: '2',
});
check('an id with NUL is ignored', 'id: 1\ndata: a\n\nid: 2\u00003\ndata: b\n\n', [msg('a', '1'), msg('b', '1')], {
  lastEventId: '1',
});
check('an empty id resets the last event id', 'id: 1\ndata: a\n\nid\ndata: b\n\n', [msg('a', '1'), msg('b', '')]);
check('retry with digits only', 'retry: 1500\n\n', [], { retry: 1500 });
check('retry with non-digits is ignored', 'retry: 1500\nretry: 2s\nretry: -1\nretry: 1.5\nretry:  7\nretry:\n\n', [], {
  retry: 1500,
});
check('unknown fields are ignored', 'foo: bar\ndata: a\nData: b\n\n', [msg('a')]);
check('a final event without its blank line is dropped', 'data: a\n\ndata: b\n', [msg('a')]);
check('a final event without any line end is dropped', 'data: a\n\ndata: b', [msg('a')]);
check('multi-byte UTF-8 split anywhere', 'data: ü€𝄞\n\n', [msg('ü€𝄞')]);
check(
  'the bridge\'s wire: ids, messages, keep-alive, end',
  'id: 1\ndata: {"message":"m","seq":"1"}\n\n: keep-alive\n\nid: 2\ndata: {"message":"m","seq":"2"}\n\nevent: end\ndata: {"code":0,"message":"","details":[]}\n\n',
  [
    msg('{"message":"m","seq":"1"}', '1'),
    msg('{"message":"m","seq":"2"}', '2'),
    msg('{"code":0,"message":"","details":[]}', '2', 'end'),
  ],
);
check('the bridge\'s retry cut: retry and no end', 'id: 1\ndata: {}\n\nretry: 2000\n\n', [msg('{}', '1')], { retry: 2000 });

test('a BOM split across byte chunks is dropped', () => {
  const bytes = enc.encode('\uFEFFdata: a\n\n');
  const { events } = parseChunks([bytes.subarray(0, 1), bytes.subarray(1, 2), bytes.subarray(2)]);
  assert.deepEqual(events, [msg('a')]);
});

test('string chunks work like bytes', () => {
  const { events } = parseChunks(['data: a\r', '\ndata: b\r', '\n\r', '\n']);
  assert.deepEqual(events, [msg('a\nb')]);
});

test('a starting last event id (reconnection) is kept until an id field', () => {
  const { events } = parseChunks(['data: a\n\nid: 9\ndata: b\n\n'], { lastEventId: '7' });
  assert.deepEqual(events, [msg('a', '7'), msg('b', '9')]);
});

test('push after end throws', () => {
  const parser = new SseParser();
  parser.end();
  assert.throws(() => parser.push('data: a\n\n'));
});
