// Unit tests of wsnotify.js against scripted WebSockets: the resume
// protocol's corner cases, which a live server shows only by chance.
// Run with `node --test clients/js/test/` (clients/js's Go test runs them
// in `make test`); the end-to-end tests against local mode are in
// clients/js/client_test.go.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, defaults } from '../wsnotify.js';

// FakeSocket is a browser-like WebSocket the test plays the server for.
class FakeSocket {
  constructor(url) {
    this.url = new URL(url);
    this.readyState = 0;
    this.sent = [];
    this.listeners = {};
    this.closedByClient = false;
    this.constructor.made.push(this);
    changed();
  }
  addEventListener(type, fn) {
    (this.listeners[type] ??= []).push(fn);
  }
  fire(type, ev = {}) {
    for (const fn of this.listeners[type] ?? []) fn(ev);
  }
  send(data) {
    assert.equal(this.readyState, 1, 'send on a socket that is not open');
    this.sent.push(JSON.parse(data));
    changed();
  }
  close() {
    if (this.readyState >= 2) return;
    this.readyState = 2;
    this.closedByClient = true;
  }
  // The server's side.
  open() {
    this.readyState = 1;
    this.fire('open');
  }
  push(...msgs) {
    for (const m of msgs) this.fire('message', { data: JSON.stringify(m) });
  }
  drop(code = 1001) {
    this.readyState = 3;
    this.fire('close', { code });
  }
  // fail ends a handshake before 'open', as a browser reports any refusal.
  fail() {
    this.readyState = 3;
    this.fire('error');
    this.fire('close', { code: 1006 });
  }
}

// NodeSocket is ws-like: it reports a refused handshake's status.
class NodeSocket extends FakeSocket {
  on(type, fn) {
    this.addEventListener(type, fn);
  }
  terminate() {
    this.readyState = 3;
    this.fire('error');
    this.fire('close', { code: 1006 });
  }
  refuse(statusCode) {
    this.fire('unexpected-response', [{}, { statusCode, resume() {} }]);
  }
  fire(type, ev = {}) {
    if (type === 'unexpected-response') {
      for (const fn of this.listeners[type] ?? []) fn(...ev);
      return;
    }
    super.fire(type, ev);
  }
}

// setup connects a client over a fresh socket class and records what the
// application sees.
function setup(opts = {}, Base = FakeSocket) {
  const Socket = class extends Base {};
  Socket.made = [];
  const client = connect({ url: 'ws://server.test/', token: 'k y', minDelay: 1, maxDelay: 4, WebSocket: Socket, ...opts });
  const seen = [];
  const states = [];
  client.on('*', (ev) => {
    seen.push(ev);
    changed();
  });
  client.on('state', (s) => {
    states.push(s);
    changed();
  });
  return { client, Socket, seen, states, ids: () => seen.map((e) => e.id ?? e.code) };
}

// wakers are the waits of until. changed() wakes them: the fakes and setup
// call it on every change a test waits for (a socket made, a message sent,
// an event or a state the application sees).
const wakers = new Set();
function changed() {
  for (const wake of wakers) wake();
}

// until waits for cond to hold, checking it after every change, and fails
// after a deadline.
async function until(cond, what, ms = 3000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    const left = deadline - Date.now();
    if (left <= 0) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => {
      const timer = setTimeout(wake, left);
      function wake() {
        clearTimeout(timer);
        wakers.delete(wake);
        resolve();
      }
      wakers.add(wake);
    });
  }
}

// socket waits for the n-th connection attempt (0-based).
async function socket(Socket, n) {
  await until(() => Socket.made.length > n, `connection attempt ${n + 1}`);
  return Socket.made[n];
}

const ev = (seq, extra = {}) => ({ type: 'job_progress', jobId: 'j', progress: seq, processedCount: seq, totalCount: 100, currentFile: `f${seq}`, id: `e${seq}`, seq, ...extra });

