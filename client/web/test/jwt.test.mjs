// JWT guards end to end: streaming-server with --jwt_key (an ES256 key pair
// made here, in a temporary directory) and --jwt_leeway=0s, gravity-bridge in
// front of it with --retry=200ms, and tokens minted here with node:crypto.
// StreamUsers wants a valid token whose "role" is "admin"; when the token
// expires mid-stream the server ends the stream with UNAUTHENTICATED and the
// bridge turns that into a `retry:` cut (no `event: end`), so @gravity/client
// reconnects, calling `token()` again, and resumes with Last-Event-ID.
//
//   SERVER=bazel-bin/examples/streaming/streaming-server BRIDGE=bazel-bin/bridge/gravity-bridge \
//     node --test test/jwt.test.mjs
//
// (ctest's web_client_node_e2e passes both in the environment), or
// `node test/jwt.test.mjs --server=... --bridge=...` (node --test would take
// those flags for more test files).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createApi, GravityError } from '../dist/index.js';
import { Streaming } from '../dist/gen/streaming/v1/streaming_pb.js';
import { flags, onCleanup, runCleanups, startBridge, startServer, withTimeout } from '../../../tests/e2e/harness.mjs';

const args = flags(['server', 'bridge']);
const STREAM_USERS = '/streaming.v1.Streaming/StreamUsers';

// --- tokens --------------------------------------------------------------------

const b64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

