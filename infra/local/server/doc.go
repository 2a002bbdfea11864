// Package server is local mode: one process that serves the client contract
// of the API Gateway WebSocket API and the AWS endpoints its triggers use, so
// the whole service runs on a developer's machine, in CI and under load tests.
//
// It is an adapter around the same core as the cloud, and holds no business
// rule of its own:
//
//	websocket.go   GET /api/v1/ws/{client_id} (and GET /{stage}, the raw API
//	               Gateway URL shape): builds the events API Gateway would
//	               send and runs the $connect, $default and $disconnect routes
//	               (Routes; by default the shared/handler Lambda handlers,
//	               in-process); the connection itself (queue, writer,
//	               limits, close codes) is the transport in shared/push/hub
//	management.go  the API Gateway Management API (/@connections/{id}) over
//	               HTTP, over the hub, so the real SDK client can be pointed
//	               at local mode
//	control.go     who may call the Invoke and Management APIs (the control
//	               plane): no web pages, loopback or the control token
//	invoke.go      the Lambda Invoke API (/2015-03-31/functions/…/invocations)
//	               as `sam local start-lambda` serves it, for job and upload
//	               events
//	demo.go        GET / (the live demo page, demo/index.html) and
//	               GET /wsnotify.js (the JavaScript client, clients/js)
//	server.go      Config, New, Serve, Shutdown, request logging
//	dynamo.go      OpenDynamoDB: the functions' DynamoDB store (dynalite or
//	               AWS), its table checked or created from template.yaml
//	remote.go      functions on Lambda endpoints (aws-lambda-rie, `sam local
//	               start-lambda`): the routes invoke them, and the Invoke
//	               API forwards to them
//
// A program starts it in-process with New and Serve on a listener of its
// choice, and stops it with Shutdown, which closes every WebSocket with 1001
// and waits for each $disconnect.
package server
