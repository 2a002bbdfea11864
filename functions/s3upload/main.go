// Command s3upload is the upload (S3 ObjectCreated) Lambda function: see shared/handler.S3Upload.
package main

import (
	"github.com/wsnotify/wsnotify/shared/app"
	"github.com/wsnotify/wsnotify/shared/handler"
)

func main() {
	app.Start(app.S3UploadFunction, func(d app.Deps) any {
		return handler.NewS3Upload(d.Notifier, d.Log, d.Config.UploadPrefix).Handle
	})
}
