// Command jobevents is the job events (SQS) Lambda function: see shared/handler.JobEvents.
package main

import (
	"context"
	"log/slog"

	"github.com/wsnotify/wsnotify/shared/app"
	"github.com/wsnotify/wsnotify/shared/handler"
	"github.com/wsnotify/wsnotify/shared/notify"
)

func main() {
	app.Start(app.JobEventsFunction, func(n *notify.Notifier, cfg app.Config, log *slog.Logger) any {
		return handler.NewJobEvents(n, log, app.JobDeadLetters(context.Background(), cfg, log)).Handle
	})
}
