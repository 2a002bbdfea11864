// Compiled (never run) by clients/publisher's Go test with tsc --strict: an
// app's use of the publisher, against publisher.d.ts. The lines marked as
// expected errors at the end must fail to compile.
import { SQSClient } from '@aws-sdk/client-sqs';
import {
  HttpPublisher, QueuePublisher, PublishApiError, InvalidMessageError, jobProgress, jobComplete, errorEvent,
  validateMessage, type Message, type PublishResult, type QueueResult, type Presence,
} from '../publisher.js';

const messages: Message[] = [
  { ownerId: 'acct_42', idempotencyKey: 'job_7-5', event: jobProgress('job_7', 50, 5, 10, 'a.jpg') },
  { ownerId: 'acct_42', clientId: 'tab-1', event: errorEvent('QUOTA_EXCEEDED', 'Storage is full') },
  { ownerId: 'acct_42', event: jobComplete('job_7', 'completed', 10, 0) },
];
const why: string = validateMessage(messages[0]);

async function main(): Promise<void> {
  const api = new HttpPublisher({ endpoint: 'https://abc.execute-api.eu-west-1.amazonaws.com', region: 'eu-west-1' });
  const local = new HttpPublisher({ endpoint: 'http://127.0.0.1:8000', controlToken: 'token' });
  const viaFunctionUrl = new HttpPublisher({ endpoint: 'https://abc.lambda-url.eu-west-1.on.aws/' }); // signed for lambda in eu-west-1
  void viaFunctionUrl;
  try {
    const results: PublishResult[] = await api.publish(messages, { signal: AbortSignal.timeout(5000) });
    const seq: number | undefined = results[0].seq;
    const delivered: number = results[0].delivered;
    void seq, delivered;
  } catch (err) {
    if (err instanceof PublishApiError) void (err.status + err.code + (err.results?.length ?? 0));
    if (err instanceof InvalidMessageError) void (err.index + err.reason);
  }
  const who: Presence = await local.connections('acct_42');
  void who.clients.map((c) => c.clientId + c.connectedAt);

  const queue = new QueuePublisher({ queueUrl: 'https://sqs.eu-west-1.amazonaws.com/1/jobs.fifo', client: new SQSClient({}) });
  const sent: QueueResult[] = await queue.send(messages[2]);
  for (const r of sent) void (r.error ? r.error.message : r.messageId);
}
void main, why;

// @ts-expect-error file_uploaded is not the app's to publish
const upload: Message = { ownerId: 'o', event: { type: 'file_uploaded', fileId: 'f', name: 'n', size: 1 } };
// @ts-expect-error a status of no job
jobComplete('j', 'done', 1, 0);
// @ts-expect-error an event needs an owner
const ownerless: Message = { event: errorEvent('E', 'x') };
void upload, ownerless;
