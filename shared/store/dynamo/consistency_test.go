package dynamo

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/notify/notifytest"
	"github.com/wsnotify/wsnotify/shared/store"
)

// laggingReads is a DynamoDB client whose eventually consistent reads have
// not caught up with any write yet: the worst DynamoDB may do. A Query of a
// secondary index (which DynamoDB can only read eventually consistently)
// finds nothing, and so does a GetItem or Query of the table made without
// ConsistentRead. Strongly consistent reads and writes go to dynalite.
type laggingReads struct{ api }

func (l laggingReads) GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if !aws.ToBool(in.ConsistentRead) {
		return &dynamodb.GetItemOutput{}, nil
	}
	return l.api.GetItem(ctx, in, optFns...)
}

func (l laggingReads) Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if in.IndexName != nil && aws.ToBool(in.ConsistentRead) {
		// As DynamoDB answers it.
		return nil, errors.New("ValidationException: Consistent reads are not supported on global secondary indexes")
	}
	if in.IndexName != nil || !aws.ToBool(in.ConsistentRead) {
		return &dynamodb.QueryOutput{}, nil
	}
	return l.api.Query(ctx, in, optFns...)
}

// testLaggingReads connects, disconnects and resumes at once, over a table
// whose eventually consistent reads lag behind every write. Through the
// byConnection index, which the store once read, the disconnect found
// nothing and left the record, so the client's reconnect was refused as a
// duplicate (409) for the connect grace, and the resume found no record.
func testLaggingReads(t *testing.T, client *dynamodb.Client) {
	ctx := testCtx(t)
	table := newTable(t, client)
	s := &Store{db: laggingReads{ownBodies{client}}, table: table}
	key := "wsn_lagging"
	now := time.Now()
	if err := s.PutKey(ctx, auth.Key{Hash: auth.Hash(key), OwnerID: "acct_1", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	rec := notifytest.NewRecorder()
	n := notify.New(auth.NewAuthenticator(s), s, rec, slog.New(slog.DiscardHandler), notify.Config{Now: func() time.Time { return now }})

	connect := func(connectionID string) {
		t.Helper()
		if _, err := n.Connect(ctx, notify.ConnectRequest{Token: key, ClientID: "tab-1", ConnectionID: connectionID}); err != nil {
			t.Fatalf("Connect(%s): %v", connectionID, err)
		}
	}
	connect("Lag0000000000001=")
	if err := n.Disconnect(ctx, "Lag0000000000001="); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	if conns := mustListAt(t, s, now); len(conns) != 0 {
		t.Fatalf("records after a disconnect right after the connect: %+v, want none", conns)
	}
	// The same client id, at once: no stale record is in its way.
	connect("Lag0000000000002=")

	res, err := n.Resume(ctx, notify.ResumeRequest{ConnectionID: "Lag0000000000002="})
	if err != nil || res.Owner != "acct_1" {
		t.Fatalf("Resume right after the connect = %+v, %v; want acct_1's", res, err)
	}
	if sent := rec.Sent("Lag0000000000002="); len(sent) != 1 || !strings.Contains(sent[0], `"resumed"`) {
		t.Fatalf("sent %q, want the resumed message", sent)
	}
	if err := n.Disconnect(ctx, "Lag0000000000002="); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	if conns := mustListAt(t, s, now); len(conns) != 0 {
		t.Fatalf("records after the last disconnect: %+v, want none", conns)
	}
}

func mustListAt(t *testing.T, s *Store, now time.Time) []store.Connection {
	t.Helper()
	conns, err := s.ListConnections(testCtx(t), "acct_1", now)
	if err != nil {
		t.Fatalf("ListConnections: %v", err)
	}
	return conns
}
