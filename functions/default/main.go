// Command default is the $default Lambda function: see shared/handler.Default.
package main

import (
	"log/slog"

	"github.com/wsnotify/wsnotify/shared/app"
	"github.com/wsnotify/wsnotify/shared/handler"
	"github.com/wsnotify/wsnotify/shared/notify"
)

func main() {
	app.Start(app.DefaultFunction, func(n *notify.Notifier, cfg app.Config, log *slog.Logger) any {
		return handler.NewDefault(log, n).Handle
	})
}
