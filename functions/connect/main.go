// Command connect is the $connect Lambda function: see shared/handler.Connect.
package main

import (
	"github.com/wsnotify/wsnotify/shared/app"
	"github.com/wsnotify/wsnotify/shared/handler"
)

func main() {
	app.Start(app.ConnectFunction, func(d app.Deps) any {
		return handler.NewConnect(d.Notifier, d.Log, d.Config.AllowedOrigins).Handle
	})
}
