// wsnotify publisher for Node.js: what an app's backend imports to show its
// users events. Two ways to publish, one set of rules:
//
//   - HttpPublisher: POST /v1/publish, signed with AWS Signature Version 4
//     (the SDK's signer, credentials from the default provider chain) in
//     the cloud, for "lambda" at PublishFunction's function URL and for
//     "execute-api" at the HTTP API, or with local mode's control token. It
//     answers what each event did (id, seq, connections reached) and who is
//     connected.
//   - QueuePublisher: SendMessageBatch to the stack's FIFO job queue, ten a
//     call, MessageGroupId the job id, MessageDeduplicationId named from
//     the idempotency key, a result per message.
//
// Every message is checked before anything is sent, against the events'
// JSON Schemas from docs/asyncapi.yaml (schemas.json, generated from it and
// checked against it by a test) and the owner and client id rules of the
// functions: a bad event is an error here, not a dead letter later.
// docs/publishing.md says when to use which.

import { createHash, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import * as http from 'node:http';
import * as https from 'node:https';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SQSClient, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';

const table = createRequire(import.meta.url)('./schemas.json');

/** The most messages one publish API request takes; publish() splits longer lists. */
export const MAX_REQUEST_MESSAGES = 100;
/** The most bytes one publish API request's body may have. */
export const MAX_REQUEST_BYTES = 256 * 1024;
/** The most entries one SendMessageBatch takes. */
export const MAX_BATCH_MESSAGES = 10;
/** The bodies of one SendMessageBatch stay within this, SQS's smallest payload limit. */
export const MAX_BATCH_BYTES = 256 * 1024;
/** The longest idempotency key. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 128;
/** Starts the deduplication ids the publishers make (shared/event.DeduplicationPrefix). */
export const DEDUPLICATION_PREFIX = table.deduplicationPrefix;

// --- Events -------------------------------------------------------------

/** A job_progress event: progress in percent, processed of total files, the current one. */
export function jobProgress(jobId, progress, processedCount, totalCount, currentFile) {
  const ev = { type: 'job_progress', jobId, progress, processedCount, totalCount };
  if (currentFile !== undefined) ev.currentFile = currentFile;
  return ev;
}

/** A job_complete event; status is 'completed', 'failed' or 'cancelled'. */
export function jobComplete(jobId, status, organized, failed) {
  return { type: 'job_complete', jobId, status, organized, failed };
}

/** An error event; jobId may be left out for an error of no job. */
export function errorEvent(code, error, jobId) {
  const ev = { type: 'error', error, code };
  if (jobId !== undefined) ev.jobId = jobId;
  return ev;
}

/** A message refused before anything was sent; index is its place in the call. */
export class InvalidMessageError extends Error {
  constructor(index, reason) {
    super(`messages[${index}]: ${reason}`);
    this.name = 'InvalidMessageError';
    this.index = index;
    this.reason = reason;
  }
}

const utf8Length = (s) => Buffer.byteLength(s, 'utf8');

// check returns why value breaks schema (one of the generated table's,
// flattened: no $ref or allOf), or ''. Lengths count UTF-8 bytes, as the
// functions count them.
function check(value, schema, path) {
  if ('const' in schema && value !== schema.const) return `${path} must be ${JSON.stringify(schema.const)}`;
  if (schema.enum && !schema.enum.includes(value)) return `${path} must be one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}`;
  switch (schema.type) {
    case 'object':
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return `${path} must be an object`;
      break;
    case 'string':
      if (typeof value !== 'string') return `${path} must be a string`;
      break;
    case 'integer':
      if (!Number.isSafeInteger(value)) return `${path} must be a whole number`;
      break;
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) return `${path} must be a number`;
      break;
  }
  if (schema.minimum !== undefined && value < schema.minimum) return `${path} must be at least ${schema.minimum}`;
  if (schema.maximum !== undefined && value > schema.maximum) return `${path} must be at most ${schema.maximum}`;
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && utf8Length(value) < schema.minLength) return `${path} must have at least ${schema.minLength} bytes`;
    if (schema.maxLength !== undefined && utf8Length(value) > schema.maxLength) return `${path} must have at most ${schema.maxLength} bytes`;
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) return `${path} must match ${schema.pattern}`;
  }
  if (schema.type === 'object') {
    for (const name of schema.required ?? []) {
      if (value[name] === undefined) return `${path}.${name} is missing`;
    }
    for (const [name, v] of Object.entries(value)) {
      // JSON.stringify leaves undefined out; the functions read a null as
      // absent, so it is refused only where the field is required.
      if (v === undefined || (v === null && !schema.required?.includes(name))) continue;
      const prop = schema.properties?.[name];
      if (!prop) {
        if (schema.additionalProperties === false) return `${path} has an unknown field "${name}"`;
        continue;
      }
      const why = check(v, prop, `${path}.${name}`);
      if (why) return why;
    }
  }
  return '';
}