// A compact JWS: ES256 (raw r||s, as JOSE wants: dsaEncoding ieee-p1363) with
// an EC P-256 private key, or alg "none" with an empty signature.
function mintJwt(privateKey, payload, { alg = 'ES256' } = {}) {
  const signingInput = `${b64url({ alg, typ: 'JWT' })}.${b64url(payload)}`;
  if (alg === 'none') return `${signingInput}.`;
  const signature = crypto.sign('sha256', Buffer.from(signingInput), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${signingInput}.${signature.toString('base64url')}`;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);
const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const other = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }); // not the server's
const claims = (extra = {}) => ({ sub: 'jwt-test', role: 'admin', iat: nowSeconds(), exp: nowSeconds() + 60, ...extra });
const adminToken = (extra) => mintJwt(privateKey, claims(extra));

// --- processes -----------------------------------------------------------------

let bridge;

before(async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gravity-client-jwt-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const keyFile = path.join(dir, 'jwt-public.pem');
  writeFileSync(keyFile, publicKey.export({ type: 'spki', format: 'pem' }));
  const server = await startServer(args.server, { extraArgs: [`--jwt_key=${keyFile}`, '--jwt_leeway=0s'] });
  bridge = await startBridge(args.bridge, server.address, ['--retry=200ms']);
});

after(async () => {
  await runCleanups();
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => runCleanups().finally(() => process.exit(1)));
}

const apiWith = (options) => createApi({ baseUrl: bridge.url, ...options }, { streaming: Streaming });

async function collect(iterable) {
  const out = [];
  for await (const m of iterable) out.push(m);
  return out;
}

// A raw GET of the bridge with Node's http (no client library): resolves to
// { status, headers, body, elapsedMs } once the response body has ended.
function rawGet(pathAndQuery, headers) {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const request = http.get(`${bridge.url}${pathAndQuery}`, { headers }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => (body += chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode, headers: response.headers, body, elapsedMs: Date.now() - started }),
      );
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}

// The SSE fields of a body, in order, comments (":...") and blank lines left out.
const fields = (body) => body.split(/\r\n|\r|\n/).filter((line) => line !== '' && !line.startsWith(':'));

// --- a: refusals -----------------------------------------------------------------

test('refusals: no token 401 (16); no admin role 403 (7); bad signature, expired, alg none 401 (16)', async () => {
  const refused = async (token) => {
    const result = await apiWith(token === undefined ? {} : { token }).streaming.streamUsers({ count: 2, intervalMs: 10 });
    assert.equal(result.data, undefined);
    assert.ok(result.error instanceof GravityError, String(result.error));
    return result.error;
  };
  const none = await refused(undefined);
  assert.deepEqual([none.code, none.httpStatus], [16, 401], none.message);

  const user = await refused(adminToken({ role: 'user' }));
  assert.deepEqual([user.code, user.httpStatus], [7, 403], user.message);
  const noRole = await refused(mintJwt(privateKey, { sub: 'jwt-test', exp: nowSeconds() + 60 }));
  assert.deepEqual([noRole.code, noRole.httpStatus], [7, 403], noRole.message);

  const badSignature = await refused(mintJwt(other.privateKey, claims()));
  assert.deepEqual([badSignature.code, badSignature.httpStatus], [16, 401], badSignature.message);
  // The right key's signature over other claims: the payload swapped after signing.
  const [h, , s] = adminToken().split('.');
  const tampered = await refused(`${h}.${b64url(claims({ sub: 'someone-else' }))}.${s}`);
  assert.deepEqual([tampered.code, tampered.httpStatus], [16, 401], tampered.message);

  const expired = await refused(adminToken({ iat: nowSeconds() - 120, exp: nowSeconds() - 60 }));
  assert.deepEqual([expired.code, expired.httpStatus], [16, 401], expired.message);

  const algNone = await refused(mintJwt(null, claims(), { alg: 'none' }));
  assert.deepEqual([algNone.code, algNone.httpStatus], [16, 401], algNone.message);

  // And the valid admin token is let through.
  const { data, error } = await apiWith({ token: adminToken() }).streaming.streamUsers({ count: 2, intervalMs: 10 });
  assert.equal(error, undefined, error && String(error));
  const users = await withTimeout(collect(data), 10000, 'streamUsers');
  assert.deepEqual(
    users.map((u) => u.seq),
    [1n, 2n],
  );
});

// --- b: the key test ----------------------------------------------------------------

test('a token expiring mid-stream: the bridge cuts, token() is called again, the stream resumes losing nothing', async (t) => {
  const minted = []; // { at, exp } per token() call
  const reconnects = []; // { at, lastEventId } per reconnection
  const api = apiWith({
    token: () => {
      // Whole seconds: 2 to 3 s from now.
      const exp = nowSeconds() + 3;
      minted.push({ at: Date.now(), exp });
      return adminToken({ exp });
    },
    onReconnect: (info) => reconnects.push({ at: Date.now(), lastEventId: info.lastEventId, code: info.error.code }),
  });
  const { data, error } = await api.streaming.streamUsers({ count: 10, intervalMs: 400 });
  assert.equal(error, undefined, error && String(error));
  const seen = []; // [seq, lastEventId after it]
  await withTimeout(
    (async () => {
      for await (const user of data) seen.push([user.seq, data.lastEventId, user.id]);
    })(),
    30000,
    'streamUsers across token expiries',
  );
  const detail = JSON.stringify({ minted, reconnects, seen: seen.map(([s]) => String(s)) });
  const t0 = minted[0].at;
  t.diagnostic(
    `tokens minted at +${minted.map((m) => m.at - t0).join(', +')} ms (exp +${minted.map((m) => m.exp * 1000 - m.at).join(', +')} ms later); ` +
      `reconnections at +${reconnects.map((r) => `${r.at - t0} ms after id ${r.lastEventId}`).join(', +')}`,
  );

  // Every seq once, in order, and each the SSE event id.
  assert.deepEqual(
    seen.map(([seq]) => seq),
    [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n, 9n, 10n],
    detail,
  );
  assert.ok(
    seen.every(([seq, lastEventId]) => lastEventId === String(seq)),
    detail,
  );
  assert.ok(seen.every(([, , id]) => id !== ''), detail);

  // At least one reconnection, each with a fresh token: token() on every connect.
  assert.ok(reconnects.length >= 1, `no reconnection: ${detail}`);
  assert.equal(data.reconnects, reconnects.length, detail);
  assert.equal(minted.length, reconnects.length + 1, `token() once per connect: ${detail}`);
  assert.ok(minted.length >= 2, detail);
  for (let i = 1; i < minted.length; i++) {
    assert.ok(minted[i].at >= reconnects[i - 1].at, `token ${i} minted after reconnection ${i}: ${detail}`);
  }
  // Each reconnection resumes after the last event seen before it.
  assert.ok(
    reconnects.every((r) => r.lastEventId !== '' && Number(r.lastEventId) >= 1 && Number(r.lastEventId) < 10),
    detail,
  );

  // The first connection was cut when its token expired (leeway 0 s): within
  // [exp - 0.2 s, exp + 1.5 s].
  const cutAt = reconnects[0].at;
  const exp0 = minted[0].exp * 1000;
  assert.ok(
    cutAt >= exp0 - 200 && cutAt <= exp0 + 1500,
    `first cut ${cutAt - exp0} ms after the first token's exp: ${detail}`,
  );
  // A cut, not an error: what onReconnect is told is UNAVAILABLE (14).
  assert.equal(reconnects[0].code, 14, detail);
});

// --- c: the wire ------------------------------------------------------------------