test('connects to /api/v1/ws/{clientId} with the token, asks for the current state, then delivers it in seq order', async () => {
  const { client, Socket, seen, states } = setup({ clientId: 'tab-1' });
  const s = await socket(Socket, 0);
  assert.equal(s.url.pathname, '/api/v1/ws/tab-1');
  assert.equal(s.url.searchParams.get('token'), 'k y');
  s.open();
  assert.deepEqual(s.sent, [{ action: 'resume' }]);
  // The latest event of each unfinished job, then where that leaves us.
  s.push(ev(4, { jobId: 'a' }), ev(9, { jobId: 'b' }), { type: 'resumed', seq: 10, replayed: 2 });
  assert.deepEqual(seen.map((e) => e.seq), [4, 9]);
  assert.equal(client.seq, 10);
  s.push(ev(11));
  assert.deepEqual(seen.map((e) => e.seq), [4, 9, 11]);
  assert.deepEqual(states, ['open']);
  client.close();
  assert.deepEqual(states, ['open', 'closed']);
  assert.ok(s.closedByClient);
});

test('resumes from the last delivered seq after a reconnect, dropping what it already had and holding back early events', async () => {
  const { client, Socket, seen } = setup();
  const s1 = await socket(Socket, 0);
  s1.open();
  s1.push({ type: 'resumed', seq: 0, replayed: 0 }, ev(1), ev(2));
  s1.drop(1001);
  const s2 = await socket(Socket, 1);
  assert.equal(s2.url.pathname, s1.url.pathname, 'a reconnect keeps its client id');
  s2.open();
  assert.deepEqual(s2.sent, [{ action: 'resume', since: 2 }]);
  // A live event overtakes the replay (possible in the cloud), and the
  // replay repeats one the client had.
  s2.push(ev(5), ev(2), ev(3), ev(4), ev(5), { type: 'resumed', seq: 5, replayed: 3 }, ev(6));
  assert.deepEqual(seen.map((e) => e.seq), [1, 2, 3, 4, 5, 6]);
  client.close();
});

test('delivers an event redelivered under a new seq once, keeping the order', async () => {
  const { client, Socket, ids } = setup();
  const s = await socket(Socket, 0);
  s.open();
  s.push({ type: 'resumed', seq: 0, replayed: 0 }, ev(1), ev(2, { id: 'e1' }), ev(3));
  assert.deepEqual(ids(), ['e1', 'e3']);
  assert.equal(client.seq, 3);
  client.close();
});

test('delivers events addressed to this client at once, once per id', async () => {
  const { client, Socket, ids } = setup();
  const s = await socket(Socket, 0);
  s.open();
  s.push({ type: 'resumed', seq: 0, replayed: 0 });
  const mine = { type: 'error', error: 'no', code: 'X', id: 'mine' };
  s.push(ev(2), mine, mine, ev(1));
  assert.deepEqual(ids(), ['mine', 'e1', 'e2']);
  client.close();
});

test('reports RESUME_GAP to the application and continues from the oldest event the server holds', async () => {
  const { client, Socket, seen } = setup();
  const s1 = await socket(Socket, 0);
  s1.open();
  s1.push({ type: 'resumed', seq: 3, replayed: 0 });
  s1.drop();
  const s2 = await socket(Socket, 1);
  s2.open();
  assert.deepEqual(s2.sent, [{ action: 'resume', since: 3 }]);
  const gap = { type: 'error', error: 'events before 8 are gone', code: 'RESUME_GAP', oldestSeq: 8 };
  s2.push(gap, ev(8), ev(9), { type: 'resumed', seq: 9, replayed: 2 });
  assert.deepEqual(seen.map((e) => e.code ?? e.seq), ['RESUME_GAP', 8, 9]);
  assert.equal(seen[0].oldestSeq, 8);
  client.close();
});