// The one rule of the functions no JSON Schema keyword says: a job cannot
// have processed more files than it has.
function crossField(ev) {
  if (ev.type === 'job_progress' && ev.processedCount > ev.totalCount) {
    return `event.processedCount (${ev.processedCount}) must not exceed event.totalCount (${ev.totalCount})`;
  }
  return '';
}

/**
 * Returns why message cannot be published, or '' if it can: the checks the
 * job events function and the publish API make.
 */
export function validateMessage(message) {
  if (message === null || typeof message !== 'object') return 'a message must be an object';
  const { ownerId, clientId, idempotencyKey, event } = message;
  if (typeof ownerId !== 'string' || !new RegExp(table.ownerId.pattern).test(ownerId)) {
    return `ownerId must match ${table.ownerId.pattern}`;
  }
  if (clientId !== undefined && (typeof clientId !== 'string' || !new RegExp(table.clientId.pattern).test(clientId))) {
    return `clientId must match ${table.clientId.pattern} (leave it out for every client of the owner)`;
  }
  if (idempotencyKey !== undefined && (typeof idempotencyKey !== 'string' || idempotencyKey === '' || idempotencyKey.length > MAX_IDEMPOTENCY_KEY_LENGTH)) {
    return `idempotencyKey must be a string of 1-${MAX_IDEMPOTENCY_KEY_LENGTH} characters`;
  }
  if (event === null || typeof event !== 'object') return 'event is missing';
  const schema = table.events[event.type];
  if (!schema) return `event.type must be one of ${Object.keys(table.events).join(', ')}`;
  if (!table.publishable.includes(event.type)) return `event type "${event.type}" is published by the upload trigger, not by the app`;
  return check(event, schema, 'event') || crossField(event);
}

// checkAll throws an InvalidMessageError for the first invalid message.
function checkAll(messages) {
  messages.forEach((m, i) => {
    const why = validateMessage(m);
    if (why) throw new InvalidMessageError(i, why);
  });
}

// The job queue's message body: what the job events function parses.
function queueBody(m) {
  return JSON.stringify({ ownerId: m.ownerId, clientId: m.clientId, event: m.event });
}

function digest(...parts) {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return 'sha-' + h.digest('hex');
}

const sqsGroupPattern = /^[A-Za-z0-9!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]{1,128}$/;

/** The MessageGroupId of a message: its job id (or a digest of one SQS cannot take), or its owner's group. */
export function groupId(message) {
  const job = message.event?.jobId;
  if (!job) return digest('owner', message.ownerId);
  return sqsGroupPattern.test(job) ? job : digest('job', job);
}

/** The MessageDeduplicationId of an owner's message with an idempotency key. */
export function deduplicationId(ownerId, key) {
  return DEDUPLICATION_PREFIX + digest(ownerId, key).slice('sha-'.length);
}

const newKey = () => `pub-${randomUUID()}`;

// --- The job queue --------------------------------------------------------

/** Publishes to the stack's job queue (output JobEventsQueueURL). */
export class QueuePublisher {
  /**
   * @param {object} options
   * @param {string} options.queueUrl the FIFO queue's URL
   * @param {SQSClient} [options.client] an SQS client (default: a new one, region and
   *   credentials from the environment; its retry strategy retries failed calls)
   */
  constructor({ queueUrl, client } = {}) {
    if (!queueUrl) throw new TypeError('QueuePublisher: queueUrl is required');
    this.queueUrl = queueUrl;
    this.client = client ?? new SQSClient({});
  }

