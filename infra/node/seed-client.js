// The client contract's original Node.js example (the "standard approach for
// both browser and Node.js"), made runnable: give it the URL local mode's
// banner prints (make run), as it is, and it prints every event it receives:
//
//   node infra/node/seed-client.js 'ws://127.0.0.1:8000/api/v1/ws/<client id>?token=<API key>'
//
// Any URL of the same shape works, wss:// included (a deployed stack's
// SeedWebSocketURL followed by a client id and ?token=). require('ws')
// resolves from infra/node/node_modules, which `make tools` (or the first
// `make test`) installs.
//
// The block between the two marker comments is the seed's code verbatim,
// except for three substitutions, all taken from the URL given:
//   - the client id, randomUUID() in the seed        -> the URL path's last part
//   - the token, 'YOUR_API_KEY' in the seed           -> the URL's token
//   - the scheme and host, "ws://localhost:8000"      -> the URL's
// infra/local's tests check that, and run this file against local mode.
//
// After the seed's block, this file adds machine-readable output for tests:
// every received event as one line "EVENT <json>" on stdout (the seed's own
// console.log prints it in Node's multi-line inspect format), and a line
// "CLOSED <code> <reason>" when the connection closes, then it exits.
// With WSNOTIFY_SEND_STDIN=1 it also sends each line of stdin as one message
// (e.g. {"action":"ping"}), and closes the connection normally (1000) at the
// end of stdin.

const usage = "usage: node infra/node/seed-client.js 'ws://127.0.0.1:8000/api/v1/ws/<client id>?token=<API key>'";
let given;
try {
  given = new URL(process.argv[2]);
} catch {
  console.error(process.argv[2] === undefined ? usage : `not a URL: ${process.argv[2]}\n${usage}`);
  process.exit(2);
}
if (!/^wss?:$/.test(given.protocol) || !/^\/api\/v1\/ws\/[^/]+$/.test(given.pathname) || !given.searchParams.get('token')) {
  console.error(`${given.href} is not a client URL: ws:// or wss://, path /api/v1/ws/<client id>, and ?token=\n${usage}`);
  process.exit(2);
}

// ---- seed code (verbatim but for client id, token, scheme and host) ----
const WebSocket = require('ws');
const { randomUUID } = require('crypto');

const clientId = given.pathname.split('/').pop();
const token = given.searchParams.get('token');

const ws = new WebSocket(
  `${given.protocol}//${given.host}/api/v1/ws/${clientId}?token=${token}`
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
