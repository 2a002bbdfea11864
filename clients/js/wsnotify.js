// wsnotify.js: the client for the wsnotify WebSocket API, as one
// dependency-free ES module for browsers and Node.js.
//
//   import { connect } from './wsnotify.js';
//   const client = connect({ url: 'ws://localhost:8000', token: 'API_KEY' });
//   client.on('job_progress', (event) => render(event));
//   client.on('state', (state) => showState(state));
//
// It keeps one connection alive for the application: it reconnects with
// jittered exponential backoff, pings within API Gateway's 10-minute idle
// limit, resumes from the last event it delivered after every reconnect and
// hands each event to the application exactly once, in `seq` order. See
// wsnotify.d.ts for the API and README.md for how refused handshakes are told
// apart in browsers and in Node.js.

/** Defaults of the options of connect(). */
export const defaults = Object.freeze({
  pingInterval: 5 * 60 * 1000, // under API Gateway's 10-minute idle timeout
  pongTimeout: 30 * 1000,
  minDelay: 500,
  maxDelay: 30 * 1000,
  maxFailures: 10,
  gapTimeout: 5 * 1000,
  stableAfter: 10 * 1000,
  maxResumeFailures: 3,
});

// How many event ids are remembered to drop a redelivered event.
const recentIds = 10000;

// How many runs of skipped seqs, and jobs' latest seqs, are remembered for
// events that arrive late (see #late).
const recentSkips = 1000;
// freshSkips is how many of the latest seqs a resume without since
// remembers as skipped when its snapshot does not carry them.
const freshSkips = 64;

// WebSocket readyState OPEN, the same in browsers and in ws.
const OPEN = 1;

// Decodes a binary frame's UTF-8 text.
const decoder = new TextDecoder();

/**
 * Connects to wsnotify and keeps the connection until close() is called.
 * @param {import('./wsnotify').ConnectOptions} options
 * @returns {import('./wsnotify').Client}
 */
export function connect(options) {
  return new Client(options);
}

class Client {
  #opts;
  #WebSocket;
  #listeners = new Map(); // type -> Set of functions
  #state = 'connecting';
  #stopped = false; // close() was called, or the server refused for good
  #clientId;
  #conn = null; // the current connection: {ws, opened, status, canSeeStatus}
  #retry = null; // the reconnect timer
  #attempt = 0; // reconnects since the last healthy connection
  #failures = 0; // consecutive handshakes that failed before 'open'
  #resumeFailures = 0; // consecutive connections that ended before 'resumed'
  #pingTimer = null;
  #pongTimer = null;

  // Delivery: the highest seq delivered, events held back until the gap
  // before them is filled, and the ids of recent events.
  #seq = null;
  #pending = new Map(); // seq -> event
  #seen = new Set();
  #skipped = []; // [from, to] runs of seqs passed over below #seq, oldest first
  #jobSeq = new Map(); // jobId -> the seq of the job's latest event delivered
  #resuming = null; // {fresh, buffer} while a resume awaits its 'resumed'
  #resumedSeq = 0; // the head seq the last 'resumed' announced
  #gapTimer = null;
  #gapResumed = false; // a resume was sent to fill the current gap

  constructor(options) {
    if (!options || typeof options.url !== 'string' || options.url === '') {
      throw new TypeError('wsnotify: options.url is required, e.g. "ws://localhost:8000"');
    }
    if (typeof options.token !== 'string' && typeof options.token !== 'function') {
      throw new TypeError('wsnotify: options.token is required: an API key, a signed token, or a function returning one');
    }
    this.#WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (typeof this.#WebSocket !== 'function') {
      throw new TypeError('wsnotify: no WebSocket implementation: pass options.WebSocket (in Node.js 20, the ws package)');
    }
    this.#opts = { ...defaults };
    for (const name of Object.keys(defaults)) {
      const v = options[name];
      if (v === undefined) continue;
      if (typeof v !== 'number' || !(v >= 0)) {
        throw new TypeError(`wsnotify: options.${name} must be a number >= 0`);
      }
      this.#opts[name] = v;
    }
    this.#opts.url = options.url.replace(/\/+$/, '');
    this.#opts.token = options.token;
    this.#clientId = options.clientId ?? randomId();
    // Connect once the caller has had the chance to add listeners.
    queueMicrotask(() => this.#dial());
  }

  get state() {
    return this.#state;
  }

  get clientId() {
    return this.#clientId;
  }

  get seq() {
    return this.#seq;
  }