  /**
   * Checks every message, then sends them in order, ten a call. Resolves to a
   * result per message, { messageId } or { error }; a message that fails
   * leaves its job's messages of later calls unsent, so they cannot overtake
   * it. Throws InvalidMessageError, with nothing sent, for an invalid message.
   */
  async send(messages, { abortSignal } = {}) {
    const list = Array.isArray(messages) ? messages : [messages];
    checkAll(list);
    const entries = list.map((m, i) => ({
      Id: String(i),
      MessageBody: queueBody(m),
      MessageGroupId: groupId(m),
      MessageDeduplicationId: deduplicationId(m.ownerId, m.idempotencyKey ?? newKey()),
    }));
    const results = new Array(list.length);
    const failedGroups = new Set();
    let i = 0;
    while (i < entries.length) {
      const batch = [];
      let size = 0;
      for (; i < entries.length && batch.length < MAX_BATCH_MESSAGES; i++) {
        const e = entries[i];
        if (failedGroups.has(e.MessageGroupId)) {
          results[i] = { error: new Error(`messages[${i}]: not sent: an earlier message of its job failed`) };
          continue;
        }
        const n = Buffer.byteLength(e.MessageBody);
        if (batch.length > 0 && size + n > MAX_BATCH_BYTES) break;
        batch.push(e);
        size += n;
      }
      if (batch.length === 0) continue;
      let out;
      try {
        out = await this.client.send(new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: batch }), { abortSignal });
      } catch (err) {
        for (const e of batch) {
          results[Number(e.Id)] = { error: err };
          failedGroups.add(e.MessageGroupId);
        }
        continue;
      }
      for (const ok of out.Successful ?? []) results[Number(ok.Id)] = { messageId: ok.MessageId };
      for (const bad of out.Failed ?? []) {
        const j = Number(bad.Id);
        const err = new Error(`messages[${j}]: the job queue refused it: ${bad.Code}: ${bad.Message}`);
        err.code = bad.Code;
        err.senderFault = bad.SenderFault;
        results[j] = { error: err };
        failedGroups.add(entries[j].MessageGroupId);
      }
    }
    return results;
  }
}

// --- The HTTP publish API -------------------------------------------------

/** An answer of the publish API other than 200: status, code, reason, and the results before a failure. */
export class PublishApiError extends Error {
  constructor(status, code, message, results) {
    super(`publish API: ${status} ${code}: ${message}`);
    this.name = 'PublishApiError';
    this.status = status;
    this.code = code;
    this.results = results;
  }
}

const retryable = (err) => !(err instanceof PublishApiError) || err.status >= 500 || err.status === 429;

/**
 * The region of a Lambda function URL's host, {url-id}.lambda-url.{region}.on.aws,
 * or undefined for any other host.
 */
function functionUrlRegion(hostname) {
  const labels = hostname.toLowerCase().replace(/\.$/, '').split('.');
  if (labels.length !== 5 || labels[1] !== 'lambda-url' || labels[3] !== 'on' || labels[4] !== 'aws') return undefined;
  return labels.slice(0, 3).every((l) => /^[a-z0-9-]+$/.test(l)) ? labels[2] : undefined;
}

/** Publishes over the HTTP publish API and asks who is connected. */
export class HttpPublisher {
  /**
   * The endpoint's host says how requests are signed. PublishFunction's
   * function URL (output PublishFunctionUrl, https://{url-id}.lambda-url.{region}.on.aws/)
   * is signed for the service "lambda" in the region the host names, with
   * the body's hash in x-amz-content-sha256 (Lambda takes no unsigned body);
   * region may be left out, and one other than the host's is refused here,
   * as a signature for it could only be refused. The caller needs
   * lambda:InvokeFunctionUrl and lambda:InvokeFunction on the function.
   * Any other endpoint (the HTTP API, output PublishApiURL, or a custom
   * domain in front of it) is signed for "execute-api" in region when region
   * is given, and needs execute-api:Invoke on the routes; without region it
   * is local mode, with its control token if it has one.
   *
   * @param {object} options
   * @param {string} options.endpoint the API's URL without /v1/publish: the function URL,
   *   the HTTP API's URL, or local mode's http://127.0.0.1:8000
   * @param {string} [options.region] signs with SigV4 for this region (the cloud); a
   *   function URL's is its host's
   * @param {Function} [options.credentials] a credential provider (default: the
   *   SDK's Node.js provider chain); only for a signed endpoint
   * @param {string} [options.controlToken] local mode's control token, if it has one
   * @param {number} [options.maxAttempts] attempts of a request that fails for a
   *   reason worth retrying (a 5xx, throttling, the network), default 3
   */
  constructor({ endpoint, region, credentials, controlToken, maxAttempts = 3 } = {}) {
    if (!endpoint) throw new TypeError('HttpPublisher: endpoint is required');
    this.endpoint = new URL(endpoint.replace(/\/$/, ''));
    this.maxAttempts = maxAttempts;
    this.controlToken = controlToken;
    const functionRegion = functionUrlRegion(this.endpoint.hostname);
    if (functionRegion !== undefined) {
      if (region && region !== functionRegion) {
        throw new TypeError(`HttpPublisher: the endpoint is a Lambda function URL in ${functionRegion}, but region is ${region}: ` +
          `its signature must name the function's region; pass ${functionRegion} or leave region out`);
      }
      this.signer = new SignatureV4({ service: 'lambda', region: functionRegion, credentials: credentials ?? fromNodeProviderChain(),
        sha256: Sha256, applyChecksum: true });
    } else if (region) {
      this.signer = new SignatureV4({ service: 'execute-api', region, credentials: credentials ?? fromNodeProviderChain(), sha256: Sha256 });
    }
  }