test('follows a server whose numbering restarted, telling the application', async () => {
  const { client, Socket, seen } = setup();
  const s1 = await socket(Socket, 0);
  s1.open();
  s1.push({ type: 'resumed', seq: 40, replayed: 0 });
  s1.drop();
  const s2 = await socket(Socket, 1);
  s2.open();
  s2.push({ type: 'resumed', seq: 0, replayed: 0 }, ev(1));
  assert.deepEqual(seen.map((e) => e.code ?? e.seq), ['RESUME_GAP', 1]);
  client.close();
});

test('asks again for a missing event; a seq the resume does not replay is passed over without an error', async () => {
  const { client, Socket, seen } = setup({ gapTimeout: 5 });
  const s = await socket(Socket, 0);
  s.open();
  s.push({ type: 'resumed', seq: 1, replayed: 0 }, ev(3));
  await until(() => s.sent.length === 2, 'a second resume');
  assert.deepEqual(s.sent[1], { action: 'resume', since: 1 });
  // The server holds no event 2 (a seq no event got): its replay up to 3
  // has none, and says so by its head.
  s.push({ type: 'resumed', seq: 3, replayed: 0 });
  assert.deepEqual(seen.map((e) => e.code ?? e.seq), [3]);
  assert.equal(client.seq, 3);
  client.close();
});

test('asks again for a missing event, and says so when the resume never completes', async () => {
  const { client, Socket, seen } = setup({ gapTimeout: 5 });
  const s = await socket(Socket, 0);
  s.open();
  s.push({ type: 'resumed', seq: 1, replayed: 0 }, ev(3));
  await until(() => s.sent.length === 2, 'a second resume');
  // A server that cannot resume: the gap stays, and is reported.
  s.push({ type: 'error', error: 'unknown action', code: 'BAD_REQUEST' }, ev(4));
  await until(() => seen.length === 3, 'the gap skipped');
  assert.deepEqual(seen.map((e) => e.code ?? e.seq), ['RESUME_GAP', 3, 4]);
  assert.equal(seen[0].oldestSeq, 3);
  client.close();
});

test('a replay that sends each job\'s latest progress only is no loss: no error, no second resume', async () => {
  const { client, Socket, seen } = setup({ gapTimeout: 5 });
  const s1 = await socket(Socket, 0);
  s1.open();
  s1.push({ type: 'resumed', seq: 0, replayed: 0 }, ev(1, { jobId: 'a' }), ev(2, { jobId: 'b' }));
  s1.drop();
  const s2 = await socket(Socket, 1);
  s2.open();
  assert.deepEqual(s2.sent, [{ action: 'resume', since: 2 }]);
  // Missed: a's progress at 3, 5 and 7, b's at 4, b's job_complete at 6, c's
  // progress at 8 and 9. The replay keeps a's latest (7), b's job_complete,
  // c's latest (9); a live event 10 overtakes the replay.
  const done = { type: 'job_complete', jobId: 'b', status: 'completed', organized: 4, failed: 0, id: 'e6', seq: 6 };
  s2.push(ev(10, { jobId: 'a' }), { type: 'replay', events: [done, ev(7, { jobId: 'a' }), ev(9, { jobId: 'c' })] }, { type: 'resumed', seq: 9, replayed: 3 });
  assert.deepEqual(seen.map((e) => `${e.type} ${e.seq}`), ['job_progress 1', 'job_progress 2', 'job_complete 6', 'job_progress 7', 'job_progress 9', 'job_progress 10']);
  assert.equal(client.seq, 10);
  // Nothing is missing: no resume is sent again after gapTimeout (waiting
  // for something not to happen takes a wait: ten gap timeouts).
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(s2.sent.length, 1, 'a seq the replay passed over was asked for again');
  assert.ok(!seen.some((e) => e.type === 'error'));

  // An event still being stored when the replay was read comes late, live:
  // delivered once. A superseded progress that comes late is not.
  s2.push(ev(8, { jobId: 'd' }), ev(8, { jobId: 'd' }), ev(5, { jobId: 'a' }), ev(4, { jobId: 'e', id: 'e1' }));
  assert.deepEqual(seen.slice(6).map((e) => `${e.jobId} ${e.seq}`), ['d 8']);
  client.close();
});

