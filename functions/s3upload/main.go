// Command s3upload is the upload (S3 ObjectCreated) Lambda function: see shared/handler.S3Upload.
package main

import (
	"log/slog"

	"github.com/wsnotify/wsnotify/shared/app"
	"github.com/wsnotify/wsnotify/shared/handler"
	"github.com/wsnotify/wsnotify/shared/notify"
)

func main() {
	app.Start(app.S3UploadFunction, func(n *notify.Notifier, cfg app.Config, log *slog.Logger) any {
		return handler.NewS3Upload(n, log, cfg.UploadPrefix).Handle
	})
}
