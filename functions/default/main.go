// Command default is the $default Lambda function: see shared/handler.Default.
package main

import (
	"github.com/wsnotify/wsnotify/shared/app"
	"github.com/wsnotify/wsnotify/shared/handler"
)

func main() {
	app.Start(app.DefaultFunction, func(d app.Deps) any {
		return handler.NewDefault(d.Log, d.Notifier).Handle
	})
}