test('against a server without resume, delivers events in arrival order and hides the refused resume', async () => {
  const { client, Socket, seen } = setup();
  const s = await socket(Socket, 0);
  s.open();
  s.push({ type: 'error', error: 'unknown action "resume" (supported: ping)', code: 'BAD_REQUEST' });
  const progress = { type: 'job_progress', jobId: 'j', progress: 1, processedCount: 1, totalCount: 2, currentFile: 'a' };
  const failed = { type: 'error', jobId: 'j', error: 'Permission denied', code: 'PERMISSION_ERROR' };
  s.push(progress, failed, { ...progress, id: 'x' }, { ...progress, id: 'x' });
  assert.deepEqual(seen, [progress, failed, { ...progress, id: 'x' }]);
  assert.equal(client.seq, null);
  client.close();
});

test('pings at pingInterval, and replaces a connection that stops answering', async () => {
  const { client, Socket, states } = setup({ pingInterval: 5, pongTimeout: 20 });
  const s1 = await socket(Socket, 0);
  s1.open();
  s1.push({ type: 'resumed', seq: 0, replayed: 0 });
  await until(() => s1.sent.some((m) => m.action === 'ping'), 'a ping');
  s1.push({ type: 'pong' });
  // s1 now stays silent: the client gives up on it after pongTimeout.
  const s2 = await socket(Socket, 1);
  assert.ok(s1.closedByClient);
  assert.deepEqual(states, ['open', 'connecting']);
  s2.open();
  assert.equal(client.state, 'open');
  client.close();
});

test('reconnects with growing, jittered delays while the handshake fails, with a fresh client id each time in a browser', async () => {
  const { client, Socket } = setup({ minDelay: 2, maxDelay: 16, maxFailures: 100 });
  const started = [];
  for (let i = 0; i < 6; i++) {
    const s = await socket(Socket, i);
    started.push(Date.now());
    s.fail();
  }
  const paths = new Set(Socket.made.slice(0, 6).map((s) => s.url.pathname));
  assert.equal(paths.size, 6, 'a browser cannot tell a 409 apart: every retry takes a fresh id');
  // Delays 1-2, 2-4, 4-8, 8-16, 8-16 ms (equal jitter, capped at maxDelay).
  const gaps = started.slice(1).map((t, i) => t - started[i]);
  assert.ok(gaps[3] >= 8, `delays grow: ${gaps}`);
  client.close();
});

test('in a browser, stops after maxFailures failed handshakes in a row, with CONNECT_FAILED', async () => {
  const { client, Socket, seen, states } = setup({ maxFailures: 3 });
  for (let i = 0; i < 3; i++) (await socket(Socket, i)).fail();
  await until(() => client.state === 'closed', 'the client to stop');
  assert.equal(seen.at(-1).code, 'CONNECT_FAILED');
  assert.equal(states.at(-1), 'closed');
  assert.equal(Socket.made.length, 3);
});

test('in a browser that is offline, failed handshakes do not count toward maxFailures', async () => {
  const had = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
  Object.defineProperty(globalThis, 'navigator', { value: { onLine: false }, configurable: true, writable: true });
  try {
    const { client, Socket } = setup({ maxFailures: 2 });
    for (let i = 0; i < 4; i++) (await socket(Socket, i)).fail();
    // Back online: the count starts from nothing.
    globalThis.navigator.onLine = true;
    (await socket(Socket, 4)).fail();
    await socket(Socket, 5);
    assert.equal(client.state, 'connecting');
    client.close();
  } finally {
    if (had) Object.defineProperty(globalThis, 'navigator', had);
    else delete globalThis.navigator;
  }
});

for (const [status, code] of [[401, 'UNAUTHORIZED'], [403, 'FORBIDDEN']]) {
  test(`with ws, a ${status} stops the client at once with ${code}`, async () => {
    const { client, Socket, seen } = setup({}, NodeSocket);
    (await socket(Socket, 0)).refuse(status);
    assert.equal(client.state, 'closed');
    assert.equal(seen.at(-1).code, code);
    await new Promise((r) => setTimeout(r, 20)); // longer than maxDelay: no retry may come
    assert.equal(Socket.made.length, 1);
  });
}

