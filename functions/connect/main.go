// Command connect is the $connect Lambda function: see shared/handler.Connect.
package main

import (
	"log/slog"

	"github.com/wsnotify/wsnotify/shared/app"
	"github.com/wsnotify/wsnotify/shared/handler"
	"github.com/wsnotify/wsnotify/shared/notify"
)

func main() {
	app.Start(app.ConnectFunction, func(n *notify.Notifier, cfg app.Config, log *slog.Logger) any {
		return handler.NewConnect(n, log, cfg.AllowedOrigins).Handle
	})
}
