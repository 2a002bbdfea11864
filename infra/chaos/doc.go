// Package chaos holds `make chaos`: the service's delivery promises checked
// under injected faults. Its tests run the Lambda function binaries under
// the Runtime Interface Emulator behind local mode, as the cloud runs them
// behind API Gateway, with a Toxiproxy proxy (the library, inside the test
// process) between the binaries and each backend they call: DynamoDB
// (dynalite), the Management API (local mode's) and the job dead-letter
// queue (a fake SQS endpoint); TestSignedTokenConnects puts one between the
// connect function and Secrets Manager (moto), TestChaosLocalStore one
// between local mode, running the functions in-process, and its own
// DynamoDB store. An HTTP-level fault injector behind each proxy answers
// errors a TCP proxy cannot: DynamoDB's throttling answers and 500s, the
// Management API's 429, 500 and 410.
//
// Every publishing scenario connects the client module (clients/js, in
// Node.js) and one raw client, publishes job events from several producers
// (two playing SQS in front of the job events function, one through the
// publish API)
// while one fault is on, heals it, and then checks one invariant (see
// runScenario in chaos_test.go). `go test ./infra/chaos` runs a short set;
// `make chaos` runs every scenario and writes the tables
// docs/reliability.md shows.
package chaos
