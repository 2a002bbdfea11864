// Package chaos holds `make chaos`: the service's delivery promises checked
// under injected faults. Its tests run the Lambda function binaries under
// the Runtime Interface Emulator behind local mode, as the cloud runs them
// behind API Gateway, with a Toxiproxy proxy (the library, inside the test
// process) between the binaries and each backend they call: DynamoDB
// (dynalite), the Management API (local mode's) and the job dead-letter
// queue (a fake SQS endpoint). An HTTP-level fault injector behind each
// proxy answers errors a TCP proxy cannot: DynamoDB's throttling answers
// and 500s, the Management API's 429, 500 and 410.
//
// Every scenario publishes job events from several producers while one fault
// is on, heals it, and then checks one invariant (see check in
// chaos_test.go). `go test ./infra/chaos` runs a short set; `make chaos` runs
// every scenario and prints the table docs/reliability.md shows.
package chaos
