// The demo page's script (see index.html): @gravity/client against the
// bridge that serves the page, so baseUrl is the page's own origin.
import { createApi } from '@gravity/client';
import { Streaming } from '@gravity/client/dist/gen/streaming/v1/streaming_pb.js';

const $ = (id) => document.getElementById(id);
let reconnects = 0;

const options = {
  baseUrl: '',
  onReconnect: (info) => {
    $('reconnects').textContent = String(++reconnects);
    $('reconnect-info').textContent =
      `(last: ${info.method}, attempt ${info.attempt} in ${info.delayMs} ms, Last-Event-ID ${info.lastEventId || 'none'})`;
  },
};
const api = createApi(options, { streaming: Streaming });

const describe = (error) => `${error.codeName} (${error.code}): ${error.message}`;

function add(listId, text, className) {
  const item = document.createElement('li');
  item.textContent = text;
  if (className) item.className = className;
  $(listId).appendChild(item);
  item.scrollIntoView({ block: 'nearest' });
}

function setStatus(id, text, isError = false) {
  $(id).textContent = text;
  $(id).className = isError ? 'error' : 'status';
}

// --- Ping, live ---------------------------------------------------------------

let pingAbort;

async function ping() {
  pingAbort?.abort();
  const controller = new AbortController();
  pingAbort = controller;
  $('ping-messages').replaceChildren();
  setStatus('ping-status', 'connecting…');
  const request = {
    to: $('ping-to').value,
    count: Number($('ping-count').value),
    intervalMs: Number($('ping-interval').value),
  };
  const { data, error } = await api.streaming.ping(request, { signal: controller.signal });
  if (error) {
    if (!controller.signal.aborted) setStatus('ping-status', describe(error), true);
    return;
  }
  setStatus('ping-status', 'open');
  try {
    for await (const reply of data) {
      add('ping-messages', `#${reply.seq} ${reply.message}`);
      setStatus('ping-status', `open, last event id ${data.lastEventId}`);
    }
    setStatus('ping-status', `done (status OK), ${data.reconnects} reconnection(s)`);
  } catch (e) {
    if (pingAbort !== controller) return; // replaced by a newer run
    if (controller.signal.aborted) setStatus('ping-status', 'stopped');
    else setStatus('ping-status', describe(e), true);
  }
}

$('ping-form').addEventListener('submit', (event) => {
  event.preventDefault();
  ping();
});
$('ping-stop').addEventListener('click', () => pingAbort?.abort());

// --- StreamUsers with a JWT that expires ------------------------------------------
//
// streaming-server checks a JWT with "role": "admin" (--jwt_key); the demo's
// token endpoint (examples/demo/token_server.mjs, started by scripts/demo.sh
// on the bridge's port + 1, or ?token_url=URL) mints ES256 tokens that live
// 30 s. `token` is a function, so @gravity/client calls it on every connection
// and reconnection: it reuses the current token while it has more than 2 s
// left and fetches a new one otherwise. When the token expires mid-stream, the
// server ends the call and the bridge cuts the stream with `retry:`; the
// client reconnects, gets a new token from here, and resumes after the last
// user it saw (Last-Event-ID).

const TOKEN_URL = new URL(
  new URLSearchParams(location.search).get('token_url') ??
    `${location.protocol}//${location.hostname}:${Number(location.port || (location.protocol === 'https:' ? 443 : 80)) + 1}/token`,
  location.href,
);
let current; // { token, exp (seconds), role, n }
let tokensFetched = 0;

// A JWT's `exp`, read without checking the signature (the server checks it).
function expOf(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(payload)).exp;
  } catch {
    return undefined;
  }
}

async function tokenFor(role) {
  if (current?.role === role && current.exp * 1000 - Date.now() > 2000) return current.token;
  const url = new URL(TOKEN_URL);
  url.searchParams.set('role', role);
  try {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const token = (await response.text()).trim();
    current = { token, exp: expOf(token), role, n: ++tokensFetched };
  } catch (e) {
    current = undefined;
    $('users-token-info').textContent = `the token endpoint ${url.origin} failed: ${e.message}`;
    return undefined; // the call goes without a token: 401
  }
  showToken();
  return current.token;
}

function showToken() {
  $('users-tokens').textContent = String(tokensFetched);
  if (!current) return;
  const left = Math.ceil(current.exp - Date.now() / 1000);
  const at = new Date(current.exp * 1000).toLocaleTimeString();
  $('users-token-info').textContent =
    `#${current.n} (role ${current.role}) ` + (left > 0 ? `expires in ${left} s, at ${at}` : `expired at ${at}`);
  $('users-token-info').className = left > 0 ? '' : 'error';
}
setInterval(showToken, 250);

let usersAbort;
let usersReconnects = 0;

async function streamUsers({ role = 'admin', withToken = true } = {}) {
  usersAbort?.abort();
  const controller = new AbortController();
  usersAbort = controller;
  $('users-messages').replaceChildren();
  setStatus('users-status', 'connecting…');
  const users = createApi(
    { ...options, token: withToken ? () => tokenFor(role) : undefined },
    { streaming: Streaming },
  );
  const request = { count: Number($('users-count').value), intervalMs: Number($('users-interval').value) };
  const { data, error } = await users.streaming.streamUsers(request, {
    signal: controller.signal,
    onReconnect: (info) => {
      options.onReconnect(info);
      $('users-reconnects').textContent = String(++usersReconnects);
      const expired = current !== undefined && current.exp * 1000 - Date.now() < 500;
      add(
        'users-messages',
        `— cut after #${info.lastEventId || 'none'}: ` +
          (expired
            ? `token #${current.n} expired; reconnecting with a new one`
            : "the bridge's --max_stream_duration; reconnecting with the same token"),
        'status',
      );
    },
  });
  if (error) {
    if (!controller.signal.aborted) setStatus('users-status', `refused: ${describe(error)}`, true);
    return;
  }
  setStatus('users-status', 'open');
  try {
    for await (const user of data) {
      add('users-messages', `#${user.seq} user ${user.id}`);
      setStatus('users-status', `open, last event id ${data.lastEventId}`);
    }
    setStatus('users-status', `done (status OK), ${data.reconnects} reconnection(s)`);
  } catch (e) {
    if (usersAbort !== controller) return;
    if (controller.signal.aborted) setStatus('users-status', 'stopped');
    else setStatus('users-status', describe(e), true);
  }
}

$('users-form').addEventListener('submit', (event) => {
  event.preventDefault();
  streamUsers();
});
$('users-stop').addEventListener('click', () => usersAbort?.abort());
$('users-no-token').addEventListener('click', () => streamUsers({ withToken: false }));
$('users-no-admin').addEventListener('click', () => streamUsers({ role: 'viewer' }));

// --- An error mid-stream -------------------------------------------------------

$('fail-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('fail-messages').replaceChildren();
  setStatus('fail-status', 'connecting…');
  const failCode = Number($('fail-code').value);
  const { data, error } = await api.streaming.ping({ to: 'fail', count: 3, intervalMs: 300, failCode });
  if (error) {
    setStatus('fail-status', `refused: ${describe(error)}`, true);
    return;
  }
  setStatus('fail-status', 'open');
  try {
    for await (const reply of data) add('fail-messages', `#${reply.seq} ${reply.message}`);
    setStatus('fail-status', 'done (status OK)');
  } catch (e) {
    add('fail-messages', `thrown from the loop: ${describe(e)}`, 'error');
    setStatus('fail-status', 'ended with an error after the messages', true);
  }
});

ping();
