// Command disconnect is the $disconnect Lambda function: see shared/handler.Disconnect.
package main

import (
	"log/slog"

	"github.com/wsnotify/wsnotify/shared/app"
	"github.com/wsnotify/wsnotify/shared/handler"
	"github.com/wsnotify/wsnotify/shared/notify"
)

func main() {
	app.Start(app.DisconnectFunction, func(n *notify.Notifier, cfg app.Config, log *slog.Logger) any {
		return handler.NewDisconnect(n, log).Handle
	})
}
