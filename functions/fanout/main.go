// Command fanout is the fan-out function: PublishFunction hands it the
// publishes of owners of many connections (shared/handoff), and it posts
// each one's frame to the owner's connections: see notify.Notifier.FanOut.
package main

import (
	"github.com/wsnotify/wsnotify/shared/app"
)

func main() {
	app.Start(app.FanoutFunction, func(d app.Deps) any {
		return d.Notifier.FanOut
	})
}
