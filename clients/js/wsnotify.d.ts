// Type declarations of wsnotify.js, the client for the wsnotify WebSocket API.

/** Fields every published event carries (once the server numbers events). */
export interface Published {
  /** Stable for one trigger record: a redelivered record has the same id. */
  id?: string;
  /**
   * Position among the owner's owner-wide events: +1 per event, no gaps.
   * Absent on an event addressed to this client alone.
   */
  seq?: number;
}

/** How far an organization job has come. */
export interface JobProgress extends Published {
  type: 'job_progress';
  jobId: string;
  /** 0 to 100. */
  progress: number;
  processedCount: number;
  totalCount: number;
  currentFile: string;
}

/** A job has finished. */
export interface JobComplete extends Published {
  type: 'job_complete';
  jobId: string;
  status: 'completed' | 'failed' | 'cancelled';
  organized: number;
  failed: number;
}

/** A new file. */
export interface FileUploaded extends Published {
  type: 'file_uploaded';
  fileId: string;
  name: string;
  /** Bytes. */
  size: number;
}

/**
 * An error. The server publishes them for failed operations (with a jobId);
 * the client adds its own, which carry neither id nor seq:
 * - `RESUME_GAP`: events were missed for good (the server no longer holds
 *   them, or its numbering restarted); `oldestSeq` is the first event the
 *   client delivers after the gap. Reload the application's state.
 * - `UNAUTHORIZED` / `FORBIDDEN`: the handshake was refused with 401 / 403
 *   (seen in Node.js with ws); the client stops ('closed').
 * - `CONNECT_FAILED`: in a browser, `maxFailures` handshakes in a row failed
 *   before opening while the browser was online; the client stops
 *   ('closed'). A browser cannot see a refused handshake's status, so this
 *   is how a refused token ends there (see README.md).
 * - `RESUME_FAILED`: `maxResumeFailures` connections in a row ended before
 *   their resume completed; the client goes on from the current state
 *   (events were missed: reload the application's state).
 * - `SLOW_CONSUMER` (from the server): the connection is closed because it
 *   did not read fast enough; the client reconnects and resumes.
 */
export interface ErrorEvent extends Published {
  type: 'error';
  jobId?: string;
  error: string;
  code: string;
  /** With code RESUME_GAP: the first seq delivered after the gap. */
  oldestSeq?: number;
}

/** Every event the client delivers. */
export type Event = JobProgress | JobComplete | FileUploaded | ErrorEvent;

/** The connection's state. 'closed' is final: after close(), 401/403 or CONNECT_FAILED. */
export type State = 'connecting' | 'open' | 'closed';

/** The event types, by name. */
export interface EventMap {
  job_progress: JobProgress;
  job_complete: JobComplete;
  file_uploaded: FileUploaded;
  error: ErrorEvent;
}

/** The part of a WebSocket the client uses: the browser's and ws's both fit. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'message' | 'error' | 'close', listener: (event: any) => void): void;
}

/** A WebSocket constructor: globalThis.WebSocket, or ws's WebSocket in Node.js. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface ConnectOptions {
  /** The service's base URL, e.g. 'ws://localhost:8000'; the client adds /api/v1/ws/{clientId}?token=…. */
  url: string;
  /**
   * An API key or a signed token, or a function that returns one (or a
   * promise of one), called before every connection attempt: a signed token
   * that expires is then fetched fresh for each reconnect.
   */
  token: string | (() => string | Promise<string>);
  /** The first connection's client id (default crypto.randomUUID()); a 409 or a failed browser handshake switches to a fresh one. */
  clientId?: string;
  /** Default globalThis.WebSocket. In Node.js 20, pass the ws package's WebSocket. */
  WebSocket?: WebSocketConstructor;
  /** Milliseconds between pings (default 5 minutes, under API Gateway's 10-minute idle limit). */
  pingInterval?: number;
  /** Milliseconds to wait for any message after a ping before the connection is taken as dead and replaced (default 30 s). */
  pongTimeout?: number;
  /** First reconnect delay step, in ms (default 500); each failure doubles it, with jitter. */
  minDelay?: number;
  /** Largest reconnect delay, in ms (default 30 s). */
  maxDelay?: number;
  /**
   * Where the handshake's HTTP status cannot be seen (browsers): failed
   * handshakes in a row, while online, after which the client stops with a
   * CONNECT_FAILED error (default 10, about a minute and a half of retries).
   * With ws in Node.js the status is seen: 401/403 stop at once, anything
   * else is retried without limit.
   */
  maxFailures?: number;
  /** Milliseconds an out-of-order event waits for the ones before it before they are asked for again, then skipped (default 5 s). */
  gapTimeout?: number;
  /** Milliseconds after which an open connection that has received messages counts as healthy: the reconnect delay starts again from minDelay (default 10 s; a completed resume counts at once). */
  stableAfter?: number;
  /** Connections in a row that end before their resume completes, after which the client reports RESUME_FAILED and goes on from the current state (default 3). */
  maxResumeFailures?: number;
}

/** Default values of the numeric options. */
export declare const defaults: Readonly<{
  pingInterval: number;
  pongTimeout: number;
  minDelay: number;
  maxDelay: number;
  maxFailures: number;
  gapTimeout: number;
  stableAfter: number;
  maxResumeFailures: number;
}>;

export interface Client {
  /** Current state. */
  readonly state: State;
  /** The client id of the current (or next) connection. */
  readonly clientId: string;
  /** The highest seq delivered so far (null before the first). */
  readonly seq: number | null;
  /**
   * Listens to one event type, to '*' (every event), or to 'state'. Each
   * event is delivered once, owner-wide events in seq order. Returns a
   * function that removes the listener.
   */
  on<K extends keyof EventMap>(type: K, listener: (event: EventMap[K]) => void): () => void;
  on(type: '*', listener: (event: Event) => void): () => void;
  on(type: 'state', listener: (state: State) => void): () => void;
  on(type: string, listener: (event: any) => void): () => void;
  /** Removes a listener added with on. */
  off(type: string, listener: (event: any) => void): void;
  /** Closes the connection for good; no reconnect follows. */
  close(): void;
}

/** Opens a connection (after the current task, so listeners added now see everything) and keeps it until close(). */
export declare function connect(options: ConnectOptions): Client;