  /**
   * Checks every message, then publishes them in order, a hundred a request.
   * Resolves to a result per message: { id, seq?, delivered, duplicate?, failed? }.
   * Throws InvalidMessageError (nothing sent), or PublishApiError with the
   * results of the messages published before the failure. Messages without
   * an idempotency key are given one, so a retry publishes each once.
   */
  async publish(messages, { signal } = {}) {
    const list = Array.isArray(messages) ? messages : [messages];
    checkAll(list);
    const wire = list.map((m) => ({ ownerId: m.ownerId, clientId: m.clientId, idempotencyKey: m.idempotencyKey ?? newKey(), event: m.event }));
    const results = [];
    for (let start = 0; start < wire.length; ) {
      let end = Math.min(start + MAX_REQUEST_MESSAGES, wire.length);
      let body = JSON.stringify({ messages: wire.slice(start, end) });
      while (end - start > 1 && Buffer.byteLength(body) > MAX_REQUEST_BYTES) {
        end = start + Math.floor((end - start) / 2);
        body = JSON.stringify({ messages: wire.slice(start, end) });
      }
      let answer;
      try {
        answer = await this.#request('POST', '/v1/publish', body, signal);
      } catch (err) {
        if (err instanceof PublishApiError) err.results = [...results, ...(err.results ?? [])];
        throw err;
      }
      results.push(...answer.results);
      start = end;
    }
    return results;
  }

  /** Who of ownerId's clients is connected: { ownerId, count, clients: [{ clientId, connectedAt }] }. */
  async connections(ownerId, { signal } = {}) {
    return this.#request('GET', `/v1/owners/${encodeURIComponent(ownerId)}/connections`, undefined, signal);
  }

  async #request(method, path, body, signal) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#attempt(method, path, body, signal);
      } catch (err) {
        if (signal?.aborted || attempt >= this.maxAttempts || !retryable(err)) throw err;
        // Full jitter on an exponential backoff, as the AWS SDKs' standard retry mode.
        const delay = Math.random() * Math.min(20_000, 100 * 2 ** attempt);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  async #attempt(method, path, body, signal) {
    const url = this.endpoint;
    const headers = { host: url.host, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const basePath = url.pathname === '/' ? '' : url.pathname;
    let request = new HttpRequest({
      method, protocol: url.protocol, hostname: url.hostname, port: url.port ? Number(url.port) : undefined,
      path: basePath + path, headers, body,
    });
    if (this.signer) request = await this.signer.sign(request);
    else if (this.controlToken) request.headers.authorization = `Bearer ${this.controlToken}`;
    const transport = url.protocol === 'https:' ? https : http;
    const { status, text } = await new Promise((resolve, reject) => {
      const req = transport.request(
        { method, host: url.hostname, port: url.port || undefined, path: request.path, headers: request.headers, signal },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    let answer;
    try {
      answer = JSON.parse(text);
    } catch {
      answer = {};
    }
    if (status !== 200) {
      throw new PublishApiError(status, answer.code ?? '', answer.error ?? answer.message ?? `status ${status}`, answer.results);
    }
    return answer;
  }
}