test('with ws, a 409 retries with a fresh client id; other failures keep the id and never give up', async () => {
  const { client, Socket } = setup({ clientId: 'mine', maxFailures: 1 }, NodeSocket);
  (await socket(Socket, 0)).refuse(409);
  const s1 = await socket(Socket, 1);
  assert.notEqual(s1.url.pathname, '/api/v1/ws/mine');
  s1.refuse(503);
  const s2 = await socket(Socket, 2);
  assert.equal(s2.url.pathname, s1.url.pathname);
  s2.fail(); // a network error: no status
  const s3 = await socket(Socket, 3);
  s3.open();
  assert.equal(client.state, 'open');
  client.close();
});

test('a state listener that closes the client leaves no reconnect behind', async () => {
  const { client, Socket } = setup();
  client.on('state', (s) => {
    if (s === 'connecting') client.close();
  });
  const s = await socket(Socket, 0);
  s.open();
  s.drop();
  assert.equal(client.state, 'closed');
  await new Promise((r) => setTimeout(r, 20)); // longer than maxDelay: no retry may come
  assert.equal(Socket.made.length, 1);
});

test('calls a token function before every attempt', async () => {
  let n = 0;
  const { client, Socket } = setup({ token: async () => `t${++n}` });
  (await socket(Socket, 0)).fail();
  const s = await socket(Socket, 1);
  assert.equal(s.url.searchParams.get('token'), 't2');
  client.close();
});

test('a listener that throws does not keep the event from the others', async () => {
  const thrown = [];
  const onUncaught = (err) => {
    thrown.push(err.message);
    changed();
  };
  process.prependListener('uncaughtException', onUncaught);
  const listeners = process.listeners('uncaughtException').filter((l) => l !== onUncaught);
  process.removeAllListeners('uncaughtException');
  process.on('uncaughtException', onUncaught);
  try {
    const { client, Socket, seen } = setup();
    client.on('job_progress', () => {
      throw new Error('app bug');
    });
    const s = await socket(Socket, 0);
    s.open();
    s.push({ type: 'resumed', seq: 0, replayed: 0 }, ev(1), ev(2));
    assert.deepEqual(seen.map((e) => e.seq), [1, 2]);
    await until(() => thrown.length === 2, 'the listener errors reported');
    assert.deepEqual(thrown, ['app bug', 'app bug']);
    client.close();
  } finally {
    process.removeListener('uncaughtException', onUncaught);
    for (const l of listeners) process.on('uncaughtException', l);
  }
});

// ---- the fresh resume (no seq yet): the snapshot is buffered until 'resumed' ----

test('a fresh resume delivers one event per seq, even when two of the snapshot share a seq', async () => {
  const { client, Socket, ids } = setup();
  const s = await socket(Socket, 0);
  s.open();
  // Two events under one seq (different ids): only the first is the one at that seq.
  s.push(ev(4, { jobId: 'a', id: 'first' }), ev(4, { jobId: 'a', id: 'again' }), { type: 'resumed', seq: 4, replayed: 2 });
  assert.deepEqual(ids(), ['first']);
  assert.equal(client.seq, 4);
  client.close();
});

test('a fresh resume holds back a live event past the head until the events before it arrive', async () => {
  const { client, Socket, seen } = setup({ gapTimeout: 60000 });
  const s = await socket(Socket, 0);
  s.open();
  // 12 arrives live before 'resumed' says the snapshot ends at 10; 11 comes after.
  s.push(ev(4), ev(12), { type: 'resumed', seq: 10, replayed: 1 });
  assert.deepEqual(seen.map((e) => e.seq), [4], 'seq 12 must wait for 11');
  s.push(ev(11));
  assert.deepEqual(seen.map((e) => e.seq), [4, 11, 12]);
  client.close();
});

