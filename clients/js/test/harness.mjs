// A Node.js program around wsnotify.js for clients/js/client_test.go: it
// connects with the options in WSNOTIFY_OPTIONS (JSON; url and token
// included) and the ws package found in WSNOTIFY_NODE_MODULES, and prints
// one line per thing the application sees:
//
//   STATE <state> <clientId>
//   EVENT <event JSON>
//
// A line "close" on stdin closes the client. Once the client is closed
// and nothing is pending, Node exits by itself: a client that stopped for
// good leaves no timer behind.

import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { connect } from '../wsnotify.js';

const require = createRequire(`${process.env.WSNOTIFY_NODE_MODULES}/`);
const WebSocket = require('ws');

const client = connect({ ...JSON.parse(process.env.WSNOTIFY_OPTIONS), WebSocket });
client.on('state', (state) => console.log(`STATE ${state} ${client.clientId}`));
client.on('*', (event) => console.log(`EVENT ${JSON.stringify(event)}`));

const input = createInterface({ input: process.stdin });
input.on('line', (line) => {
  if (line.trim() === 'close') client.close();
});
client.on('state', (state) => {
  if (state === 'closed') {
    input.close();
    process.stdin.destroy();
  }
});
