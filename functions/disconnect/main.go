// Command disconnect is the $disconnect Lambda function: see shared/handler.Disconnect.
package main

import (
	"github.com/wsnotify/wsnotify/shared/app"
	"github.com/wsnotify/wsnotify/shared/handler"
)

func main() {
	app.Start(app.DisconnectFunction, func(d app.Deps) any {
		return handler.NewDisconnect(d.Notifier, d.Log).Handle
	})
}