test('a fresh resume delivers an event at or below the head that its snapshot could not carry, once, when it arrives', async () => {
  const { client, Socket, ids } = setup({ gapTimeout: 60000 });
  const s = await socket(Socket, 0);
  s.open();
  // The snapshot, as of head 6, holds job a's progress at 3; seq 5 was
  // numbered but still being stored when it was read (its publisher runs
  // elsewhere in the cloud) and arrives live after 'resumed'.
  s.push(ev(3, { jobId: 'a', id: 'a-3' }), { type: 'resumed', seq: 6, replayed: 1 });
  assert.equal(client.seq, 6);
  s.push(ev(5, { jobId: 'b', id: 'b-5', type: 'job_complete' }), ev(5, { jobId: 'b', id: 'b-5', type: 'job_complete' }));
  // A progress of job a older than the one delivered is superseded; 7 is next.
  s.push(ev(2, { jobId: 'a', id: 'a-2' }), ev(7, { jobId: 'c', id: 'c-7' }));
  assert.deepEqual(ids(), ['a-3', 'b-5', 'c-7']);
  client.close();
});

test('events held back are dropped when their seq was delivered or is held already', async () => {
  const { client, Socket, ids } = setup({ gapTimeout: 20 });
  const s = await socket(Socket, 0);
  s.open();
  s.push(ev(9, { id: 'nine' }), ev(13, { id: 'early' }), ev(13, { id: 'early-twin' }), { type: 'resumed', seq: 10, replayed: 1 });
  // The snapshot's seq again, under another id, and 13 again: none is new.
  s.push(ev(9, { id: 'nine-again' }), ev(13, { id: 'early-again' }), ev(11, { id: 'eleven' }), ev(12, { id: 'twelve' }));
  assert.deepEqual(ids(), ['nine', 'eleven', 'twelve', 'early']);
  assert.equal(client.seq, 13);
  // Nothing is missing now: no event may stay held (one would be asked for
  // again after gapTimeout). Waiting for something not to happen takes a
  // wait: five gap timeouts.
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(s.sent, [{ action: 'resume' }], 'a held-back duplicate stayed pending and was asked for again');
  client.close();
});

// ---- replay messages, backoff, failed resumes ----

test('unpacks replay messages into events, in seq order, once each', async () => {
  const { client, Socket, seen } = setup();
  const s1 = await socket(Socket, 0);
  s1.open();
  s1.push({ type: 'resumed', seq: 2, replayed: 0 });
  s1.drop();
  const s2 = await socket(Socket, 1);
  s2.open();
  s2.push({ type: 'replay', events: [ev(3), ev(4)] }, { type: 'replay', events: [ev(4), ev(5)] }, { type: 'resumed', seq: 5, replayed: 3 }, ev(6));
  assert.deepEqual(seen.map((e) => e.seq), [3, 4, 5, 6]);
  client.close();
});

test('the reconnect delay starts again after a connection that stayed open and carried messages, without resumed', async () => {
  const { client, Socket } = setup({ minDelay: 40, maxDelay: 10000, stableAfter: 30, maxResumeFailures: 100 });
  const s1 = await socket(Socket, 0);
  s1.open();
  s1.push({ type: 'resumed', seq: 0, replayed: 0 });
  // Five connections that end at once, each before its resume completes:
  // the next delay would be 640-1280 ms.
  let s = s1;
  for (let i = 1; i <= 5; i++) {
    s.drop(1013);
    s = await socket(Socket, i);
    s.open();
  }
  // This one carries events for longer than stableAfter, then ends.
  s.push(ev(1));
  await new Promise((resolve) => setTimeout(resolve, 60));
  s.drop(1013);
  const dropped = Date.now();
  await socket(Socket, 6);
  const delay = Date.now() - dropped;
  assert.ok(delay < 250, `the delay after a healthy connection was ${delay} ms; want minDelay's 20-40 ms`);
  client.close();
});

