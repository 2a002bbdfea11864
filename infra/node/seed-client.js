// The client contract's original Node.js example (the "standard approach for
// both browser and Node.js"), run against local mode by infra/local's tests
// and usable by hand, with local mode running (make run):
//
//   WSNOTIFY_TOKEN=<API key> WSNOTIFY_HOST=127.0.0.1:8000 node infra/node/seed-client.js
//
// The block between the two marker comments is the seed's code verbatim,
// except for two substitutions, both taken from the environment:
//   - the URL's host:port, "localhost:8000" in the seed  -> WSNOTIFY_HOST (default localhost:8000)
//   - the token, 'YOUR_API_KEY' in the seed              -> WSNOTIFY_TOKEN (required)
//
// After the seed's block, this file adds machine-readable output for tests:
// every received event as one line "EVENT <json>" on stdout (the seed's own
// console.log prints it in Node's multi-line inspect format), and a line
// "CLOSED <code> <reason>" when the connection closes, then it exits.
// With WSNOTIFY_SEND_STDIN=1 it also sends each line of stdin as one message
// (e.g. {"action":"ping"}), and closes the connection normally (1000) at the
// end of stdin.
// require('ws') resolves from infra/node/node_modules (`make tools`).

const host = process.env.WSNOTIFY_HOST || 'localhost:8000';
if (!process.env.WSNOTIFY_TOKEN) {
  console.error('WSNOTIFY_TOKEN is not set: the API key to connect with');
  process.exit(2);
}

// ---- seed code (verbatim but for host and token) ----
const WebSocket = require('ws');
const { randomUUID } = require('crypto');

const clientId = randomUUID();
const token = process.env.WSNOTIFY_TOKEN;

const ws = new WebSocket(
  `ws://${host}/api/v1/ws/${clientId}?token=${token}`
);

ws.on('open', () => {
  console.log('Connected');
});

ws.on('message', (data) => {
  const event = JSON.parse(data);
  console.log('Received:', event);
});
// ---- end of seed code ----

ws.on('message', (data) => {
  console.log('EVENT ' + JSON.stringify(JSON.parse(data)));
});

if (process.env.WSNOTIFY_SEND_STDIN === '1') {
  const opened = new Promise((resolve) => ws.once('open', resolve));
  let pending = '';
  let sending = Promise.resolve();
  const send = (line) => {
    sending = sending.then(() => opened).then(() => ws.send(line));
  };
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop();
    lines.filter((l) => l.trim() !== '').forEach(send);
  });
  process.stdin.on('end', () => {
    if (pending.trim() !== '') send(pending);
    sending = sending.then(() => opened).then(() => ws.close(1000, 'done'));
  });
}

ws.on('unexpected-response', (req, res) => {
  console.log(`REFUSED ${res.statusCode}`);
  process.exit(1);
});

ws.on('error', (err) => {
  console.error('ERROR ' + err.message);
  process.exit(1);
});

ws.on('close', (code, reason) => {
  console.log(`CLOSED ${code} ${reason}`);
  process.exit(0);
});
