// Types of publisher.js, the wsnotify publisher for Node.js.
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';

export const MAX_REQUEST_MESSAGES: 100;
export const MAX_REQUEST_BYTES: number;
export const MAX_BATCH_MESSAGES: 10;
export const MAX_BATCH_BYTES: number;
export const MAX_IDEMPOTENCY_KEY_LENGTH: 128;
export const DEDUPLICATION_PREFIX: string;

export interface JobProgress {
  type: 'job_progress';
  jobId: string;
  /** Percent, 0-100. */
  progress: number;
  processedCount: number;
  totalCount: number;
  currentFile?: string;
}

export interface JobComplete {
  type: 'job_complete';
  jobId: string;
  status: 'completed' | 'failed' | 'cancelled';
  organized: number;
  failed: number;
}

export interface ErrorEvent {
  type: 'error';
  jobId?: string;
  error: string;
  /** 1-64 characters of A-Z, 0-9 and _, starting with a letter. */
  code: string;
}

/** The events an app publishes (file_uploaded comes from the upload bucket alone). */
export type PublishableEvent = JobProgress | JobComplete | ErrorEvent;

export interface Message {
  ownerId: string;
  /** Only this client's connection gets the event; it then has no seq and is not kept for resume. */
  clientId?: string;
  /** Names the event for retries: the same key for the same owner is the same event. */
  idempotencyKey?: string;
  event: PublishableEvent;
}

export function jobProgress(jobId: string, progress: number, processedCount: number, totalCount: number, currentFile?: string): JobProgress;
export function jobComplete(jobId: string, status: JobComplete['status'], organized: number, failed: number): JobComplete;
export function errorEvent(code: string, error: string, jobId?: string): ErrorEvent;

/** Why message cannot be published, or '' if it can. */
export function validateMessage(message: Message): string;
export function groupId(message: Message): string;
export function deduplicationId(ownerId: string, key: string): string;

export class InvalidMessageError extends Error {
  readonly name: 'InvalidMessageError';
  readonly index: number;
  readonly reason: string;
}

export type QueueResult = { messageId: string; error?: undefined } | { messageId?: undefined; error: Error };

export class QueuePublisher {
  constructor(options: { queueUrl: string; client?: SQSClient });
  send(messages: Message | Message[], options?: { abortSignal?: AbortSignal }): Promise<QueueResult[]>;
}

export interface PublishResult {
  id: string;
  /** Absent for an event to one client. */
  seq?: number;
  /** Connections that got the event. */
  delivered: number;
  /** The idempotency key named an event published before: its id and seq, not pushed again. */
  duplicate?: boolean;
  /** Connections that looked live but the event did not reach (their push failed); they get it when they resume. */
  failed?: number;
}

export interface Presence {
  ownerId: string;
  count: number;
  clients: { clientId: string; connectedAt: string }[];
}

export class PublishApiError extends Error {
  readonly name: 'PublishApiError';
  readonly status: number;
  readonly code: string;
  /** The results of the messages published before the failure. */
  results?: PublishResult[];
}

export class HttpPublisher {
  /**
   * Throws a TypeError for a function URL endpoint with another region than its host's.
   */
  constructor(options: {
    /**
     * The API's URL without /v1/publish. PublishFunction's function URL
     * (https://{url-id}.lambda-url.{region}.on.aws/) is signed for "lambda" in
     * its host's region; the HTTP API or a custom domain, for "execute-api"
     * in region; without region, local mode (http://127.0.0.1:8000).
     */
    endpoint: string;
    /** The region to sign for; a function URL's is its host's, and may be left out. */
    region?: string;
    credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
    controlToken?: string;
    maxAttempts?: number;
  });
  publish(messages: Message | Message[], options?: { signal?: AbortSignal }): Promise<PublishResult[]>;
  connections(ownerId: string, options?: { signal?: AbortSignal }): Promise<Presence>;
}
