// Compiled (never run) by clients/js's Go test with tsc --strict: an
// application's use of the client, against wsnotify.d.ts. The lines marked
// as expected errors at the end must fail to compile.
import { connect, defaults, type Client, type Event, type State, type WebSocketConstructor } from '../wsnotify.js';

declare const BrowserWebSocket: typeof WebSocket; // lib.dom's, as a browser app has it
const ws: WebSocketConstructor = BrowserWebSocket;

const client: Client = connect({
  url: 'ws://localhost:8000',
  token: async () => 'signed-token',
  WebSocket: ws,
  pingInterval: defaults.pingInterval,
});
const off: () => void = client.on('job_progress', (e) => {
  const progress: number = e.progress;
  const file: string = e.currentFile;
  const seq: number | undefined = e.seq;
  void progress, file, seq;
});
client.on('job_complete', (e) => {
  const status: 'completed' | 'failed' | 'cancelled' = e.status;
  const counts: number = e.organized + e.failed;
  void status, counts;
});
client.on('file_uploaded', (e) => void (e.name.length + e.size));
client.on('error', (e) => {
  const code: string = e.code;
  const oldest: number | undefined = e.oldestSeq;
  void code, oldest;
});
client.on('*', (e: Event) => void e.type);
client.on('state', (s: State) => void s);
const last: number | null = client.seq;
const id: string = client.clientId;
void last, id;
off();
client.close();

// @ts-expect-error: progress is a number
client.on('job_progress', (e) => { const s: string = e.progress; void s; });
// @ts-expect-error: url is required
connect({ token: 'k' });
