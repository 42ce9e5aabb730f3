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

// --- StreamUsers with a token --------------------------------------------------

$('users-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('users-messages').replaceChildren();
  setStatus('users-status', 'connecting…');
  const token = $('users-token').value;
  const users = createApi({ ...options, token }, { streaming: Streaming });
  const { data, error } = await users.streaming.streamUsers({ count: 5, intervalMs: 300 });
  if (error) {
    setStatus('users-status', `refused: ${describe(error)}`, true);
    return;
  }
  setStatus('users-status', 'accepted');
  try {
    for await (const user of data) add('users-messages', `user ${user.id}`);
    setStatus('users-status', 'done (status OK)');
  } catch (e) {
    setStatus('users-status', describe(e), true);
  }
});

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