test('connections that end before their resume completes end in RESUME_FAILED, then a fresh start', async () => {
  const { client, Socket, seen } = setup({ maxResumeFailures: 2 });
  const s1 = await socket(Socket, 0);
  s1.open();
  s1.push({ type: 'resumed', seq: 5, replayed: 0 });
  s1.drop();
  const s2 = await socket(Socket, 1);
  s2.open();
  assert.deepEqual(s2.sent, [{ action: 'resume', since: 5 }]);
  s2.push({ type: 'replay', events: [ev(6)] });
  s2.drop(1013);
  const s3 = await socket(Socket, 2);
  s3.open();
  assert.deepEqual(s3.sent, [{ action: 'resume', since: 6 }]);
  s3.drop(1013);
  assert.deepEqual(seen.map((e) => e.code ?? e.seq), [6, 'RESUME_FAILED']);
  const s4 = await socket(Socket, 3);
  s4.open();
  assert.deepEqual(s4.sent, [{ action: 'resume' }], 'after RESUME_FAILED, the current state');
  s4.push(ev(9, { jobId: 'b' }), { type: 'resumed', seq: 9, replayed: 1 });
  assert.deepEqual(seen.map((e) => e.code ?? e.seq), [6, 'RESUME_FAILED', 9]);
  client.close();
});

test('a resume answered with an error, or by API Gateway for a failed function, connects again and resumes over the new connection', async () => {
  const { client, Socket, seen } = setup();
  const s1 = await socket(Socket, 0);
  s1.open();
  assert.deepEqual(s1.sent, [{ action: 'resume' }]);
  s1.push({ type: 'error', error: 'internal error', code: 'INTERNAL' });
  assert.ok(s1.closedByClient, 'the connection whose resume failed is closed');
  const s2 = await socket(Socket, 1);
  s2.open();
  assert.deepEqual(s2.sent, [{ action: 'resume' }], 'a fresh start asks for the current state again');
  s2.push({ type: 'resumed', seq: 5, replayed: 0 }, ev(6));
  s2.push({ type: 'error', error: 'this connection is no longer registered', code: 'NOT_REGISTERED' });
  // Not a resume's answer: nothing was asked. A gap resume is, later.
  assert.ok(!s2.closedByClient, 'an error while no resume awaits its answer closes nothing');
  s2.drop();
  const s3 = await socket(Socket, 2);
  s3.open();
  assert.deepEqual(s3.sent, [{ action: 'resume', since: 6 }]);
  s3.push({ type: 'error', error: 'this connection is no longer registered', code: 'NOT_REGISTERED' });
  const s4 = await socket(Socket, 3);
  s4.open();
  assert.deepEqual(s4.sent, [{ action: 'resume', since: 6 }]);
  // API Gateway's answer for a function that failed or timed out.
  s4.push({ message: 'Internal server error', connectionId: 'c', requestId: 'r' });
  const s5 = await socket(Socket, 4);
  s5.open();
  assert.deepEqual(s5.sent, [{ action: 'resume', since: 6 }]);
  s5.push({ type: 'replay', events: [ev(7)] }, { type: 'resumed', seq: 7, replayed: 1 });
  assert.deepEqual(seen.map((e) => e.code ?? e.seq), [6, 'NOT_REGISTERED', 7], 'resume errors are not the application\'s; other errors are');
  client.close();
});

test('refuses options it cannot work with', () => {
  assert.throws(() => connect({ token: 'k' }), /url is required/);
  assert.throws(() => connect({ url: 'ws://x' }), /token is required/);
  assert.throws(() => connect({ url: 'ws://x', token: 'k', WebSocket: null, pingInterval: -1 }), /WebSocket|pingInterval/);
  assert.throws(() => connect({ url: 'ws://x', token: 'k', WebSocket: FakeSocket, pingInterval: 'soon' }), /pingInterval/);
  assert.equal(defaults.pingInterval, 5 * 60 * 1000);
  assert.equal(defaults.stableAfter, 10 * 1000);
  assert.equal(defaults.maxResumeFailures, 3);
});