test('the wire: an expiring token ends the body with retry: and no event: end, status 200', async () => {
  const exp = nowSeconds() + 2;
  const started = Date.now();
  const response = await withTimeout(
    rawGet(`${STREAM_USERS}?count=50&interval_ms=200`, {
      Accept: 'text/event-stream',
      Authorization: `Bearer ${adminToken({ exp })}`,
    }),
    15000,
    'raw StreamUsers',
  );
  const endedAt = started + response.elapsedMs;
  assert.equal(response.status, 200);
  assert.match(response.headers['content-type'], /^text\/event-stream/);
  const lines = fields(response.body);
  assert.ok(lines.some((l) => l.startsWith('data:')), response.body);
  assert.ok(lines.some((l) => l === 'id: 1' || l === 'id:1'), response.body);
  assert.ok(!/^event: ?end$/m.test(response.body), `an end event in:\n${response.body}`);
  assert.match(lines.at(-1), /^retry: ?\d+$/, `the last field is not retry:\n${response.body}`);
  // Cut when the token expired, not after the 50 events (10 s).
  assert.ok(
    endedAt >= exp * 1000 - 200 && endedAt <= exp * 1000 + 1500,
    `the body ended ${endedAt - exp * 1000} ms after exp`,
  );
  assert.ok(lines.filter((l) => l.startsWith('id:')).length < 50, response.body);
});

// --- d: the cookie ------------------------------------------------------------------

test('the cookie: access_token=<admin JWT> and no Authorization header is let through', async () => {
  const response = await withTimeout(
    rawGet(`${STREAM_USERS}?count=3&interval_ms=10`, {
      Accept: 'text/event-stream',
      Cookie: `theme=dark; access_token=${adminToken()}`,
    }),
    15000,
    'StreamUsers with a cookie',
  );
  assert.equal(response.status, 200, response.body);
  const lines = fields(response.body);
  assert.deepEqual(
    lines.filter((l) => l.startsWith('id:')),
    ['id: 1', 'id: 2', 'id: 3'],
    response.body,
  );
  assert.ok(/^event: ?end$/m.test(response.body), response.body);

  // The same cookie holding a token without the role: 403.
  const user = await withTimeout(
    rawGet(`${STREAM_USERS}?count=3&interval_ms=10`, {
      Accept: 'text/event-stream',
      Cookie: `access_token=${adminToken({ role: 'user' })}`,
    }),
    15000,
    'StreamUsers with a non-admin cookie',
  );
  assert.equal(user.status, 403, user.body);
  assert.equal(JSON.parse(user.body).code, 7);
});

// --- e: a JWKS from another implementation ---------------------------------------

// streaming-server --jwks with keys exported by Node as JWKs (RSA and EC P-256,
// each with a kid), as an identity provider publishes them: the server turns
// each into a key of its own; a token is verified by the key its kid names.
test('--jwks: RS256 and ES256 tokens by kid, an unknown kid refused', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gravity-client-jwks-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = (key, kid, alg) => ({ ...key.publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' });
  const jwksFile = path.join(dir, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [jwk(rsa, 'rsa-2026', 'RS256'), jwk(ec, 'ec-2026', 'ES256')] }));
  const server = await startServer(args.server, { extraArgs: [`--jwks=${jwksFile}`], name: 'streaming-server-jwks' });
  const jwksBridge = await startBridge(args.bridge, server.address, ['--retry=200ms']);

  const sign = (alg, kid, key, payload) => {
    const input = `${b64url({ alg, typ: 'JWT', kid })}.${b64url(payload)}`;
    const signature =
      alg === 'RS256'
        ? crypto.sign('sha256', Buffer.from(input), key)
        : crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    return `${input}.${signature.toString('base64url')}`;
  };
  const statusWith = async (token) => {
    const response = await fetch(`${jwksBridge.url}${STREAM_USERS}?count=1&interval_ms=10`, {
      headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' },
    });
    const body = await response.text();
    return { status: response.status, body };
  };
  const rs = await statusWith(sign('RS256', 'rsa-2026', rsa.privateKey, claims()));
  assert.equal(rs.status, 200, rs.body);
  assert.match(rs.body, /^id: 1$/m);
  const es = await statusWith(sign('ES256', 'ec-2026', ec.privateKey, claims()));
  assert.equal(es.status, 200, es.body);
  const unknown = await statusWith(sign('ES256', 'ec-2025', ec.privateKey, claims()));
  assert.equal(unknown.status, 401, unknown.body);
  assert.match(unknown.body, /unknown key id/);
  // The EC key under the RSA key's kid: the kid picks the key, the key its algorithm.
  const swapped = await statusWith(sign('ES256', 'rsa-2026', ec.privateKey, claims()));
  assert.equal(swapped.status, 401, swapped.body);
});
