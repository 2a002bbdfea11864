// Publishes as clients/publisher/publisher_test.go asks, in
// WSNOTIFY_PUBLISH (JSON): { queueUrl, messages } sends to the job queue;
// { endpoint, region?, controlToken?, messages } publishes over the HTTP
// API, or with { connections: ownerId } asks who is connected. Region,
// credentials and the SQS endpoint come from the environment, as an app's
// would. With { resolveTo: address } every host name resolves to address,
// so that an endpoint whose host is a function URL's reaches a test server.
// Prints one JSON line: { ok: results } or { error: {...} }.
import http from 'node:http';
import { HttpPublisher, QueuePublisher } from '../publisher.js';

const cmd = JSON.parse(process.env.WSNOTIFY_PUBLISH);
if (cmd.resolveTo) {
  const lookup = (_host, options, callback) =>
    options.all ? callback(null, [{ address: cmd.resolveTo, family: 4 }]) : callback(null, cmd.resolveTo, 4);
  http.globalAgent = new http.Agent({ lookup });
}
try {
  let ok;
  if (cmd.queueUrl) {
    const results = await new QueuePublisher({ queueUrl: cmd.queueUrl }).send(cmd.messages);
    ok = results.map((r) => (r.error ? { error: r.error.message } : r));
  } else {
    const publisher = new HttpPublisher({ endpoint: cmd.endpoint, region: cmd.region, controlToken: cmd.controlToken });
    ok = cmd.connections ? await publisher.connections(cmd.connections) : await publisher.publish(cmd.messages);
  }
  console.log(JSON.stringify({ ok }));
} catch (err) {
  const { name, message, status, code, index, results } = err;
  console.log(JSON.stringify({ error: { name, message, status, code, index, results } }));
}
