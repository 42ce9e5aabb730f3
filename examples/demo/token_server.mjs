// The demo's token endpoint: mints short-lived ES256 JWTs for the demo page's
// StreamUsers panel, which streaming-server checks with --jwt_key (the public
// half of --key). Node's own modules only (node:http, node:https, node:crypto).
//
//   node examples/demo/token_server.mjs --key=jwt-private.pem [--listen=127.0.0.1:8081]
//     [--ttl=30] [--cors_origin=http://127.0.0.1:8080]... [--tls_cert=cert.pem --tls_key=key.pem]
//
// GET /token answers a JWT (text/plain) with "role": "admin" (or ?role=NAME,
// so the page can show the guard's 403), "sub": "demo-user" and
// "exp" = now + --ttl seconds. Each --cors_origin may read it from a page of
// that origin (the demo page is served by gravity-bridge, another port). It
// prints "token-server listening on <url>" once it listens.
//
// A demo: anyone who can reach it gets an admin token. A real token endpoint
// authenticates the user first (a session cookie, OAuth) and lives with the
// identity provider.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';

const options = { listen: '127.0.0.1:8081', ttl: '30', cors_origin: [] };
for (const arg of process.argv.slice(2)) {
  const m = /^--([a-z_]+)=(.*)$/.exec(arg);
  if (!m || !(m[1] in options || ['key', 'tls_cert', 'tls_key'].includes(m[1]))) {
    console.error(`token_server.mjs: unknown argument ${arg}`);
    process.exit(2);
  }
  if (Array.isArray(options[m[1]])) options[m[1]].push(m[2]);
  else options[m[1]] = m[2];
}
if (!options.key) {
  console.error('token_server.mjs: --key=<PEM EC P-256 private key> is required');
  process.exit(2);
}
const privateKey = crypto.createPrivateKey(fs.readFileSync(options.key));
if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
  console.error('token_server.mjs: --key must be an EC P-256 private key (ES256)');
  process.exit(2);
}
const ttlSeconds = Number(options.ttl);
if (!(ttlSeconds > 0)) {
  console.error(`token_server.mjs: --ttl must be a number of seconds > 0, not ${options.ttl}`);
  process.exit(2);
}

const b64url = (json) => Buffer.from(JSON.stringify(json)).toString('base64url');

// A compact JWS signed with ES256 (JOSE's raw r || s signature).
function mint(role) {
  const now = Math.floor(Date.now() / 1000);
  const payload = { sub: 'demo-user', role, iat: now, exp: now + ttlSeconds, jti: crypto.randomUUID() };
  const input = `${b64url({ alg: 'ES256', typ: 'JWT' })}.${b64url(payload)}`;
  const signature = crypto.sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

function handle(req, res) {
  const origin = req.headers.origin;
  const headers = { 'Cache-Control': 'no-store', Vary: 'Origin' };
  if (origin && options.cors_origin.includes(origin)) headers['Access-Control-Allow-Origin'] = origin;
  const url = new URL(req.url, 'http://token-server');
  if (url.pathname !== '/token') {
    res.writeHead(404, { ...headers, 'Content-Type': 'text/plain' }).end('not found: GET /token\n');
  } else if (req.method === 'OPTIONS') {
    res.writeHead(204, { ...headers, 'Access-Control-Allow-Methods': 'GET', 'Access-Control-Max-Age': '600' }).end();
  } else if (req.method !== 'GET') {
    res.writeHead(405, { ...headers, Allow: 'GET, OPTIONS' }).end();
  } else {
    const role = url.searchParams.get('role') || 'admin';
    res.writeHead(200, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' }).end(mint(role));
  }
}

const tls = options.tls_cert && options.tls_key;
const server = tls
  ? https.createServer({ cert: fs.readFileSync(options.tls_cert), key: fs.readFileSync(options.tls_key) }, handle)
  : http.createServer(handle);
const colon = options.listen.lastIndexOf(':');
const host = options.listen.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
server.listen(Number(options.listen.slice(colon + 1)), host, () => {
  const { port } = server.address();
  console.log(`token-server listening on ${tls ? 'https' : 'http'}://${options.listen.slice(0, colon)}:${port}`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
