// Reads a JSON list of messages on stdin and prints, as JSON, the module's
// verdict on each: "" when it would publish it, else why not. For
// clients/publisher/validate_test.go, which holds the verdicts to the Go
// functions' own.
import { validateMessage } from '../publisher.js';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const messages = JSON.parse(Buffer.concat(chunks).toString('utf8'));
process.stdout.write(JSON.stringify(messages.map((m) => validateMessage(m))));