  on(type, listener) {
    if (typeof listener !== 'function') throw new TypeError('wsnotify: a listener must be a function');
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(listener);
    return () => this.off(type, listener);
  }

  off(type, listener) {
    this.#listeners.get(type)?.delete(listener);
  }

  close() {
    if (this.#stopped) return;
    this.#stop();
    this.#setState('closed');
  }

  // ---- connection life ----

  async #dial() {
    if (this.#stopped) return;
    this.#setState('connecting');
    let token = this.#opts.token;
    if (typeof token === 'function') {
      try {
        token = await token();
      } catch (err) {
        // Treated as a failed handshake: tried again with backoff.
        this.#emitError('CONNECT_FAILED', `token: ${err?.message ?? err}`);
        this.#ended({ opened: false, status: null, canSeeStatus: true });
        return;
      }
      if (this.#stopped) return;
    }
    const url = `${this.#opts.url}/api/v1/ws/${encodeURIComponent(this.#clientId)}?token=${encodeURIComponent(String(token))}`;
    const conn = { ws: null, opened: false, status: null, canSeeStatus: false, received: 0, stable: null };
    try {
      conn.ws = new this.#WebSocket(url);
    } catch (err) {
      // A malformed URL: retrying cannot help.
      this.#giveUp('CONNECT_FAILED', `cannot connect to ${this.#opts.url}: ${err?.message ?? err}`);
      return;
    }
    this.#conn = conn;
    const ws = conn.ws;
    // Node's ws reports a refused handshake's HTTP status; a browser's
    // WebSocket cannot (see README.md, "Refused handshakes").
    if (typeof ws.on === 'function') {
      conn.canSeeStatus = true;
      ws.on('unexpected-response', (req, res) => {
        conn.status = res.statusCode;
        res.resume?.();
        ws.terminate(); // then 'close' follows
      });
    }
    ws.addEventListener('open', () => {
      if (conn !== this.#conn) return;
      conn.opened = true;
      this.#failures = 0;
      this.#setState('open');
      if (conn !== this.#conn) return; // a state listener closed the client
      this.#resume(this.#seq === null);
      this.#pingTimer = setInterval(() => this.#ping(conn), this.#opts.pingInterval);
      // A connection open for stableAfter that has carried messages is
      // healthy whether or not its resume has ended: the backoff starts
      // again from minDelay after it.
      conn.stable = setTimeout(() => {
        if (conn === this.#conn && conn.received > 0) this.#attempt = 0;
      }, this.#opts.stableAfter);
    });
    ws.addEventListener('message', (msg) => {
      if (conn !== this.#conn) return;
      conn.received++;
      this.#receive(msg.data);
    });
    ws.addEventListener('error', () => {}); // 'close' follows and says what to do
    ws.addEventListener('close', () => {
      if (conn !== this.#conn) return;
      this.#ended(conn);
    });
  }

  // #ended decides what follows the end of a connection (or of an attempt).
  #ended(conn) {
    const resuming = this.#resuming !== null;
    this.#dropConn();
    if (this.#stopped) return;
    if (conn.opened && resuming && this.#resumeFailures++ + 1 >= this.#opts.maxResumeFailures) {
      // Resume after resume ended before 'resumed' (a replay this client
      // cannot take, or a server closing it): say so, and start again from
      // the current state rather than loop.
      this.#resumeFailures = 0;
      this.#seq = null;
      this.#pending.clear();
      this.#resumedSeq = 0;
      this.#emitError('RESUME_FAILED',
        `${this.#opts.maxResumeFailures} connections in a row ended before their resume completed: events were missed; reload the state`);
      if (this.#stopped) return; // an error listener closed the client
    }
    if (!conn.opened) {
      // Only where the status is unknown does a run of failures mean
      // anything, and not while the browser knows it is offline.
      if (!conn.canSeeStatus && !offline()) this.#failures++;
      if (conn.status === 401 || conn.status === 403) {
        this.#giveUp(conn.status === 401 ? 'UNAUTHORIZED' : 'FORBIDDEN',
          `connection refused with ${conn.status}: check the token`);
        return;
      }
      // 409: a previous connection of this client id is still registered.
      // A browser cannot see the status, so it takes a fresh id after any
      // failed handshake; resuming does not depend on the client id.
      if (conn.status === 409 || !conn.canSeeStatus) {
        this.#clientId = randomId();
      }
      if (this.#failures >= this.#opts.maxFailures) {
        this.#giveUp('CONNECT_FAILED',
          `${this.#failures} connection attempts failed before opening: the token may be refused, or the server unreachable`);
        return;
      }
    }
    this.#setState('connecting');
    if (this.#stopped) return; // a state listener closed the client
    const cap = Math.min(this.#opts.maxDelay, this.#opts.minDelay * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    // Equal jitter: at least half the step, so a crowd of clients that lost
    // the same server spreads out without any of them retrying at once.
    const delay = cap / 2 + Math.random() * (cap / 2);
    this.#retry = setTimeout(() => {
      this.#retry = null;
      this.#dial();
    }, delay);
  }

  // #dropConn forgets the current connection and its timers; a late event
  // from it is ignored. A resume in flight dies with it: the next
  // connection resumes from what was delivered.
  #dropConn() {
    const conn = this.#conn;
    this.#conn = null;
    if (conn) clearTimeout(conn.stable);
    clearInterval(this.#pingTimer);
    clearTimeout(this.#pongTimer);
    clearTimeout(this.#gapTimer);
    this.#pingTimer = this.#pongTimer = this.#gapTimer = null;
    this.#resuming = null;
    this.#gapResumed = false;
    if (conn) {
      try {
        if (conn.ws.readyState <= OPEN) conn.ws.close(1000, 'client closed');
      } catch {
        // already closing
      }
    }
  }

  #stop() {
    this.#stopped = true;
    clearTimeout(this.#retry);
    this.#retry = null;
    this.#dropConn();
  }

  // #giveUp stops for good on a failure retrying cannot mend, and tells
  // the application why.
  #giveUp(code, error) {
    this.#stop();
    this.#emitError(code, error);
    this.#setState('closed');
  }

  #send(conn, msg) {
    if (conn.ws.readyState === OPEN) conn.ws.send(JSON.stringify(msg));
  }

  // #ping keeps the connection alive (API Gateway counts only messages from
  // the client) and checks that it still carries data: a connection whose
  // peer vanished, after a network change, shows no error for minutes.
  #ping(conn) {
    this.#send(conn, { action: 'ping' });
    if (this.#pongTimer === null) {
      this.#pongTimer = setTimeout(() => {
        if (conn === this.#conn) this.#ended(conn);
      }, this.#opts.pongTimeout);
    }
  }

  #resume(fresh) {
    this.#resuming = { fresh, since: this.#seq, buffer: [] };
    this.#send(this.#conn, fresh ? { action: 'resume' } : { action: 'resume', since: this.#seq });
  }

  // ---- messages ----

  #receive(data) {
    clearTimeout(this.#pongTimer);
    this.#pongTimer = null;
    let msg;
    try {
      msg = JSON.parse(typeof data === 'string' ? data : decoder.decode(data));
    } catch {
      return; // not JSON: not for us
    }
    if (msg?.type === 'replay' && Array.isArray(msg.events)) {
      // Replayed events, packed: each as if it came alone.
      for (const ev of msg.events) this.#handle(ev);
      return;
    }
    this.#handle(msg);
  }

  #handle(msg) {
    if (msg !== null && typeof msg === 'object' && msg.type === undefined && typeof msg.message === 'string' &&
        this.#resuming && this.#conn) {
      // API Gateway's own answer when the function behind client messages
      // failed or timed out ({"message":"Internal server error",…}): the
      // resume will not complete. Connect again, as for an error answer.
      this.#ended(this.#conn);
      return;
    }
    if (msg === null || typeof msg !== 'object' || typeof msg.type !== 'string') return;
    // Replies to the client's own messages carry no id ('resumed' has a
    // seq: the head it caught up to).
    if (msg.id === undefined) {
      if (msg.type === 'pong') return;
      if (msg.type === 'resumed') return this.#resumed(msg);
      if (msg.type === 'error' && msg.code === 'RESUME_GAP') return this.#gap(msg);
      if (msg.type === 'error' && msg.code === 'BAD_REQUEST' && this.#resuming) {
        // A server without resume: events come live only, in arrival order.
        this.#resuming = null;
        this.#attempt = 0;
        return;
      }
      if (msg.type === 'error' && this.#resuming && this.#conn) {
        // The server could not serve the resume (INTERNAL: its store
        // failed; NOT_REGISTERED: this connection lost its record, and the
        // server closes it). No 'resumed' will come: connect again, and
        // resume over the new connection, as after any connection that
        // ended before its resume completed.
        this.#ended(this.#conn);
        return;
      }
    }
    if (!isSeq(msg.seq)) {
      // Addressed to this client alone, or from a server without seq.
      this.#deliver(msg);
      return;
    }
    if (this.#resuming?.fresh) {
      // The current state of unfinished jobs: ordered once 'resumed' says
      // where the snapshot ends.
      this.#resuming.buffer.push(msg);
      return;
    }
    this.#hold(msg);
  }

  // #hold delivers an owner-wide event in seq order: an early one waits
  // until the events before it arrive.
  #hold(ev) {
    if (this.#seq === null) this.#seq = ev.seq - 1;
    if (ev.seq <= this.#seq) return this.#late(ev);
    if (this.#pending.has(ev.seq)) return; // a duplicate
    this.#pending.set(ev.seq, ev);
    this.#drain();
  }

  // #late handles an event whose seq is behind the delivered ones. It is a
  // duplicate, unless its seq is one a resume passed over: then it is an
  // event that was still being stored when the replay was read (in the
  // cloud), delivered now, out of order, unless it is a job_progress of a
  // job whose later event was delivered (it is superseded).
  #late(ev) {
    if (!this.#unskip(ev.seq)) return;
    const job = typeof ev.jobId === 'string' ? this.#jobSeq.get(ev.jobId) : undefined;
    if (ev.type === 'job_progress' && job !== undefined && job > ev.seq) return;
    this.#deliver(ev);
  }

  // #skipTo passes over every seq up to head that the replay did not send:
  // the events held back up to there are delivered in seq order, and the
  // seqs between them are remembered as skipped (see #late).
  #skipTo(head) {
    for (;;) {
      let next = Infinity;
      for (const seq of this.#pending.keys()) if (seq < next) next = seq;
      if (next > head) break;
      if (next > this.#seq + 1) this.#skip(this.#seq + 1, next - 1);
      this.#seq = next - 1;
      this.#drain();
      if (this.#stopped) return;
    }
    if (head > this.#seq) {
      this.#skip(this.#seq + 1, head);
      this.#seq = head;
    }
    this.#drain();
  }

  #skip(from, to) {
    this.#skipped.push([from, to]);
    if (this.#skipped.length > recentSkips) this.#skipped.shift();
  }

  // #unskip reports whether seq was skipped, and forgets it.
  #unskip(seq) {
    const i = this.#skipped.findIndex(([from, to]) => from <= seq && seq <= to);
    if (i < 0) return false;
    const [from, to] = this.#skipped[i];
    const rest = [];
    if (from < seq) rest.push([from, seq - 1]);
    if (seq < to) rest.push([seq + 1, to]);
    this.#skipped.splice(i, 1, ...rest);
    return true;
  }

  #drain() {
    while (!this.#stopped && this.#pending.has(this.#seq + 1)) {
      const ev = this.#pending.get(this.#seq + 1);
      this.#pending.delete(this.#seq + 1);
      this.#seq++;
      this.#deliver(ev);
    }
    this.#watchGap();
  }

  #resumed(msg) {
    const r = this.#resuming;
    this.#resuming = null;
    this.#attempt = 0; // the server has answered: this connection is healthy
    this.#resumeFailures = 0;
    const head = Number.isSafeInteger(msg.seq) && msg.seq >= 0 ? msg.seq : null;
    if (r?.fresh) {
      r.buffer.sort((a, b) => a.seq - b.seq);
      const before = this.#seq ?? 0;
      const sent = new Set();
      for (const ev of r.buffer) {
        if (head !== null && ev.seq > head) break;
        sent.add(ev.seq);
        if (this.#seq === null || ev.seq > this.#seq) {
          this.#seq = ev.seq;
          this.#deliver(ev);
        }
      }
      this.#seq = Math.max(this.#seq ?? 0, head ?? 0);
      // The snapshot is the running jobs' state as of head, so the seqs up
      // to head it does not carry are passed over. One of the latest may be
      // an event still being stored when the snapshot was read (in the
      // cloud its publisher runs elsewhere), which arrives live later:
      // remember them as skipped, so that it is delivered then (see #late).
      let run = null;
      for (let seq = Math.max(before + 1, this.#seq - freshSkips + 1); seq <= this.#seq; seq++) {
        if (!sent.has(seq)) {
          if (run === null) run = [seq, seq];
          else run[1] = seq;
        } else if (run !== null) {
          this.#skip(run[0], run[1]);
          run = null;
        }
      }
      if (run !== null) this.#skip(run[0], run[1]);
      this.#resumedSeq = this.#seq;
      for (const ev of r.buffer) if (ev.seq > this.#seq) this.#hold(ev);
    } else if (head !== null && r && head < r.since) {
      // The server's numbering went back: it lost its history (local mode
      // restarted on its in-memory store). Nothing it sends can fill the
      // gap, and its new events start low: follow it, and tell the
      // application to reload its state.
      this.#pending.clear();
      this.#seq = this.#resumedSeq = head;
      this.#emitError('RESUME_GAP', `the server's events restarted at ${head}: reload the state`, { oldestSeq: head + 1 });
    } else if (head !== null && r) {
      // The replay holds every event up to head that the server keeps and
      // this client had not had. A seq it left out has no event to wait
      // for: a job_progress a later event of its job superseded (a replay
      // sends each job's latest progress only), a seq no event got, or an
      // event still being stored, which comes live later (see #late).
      this.#resumedSeq = Math.max(this.#resumedSeq, head);
      this.#skipTo(head);
    } else if (head !== null) {
      this.#resumedSeq = Math.max(this.#resumedSeq, head);
    }
    this.#watchGap();
  }

  // #gap handles RESUME_GAP: the server no longer holds every event since
  // the one asked for. It sends the events from oldestSeq on; the
  // application hears of the gap as an 'error' event and reloads its state.
  #gap(msg) {
    const oldest = Number.isSafeInteger(msg.oldestSeq) ? msg.oldestSeq : null;
    if (oldest !== null && (this.#seq === null || this.#seq < oldest - 1)) {
      this.#seq = oldest - 1;
      for (const seq of this.#pending.keys()) if (seq <= this.#seq) this.#pending.delete(seq);
    }
    this.#emit('error', msg);
    this.#drain();
  }

  // #watchGap: while an event is missing, wait gapTimeout for it; then ask
  // the server again (resume from the last delivered), and if it still does
  // not come, skip it and tell the application, as for RESUME_GAP.
  #watchGap() {
    const missing = this.#seq !== null && (this.#pending.size > 0 || this.#resumedSeq > this.#seq);
    if (!missing || this.#resuming) {
      clearTimeout(this.#gapTimer);
      this.#gapTimer = null;
      if (!missing) this.#gapResumed = false;
      return;
    }
    if (this.#gapTimer !== null || !this.#conn?.opened) return;
    this.#gapTimer = setTimeout(() => {
      this.#gapTimer = null;
      if (!this.#gapResumed) {
        this.#gapResumed = true;
        this.#resume(false);
        return;
      }
      const next = this.#pending.size > 0 ? Math.min(...this.#pending.keys()) : this.#resumedSeq + 1;
      this.#emitError('RESUME_GAP', `events ${this.#seq + 1} to ${next - 1} were not received`, { oldestSeq: next });
      this.#seq = next - 1;
      this.#gapResumed = false;
      this.#drain();
    }, this.#opts.gapTimeout);
  }

  // #deliver hands one event to the application unless its id was seen.
  #deliver(ev) {
    if (typeof ev.id === 'string') {
      if (this.#seen.has(ev.id)) return;
      this.#seen.add(ev.id);
      if (this.#seen.size > recentIds) this.#seen.delete(this.#seen.values().next().value);
    }
    if (isSeq(ev.seq) && typeof ev.jobId === 'string' && !(this.#jobSeq.get(ev.jobId) > ev.seq)) {
      this.#jobSeq.delete(ev.jobId); // the most recent last, for the bound
      this.#jobSeq.set(ev.jobId, ev.seq);
      if (this.#jobSeq.size > recentSkips) this.#jobSeq.delete(this.#jobSeq.keys().next().value);
    }
    this.#emit(ev.type, ev);
  }

  // ---- events to the application ----

  #setState(state) {
    if (this.#state === state) return;
    this.#state = state;
    this.#call('state', state);
  }

  #emitError(code, error, extra) {
    this.#emit('error', { type: 'error', error, code, ...extra });
  }

  #emit(type, ev) {
    this.#call(type, ev);
    this.#call('*', ev);
  }

  #call(type, arg) {
    const set = this.#listeners.get(type);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(arg);
      } catch (err) {
        // A failing listener must not break delivery to the others; its
        // error is reported as an uncaught one.
        setTimeout(() => {
          throw err;
        });
      }
    }
  }
}

function isSeq(v) {
  return Number.isSafeInteger(v) && v >= 1;
}

// offline reports whether a browser knows it has no network; a handshake
// that fails then says nothing about the token.
function offline() {
  return globalThis.navigator?.onLine === false;
}

// randomId returns a random (version 4) UUID. crypto.randomUUID exists only
// in secure contexts; a page on http://192.168.x.y is not one.
function randomId() {
  const c = globalThis.crypto;
  if (typeof c?.randomUUID === 'function') return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
