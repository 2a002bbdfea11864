// Package publish is what an app's backend imports to show its users
// events: typed constructors for the four events, and two publishers of
// them.
//
//   - Client publishes over the HTTP publish API (POST /v1/publish), signed
//     with AWS Signature Version 4 in the cloud (the default credentials
//     chain) or with local mode's control token. In the cloud the API has
//     two doors to the same function: its Lambda function URL
//     (https://{url-id}.lambda-url.{region}.on.aws/, signed for "lambda" in
//     the region the host names; the cheaper door), and the HTTP API or a
//     custom domain in front of it (signed for "execute-api"). NewClient
//     tells them apart by the endpoint's host. It answers what each event
//     did: its id, its seq, how many connections got it. It also asks who
//     is connected (presence).
//   - Queue sends to the stack's FIFO job queue with SendMessageBatch: up to
//     ten messages a call, MessageGroupId the job id (one job's events stay
//     in order), MessageDeduplicationId from the idempotency key, and a
//     result per message. It is the cheapest way to publish a flood of
//     events, and SQS retries what the job events function fails.
//
// Every message is checked by shared/event, the rules the functions apply,
// before any network call: a bad event is an error in the app's process,
// not a message in the dead-letter queue minutes later. Both publishers use
// the AWS SDK's standard retryer and honour the context's deadline.
//
// It lives under clients/ with the other code an app takes from this
// repository (the browser and Node.js client module, the Node.js publisher),
// as the one Go package meant to be imported by other modules:
// github.com/wsnotify/wsnotify/clients/go/publish. docs/publishing.md says
// when to use which publisher.
package publish
