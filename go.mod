module github.com/wsnotify/wsnotify

go 1.26.0

require (
	github.com/aws/aws-lambda-go v1.55.1
	golang.org/x/sync v0.25.0
)
