// Command jobevents is the job events (SQS) Lambda function: see shared/handler.JobEvents.
package main

import (
	"github.com/wsnotify/wsnotify/shared/app"
	"github.com/wsnotify/wsnotify/shared/handler"
)

func main() {
	app.Start(app.JobEventsFunction, func(d app.Deps) any {
		return handler.NewJobEvents(d.Notifier, d.Log, d.DeadLetters).Handle
	})
}
