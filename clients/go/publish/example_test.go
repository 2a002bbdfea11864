package publish_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/wsnotify/wsnotify/clients/go/publish"
	"github.com/wsnotify/wsnotify/shared/event"
)

// A backend publishes a job's progress over the publish API and learns how
// many of the user's connections got it. (Compiled, not run: it needs a
// stack, or local mode.)
func ExampleClient_Publish() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx) // region and credentials: environment, profile or role
	if err != nil {
		log.Fatal(err)
	}
	// The PublishFunctionUrl output (signed for lambda, in its own region)
	// or the PublishApiURL output (signed for execute-api).
	pub := publish.NewClient(os.Getenv("PUBLISH_API_URL"), cfg)
	// Locally: pub := publish.NewLocalClient("http://127.0.0.1:8000", "")
	results, err := pub.Publish(ctx, publish.Message{
		OwnerID:        "acct_42",
		IdempotencyKey: "job_7-progress-5", // a retry publishes it once
		Event:          publish.JobProgress("job_7", 50, 5, 10, "Photos/IMG_4100.jpg"),
	})
	var apiErr *publish.APIError
	switch {
	case errors.As(err, &apiErr):
		log.Fatalf("refused: %s (%s)", apiErr.Code, apiErr.Message)
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println(results[0].ID, results[0].Seq, results[0].Delivered)
}

// Presence: is the user connected, or should the app send an e-mail?
func ExampleClient_Connections() {
	pub := publish.NewLocalClient("http://127.0.0.1:8000", "")
	p, err := pub.Connections(context.Background(), "acct_42")
	if err != nil {
		log.Fatal(err)
	}
	if p.Count == 0 {
		fmt.Println("offline: send an e-mail instead")
	}
}

// A job's events go to the job queue, ten a call, in order per job.
func ExampleQueue_Send() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	q := publish.NewQueue(sqs.NewFromConfig(cfg), os.Getenv("JOB_EVENTS_QUEUE_URL"))
	results, err := q.Send(ctx,
		publish.Message{OwnerID: "acct_42", Event: publish.JobProgress("job_7", 90, 9, 10, "Photos/IMG_4108.jpg")},
		publish.Message{OwnerID: "acct_42", Event: publish.JobComplete("job_7", event.StatusCompleted, 10, 0)},
	)
	for i, r := range results {
		if r.Err != nil {
			log.Printf("message %d: %v", i, r.Err) // send it again with the same idempotency key
		}
	}
	if err != nil {
		log.Print(err)
	}
}
