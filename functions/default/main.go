// Command default is the $default Lambda function: see shared/handler.Default.
package main

import (
	"log/slog"

	"github.com/wsnotify/wsnotify/shared/app"
	"github.com/wsnotify/wsnotify/shared/handler"
)

func main() {
	app.StartWithoutStore(app.DefaultFunction, func(log *slog.Logger) any {
		return handler.NewDefault(log).Handle
	})
}
