// Command publish is the publish API's Lambda function, behind the HTTP
// API's two routes (POST /v1/publish, GET /v1/owners/{ownerId}/connections):
// see shared/publishapi.
package main

import (
	"github.com/wsnotify/wsnotify/shared/app"
	"github.com/wsnotify/wsnotify/shared/publishapi"
)

func main() {
	app.Start(app.PublishFunction, func(d app.Deps) any {
		return publishapi.New(d.Notifier, d.Log).HandleLambda
	})
}
