// Package dynamo is the DynamoDB store of connection records, API keys and
// each owner's event history: one table, single-item conditional writes only
// (no transactions, no PartiQL), as docs/architecture.md's "Data model" describes.
//
//	pk = "owner#<ownerId>"    sk = "client#<clientId>"  connectionId, connectedAt, expiresAt, keyId, tokenExp
//	                          sk = "count"              connections
//	pk = "conn#<connectionId>" sk = "conn"              ownerId, clientId, connectedAt, expiresAt, keyId, tokenExp
//	pk = "key#<sha256hex>"    sk = "key"                ownerId, name, createdAt, revoked
//	pk = "history#<ownerId>"  sk = "head"               head, n0…n15, s0…s15
//	                          sk = "seq#<seq, 20 digits>"  id, type, jobId, body, expiresAt
//	                          sk = "id#<eventId>"       seq, type, body, expiresAt
//	                          sk = "job#<jobId>"        seq, id, type, body, expiresAt, r0…r3, q0…q3
//
// The table has no secondary index: every read by a key is a GetItem or a
// Query that can be strongly consistent.
//
// A connection has two items: its record in the owner's partition, which a
// publish's Query lists, and its id item (conn#), which finds the record by
// connection id, for $disconnect and resume, with a strongly consistent
// GetItem or the DeleteItem itself. A connect writes the record first, then
// the id item; a disconnect deletes the id item first, then the record. So
// whatever step a crash or a failure interrupts, what is left is either an
// id item alone, which nothing lists and TTL deletes, or a record without an
// id item, which is what a $disconnect that API Gateway never sent leaves:
// the next publish's 410 cleanup, the client's next connect (take-over) or
// TTL removes it. Both items carry the connection's expiresAt.
//
// keyId, the 12-hex-digit prefix of the API key's hash (auth.Prefix), is
// absent on a connection made with a signed token. A key's revocation lists
// its owner's records and closes those with its keyId. tokenExp, in epoch
// seconds, is present only on a connection made with a signed token: when
// that token expires (a connect that finds its owner full closes the
// connections whose token has).
//
// expiresAt is the table's TTL attribute, in epoch seconds. TTL deletion lags
// by hours, so every read also treats an item past its expiresAt as absent.
//
// The count item (count.go) is the owner's number of connections, which
// enforces the per-owner cap on connect. It lies in the owner's partition,
// so a publish's Query reads it with the records, has no connectionId and
// never expires. (It was count#<ownerId>, a partition of its own, which a
// publish read with a GetItem of its own; a table written by that version
// keeps those items unread, and each owner's count starts again at its
// next connect, low, until its next publish counts its records.)
//
// The history (history.go) has a partition of its own per owner, so the
// fan-out's Query of owner#<ownerId> never reads it. Its items:
//
//   - head: the owner's counter, the last seq given, and a ring of the last
//     16 event ids it numbered (n0…n15: hashes of the ids, the newest
//     first; s0…s15: their seqs), so a delivery racing another of the same
//     record, or a redelivery of a record whose publisher died before
//     committing it, gets the same seq (see RecordEvent). It never expires:
//     a counter that started again at 1 would reuse seqs clients hold.
//   - seq#: one event that a replay sends as it was published: every
//     owner-wide event but job_progress. A Query of a seq range replays
//     them in order (the zero padding makes string order seq order).
//   - id#: the id marker of an event of no job (file_uploaded, an error of
//     no job), with its seq and content: a redelivery finds it and gets
//     the same event back.
//   - job#: the job's state: the seq, type and id of its latest event, with
//     its body while the job runs (its latest event a job_progress, which
//     has no other item: a replay merges these in by seq), and a ring of
//     the job's last 4 event ids (r0…r3, hashes; q0…q3, seqs) for
//     redeliveries of its events. A job_progress superseded by a later
//     event of its job is no longer held.
//
// Every history item but the counter carries its event's expiresAt, so TTL
// deletes an event, its marker and (unless a newer event moved it) its job
// item together. Retention by count is applied on reads only: seqs at or
// below head-keep are not read, and leave with their TTL.
package dynamo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/store"
)

// TTLAttribute is the attribute the table's time to live expires items by.
const TTLAttribute = "expiresAt"

// Attribute names and key prefixes of the table's items.
const (
	attrPK           = "pk"
	attrSK           = "sk"
	attrConnectionID = "connectionId"
	attrConnectedAt  = "connectedAt"
	attrExpiresAt    = TTLAttribute
	attrOwnerID      = "ownerId"
	attrName         = "name"
	attrCreatedAt    = "createdAt"
	attrRevoked      = "revoked"
	attrClientID     = "clientId"
	attrKeyID        = "keyId"
	attrTokenExp     = "tokenExp"

	ownerPrefix  = "owner#"
	clientPrefix = "client#"
	connPrefix   = "conn#"
	connSK       = "conn"
	keyPrefix    = "key#"
	keySK        = "key"
)

// ErrKeyExists is returned by PutKey when a key with the same hash is stored.
var ErrKeyExists = errors.New("key already exists")

// api is the part of the DynamoDB client the store uses.
type api interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Store keeps connection records, API keys and event histories in one
// DynamoDB table. It is safe for concurrent use.
type Store struct {
	db    api
	table string
	// pageLimit, when positive, caps the items of one Query or Scan page, so
	// tests can paginate with a few items. Zero leaves DynamoDB's 1 MB pages.
	pageLimit int32
}

var (
	_ notify.Store      = (*Store)(nil)
	_ notify.History    = (*Store)(nil)
	_ notify.FirstPager = (*Store)(nil)
	_ auth.KeyStore     = (*Store)(nil)
)

// New returns a Store over the table named table, created from
// template.yaml's ConnectionsTable (infra/template.CreateTable does that).
func New(client *dynamodb.Client, table string) *Store {
	return &Store{db: ownBodies{client}, table: table}
}

// ownBodies is the DynamoDB client with every request sent through
// ownBodyClient.
type ownBodies struct{ c *dynamodb.Client }

// withOwnBody returns optFns and ownRequestBody, in a slice of its own.
func withOwnBody(optFns []func(*dynamodb.Options)) []func(*dynamodb.Options) {
	return append(optFns[:len(optFns):len(optFns)], ownRequestBody)
}

func (o ownBodies) GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return o.c.GetItem(ctx, in, withOwnBody(optFns)...)
}

func (o ownBodies) PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return o.c.PutItem(ctx, in, withOwnBody(optFns)...)
}

func (o ownBodies) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return o.c.UpdateItem(ctx, in, withOwnBody(optFns)...)
}

func (o ownBodies) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return o.c.DeleteItem(ctx, in, withOwnBody(optFns)...)
}

func (o ownBodies) Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return o.c.Query(ctx, in, withOwnBody(optFns)...)
}

func (o ownBodies) Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return o.c.Scan(ctx, in, withOwnBody(optFns)...)
}

// ownRequestBody sends an operation's requests through ownBodyClient. As a
// per-operation option it wraps the HTTP client the SDK resolved when the
// client was built, defaults and all.
func ownRequestBody(o *dynamodb.Options) {
	o.HTTPClient = ownBodyClient{o.HTTPClient}
}

// ownBodyClient hands the HTTP transport a copy of the request body that no
// one else closes.
//
// net/http may return a response before its write goroutine is done with the
// request body: after sending Content-Length bytes it still copies the body
// to io.Discard to check for excess. The SDK (smithy-go) closes the body as
// soon as it has the response, and its closed body's WriteTo then returns
// io.EOF, which net/http takes for a write error: it closes the connection,
// and a response still being read from it fails with "use of closed network
// connection" (aws/aws-sdk-go-v2#2737). It takes a response larger than the
// transport's read buffer, such as a Query page, and a write goroutine
// delayed for as long as the server takes to answer: a loaded machine, a
// throttled Lambda, a local server.
//
// Upstream closed #2737 by retrying the error instead (PR #2949, in
// aws-sdk-go-v2 v1.32.8; go.mod's v1.48.0 has it), and smithy-go (v1.28.9
// here) still closes the body as soon as it has the response. A retry
// re-reads the whole page on a new connection and meets the same race:
// TestLateRequestWriteKeepsTheResponse, run without this client and with the
// default retryer, fails all 4 attempts. So the workaround stays until
// smithy-go stops closing request bodies before the transport is done.
type ownBodyClient struct{ next dynamodb.HTTPClient }

func (c ownBodyClient) Do(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return c.next.Do(r)
	}
	body, err := io.ReadAll(r.Body)
	_ = r.Body.Close() // as the transport would, since it never sees this body
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	own := r.WithContext(r.Context()) // a shallow copy: r stays the SDK's
	own.Body = io.NopCloser(bytes.NewReader(body))
	own.ContentLength = int64(len(body))
	return c.next.Do(own)
}

// maxPutAttempts bounds PutConnection's retries when the record that failed
// its condition vanishes or expires before it can be read.
const maxPutAttempts = 3

// PutConnection implements notify.Store. One conditional PutItem keeps the
// client id unique per owner without a transaction; an expired record fails
// neither the condition nor the caller, it is replaced in the same write.
// The connection's id item follows (see putIDItem).
func (s *Store) PutConnection(ctx context.Context, c store.Connection, now time.Time) error {
	item := connectionItem(c)
	for range maxPutAttempts {
		_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:           &s.table,
			Item:                item,
			ConditionExpression: aws.String("attribute_not_exists(pk) OR expiresAt <= :now"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":now": number(now.Unix()),
			},
			// DynamoDB then returns the record in the way in the error,
			// sparing a read; dynalite ignores it (see holder).
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		var failed *types.ConditionalCheckFailedException
		if !errors.As(err, &failed) {
			if err != nil {
				return fmt.Errorf("put connection %s/%s: %w", c.OwnerID, c.ClientID, err)
			}
			return s.putIDItem(ctx, c)
		}
		existing, found, err := s.holder(ctx, failed.Item, item)
		if err != nil {
			return fmt.Errorf("put connection %s/%s: %w", c.OwnerID, c.ClientID, err)
		}
		if found && !existing.Expired(now) {
			return &store.ClientTakenError{Existing: existing}
		}
		// The record that failed the condition was deleted, or expired,
		// since: write again.
	}
	return fmt.Errorf("put connection %s/%s: %w", c.OwnerID, c.ClientID, store.ErrConditionFailed)
}

// putIDItem writes c's id item, once c's record is written. If it cannot,
// the record is deleted again (best effort: one that stays is a stale
// record, as a lost $disconnect leaves) and the connect fails, so that no
// connection lives whose $disconnect could not find its record.
func (s *Store) putIDItem(ctx context.Context, c store.Connection) error {
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: idItem(c)})
	if err == nil {
		return nil
	}
	if _, undoErr := s.RemoveClient(ctx, c.OwnerID, c.ClientID, c.ConnectionID); undoErr != nil {
		err = errors.Join(err, undoErr)
	}
	return fmt.Errorf("put connection id %s of %s/%s: %w", c.ConnectionID, c.OwnerID, c.ClientID, err)
}

// holder returns the record that failed a PutConnection condition: old, as
// DynamoDB returns it with ReturnValuesOnConditionCheckFailure, or, when the
// server returned nothing (dynalite), a strongly consistent read of it.
func (s *Store) holder(ctx context.Context, old, item map[string]types.AttributeValue) (store.Connection, bool, error) {
	if len(old) == 0 {
		out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName:      &s.table,
			Key:            map[string]types.AttributeValue{attrPK: item[attrPK], attrSK: item[attrSK]},
			ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return store.Connection{}, false, fmt.Errorf("read existing record: %w", err)
		}
		if len(out.Item) == 0 {
			return store.Connection{}, false, nil
		}
		old = out.Item
	}
	c, err := parseConnection(old)
	if err != nil {
		return store.Connection{}, false, err
	}
	return c, true, nil
}

// ReplaceConnection implements notify.Store: the record, conditioned on the
// old connection id, then c's id item; last, the old connection's id item
// is deleted, on a best-effort basis (deleteIDItem): the take-over is done.
func (s *Store) ReplaceConnection(ctx context.Context, c store.Connection, oldConnectionID string) error {
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 &s.table,
		Item:                      connectionItem(c),
		ConditionExpression:       aws.String("connectionId = :old"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":old": str(oldConnectionID)},
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		err = store.ErrConditionFailed
	}
	if err != nil {
		return fmt.Errorf("replace connection %s of %s/%s: %w", oldConnectionID, c.OwnerID, c.ClientID, err)
	}
	if err := s.putIDItem(ctx, c); err != nil {
		return err
	}
	s.deleteIDItem(ctx, oldConnectionID)
	return nil
}

// deleteIDItem deletes the id item of a connection whose record is gone, on
// a best-effort basis: an id item left behind names a connection that no
// record names, which only a late $disconnect looks up (and deletes, finding
// no record to delete) before TTL removes it.
func (s *Store) deleteIDItem(ctx context.Context, connectionID string) {
	_, _ = s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.table, Key: idKey(connectionID)})
}

// DeleteConnection implements notify.Store with two DeleteItems and no read:
// the id item, which returns the owner and client ids, then the record,
// conditioned on its connection id, so a late disconnect never deletes a
// newer connection of the same client. Both are strongly consistent: a
// disconnect right after its connect finds what the connect wrote.
func (s *Store) DeleteConnection(ctx context.Context, connectionID string) (store.Connection, error) {
	del, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:    &s.table,
		Key:          idKey(connectionID),
		ReturnValues: types.ReturnValueAllOld,
	})
	if err != nil {
		return store.Connection{}, fmt.Errorf("delete connection %s: %w", connectionID, err)
	}
	if len(del.Attributes) == 0 {
		return store.Connection{}, store.ErrNotFound
	}
	id, err := parseIDItem(del.Attributes)
	if err != nil {
		return store.Connection{}, fmt.Errorf("delete connection %s: %w", connectionID, err)
	}
	del, err = s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 &s.table,
		Key:                       connectionKey(id.OwnerID, id.ClientID),
		ConditionExpression:       aws.String("connectionId = :id"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":id": str(connectionID)},
		ReturnValues:              types.ReturnValueAllOld,
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		// Gone already (the 410 cleanup), or a newer connection holds the
		// client now: nothing of ours to delete.
		return store.Connection{}, store.ErrNotFound
	}
	if err != nil {
		return store.Connection{}, fmt.Errorf("delete connection %s of %s/%s: %w", connectionID, id.OwnerID, id.ClientID, err)
	}
	c, err := parseConnection(del.Attributes)
	if err != nil {
		return store.Connection{}, fmt.Errorf("delete connection %s: %w", connectionID, err)
	}
	return c, nil
}

// FindConnection implements notify.Store: a strongly consistent GetItem of
// the connection's id item, which carries the whole record, so a resume
// sent right after the connect finds it.
func (s *Store) FindConnection(ctx context.Context, connectionID string) (store.Connection, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            idKey(connectionID),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return store.Connection{}, fmt.Errorf("find connection %s: %w", connectionID, err)
	}
	if len(out.Item) == 0 {
		return store.Connection{}, store.ErrNotFound
	}
	c, err := parseIDItem(out.Item)
	if err != nil {
		return store.Connection{}, fmt.Errorf("find connection %s: %w", connectionID, err)
	}
	return c, nil
}

// RemoveClient implements notify.Store: the record, conditioned on its
// connection id, then, if it was deleted, the connection's id item. The
// second delete is best effort: an id item left behind names a connection
// that is gone (see ReplaceConnection).
func (s *Store) RemoveClient(ctx context.Context, ownerID, clientID, connectionID string) (bool, error) {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 &s.table,
		Key:                       connectionKey(ownerID, clientID),
		ConditionExpression:       aws.String("connectionId = :id"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":id": str(connectionID)},
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return false, nil // gone already, or a newer connection holds the client
	}
	if err != nil {
		return false, fmt.Errorf("remove connection %s of %s/%s: %w", connectionID, ownerID, clientID, err)
	}
	s.deleteIDItem(ctx, connectionID)
	return true, nil
}

// ListConnections implements notify.Store: one strongly consistent Query on
// the owner's partition, page after page, so a client that connected just
// before the call is never missed. Records come in client id order.
func (s *Store) ListConnections(ctx context.Context, ownerID string, now time.Time) ([]store.Connection, error) {
	conns, _, err := s.ListConnectionsCounted(ctx, ownerID, now)
	return conns, err
}

// ListConnectionsCounted implements notify.CountedLister: the Query of
// ListConnections also reads the owner's count item, which lies in the same
// partition, for the few bytes it adds to the read, where a GetItem of its
// own would cost a request and half a read unit.
func (s *Store) ListConnectionsCounted(ctx context.Context, ownerID string, now time.Time) ([]store.Connection, int, error) {
	var out []store.Connection
	counted := 0
	err := s.queryAll(ctx, &dynamodb.QueryInput{
		TableName:                 &s.table,
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(ownerPrefix + ownerID)},
		ConsistentRead:            aws.Bool(true),
	}, func(it map[string]types.AttributeValue) error {
		if getS(it, attrSK) == countSK {
			n, err := getN(it, attrConnections)
			counted = int(n)
			return err
		}
		c, err := parseConnection(it)
		if err != nil {
			return err
		}
		// Expired items are filtered here rather than by a FilterExpression:
		// a filter saves no read capacity, and this keeps one expiry rule.
		if !c.Expired(now) {
			out = append(out, c)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("query connections of %s: %w", ownerID, err)
	}
	return out, counted, nil
}

// ListConnectionsUpTo implements notify.FirstPager: one strongly
// consistent Query of the owner's partition with a Limit of limit+2 items,
// room for limit+1 records and the count item (whose sort key, "count",
// comes after every "client#" one; an owner may have none). A page of at
// most limit records and no LastEvaluatedKey is the whole partition; one
// of more means more than limit records, and the caller reads no further.
func (s *Store) ListConnectionsUpTo(ctx context.Context, ownerID string, limit int, now time.Time) ([]store.Connection, int, bool, error) {
	limit = max(limit, 0)
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName:                 &s.table,
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(ownerPrefix + ownerID)},
		ConsistentRead:            aws.Bool(true),
		Limit:                     aws.Int32(int32(min(limit+2, math.MaxInt32))),
	})
	if err != nil {
		return nil, 0, false, fmt.Errorf("query connections of %s: %w", ownerID, err)
	}
	var conns []store.Connection
	counted, records := 0, 0
	for _, it := range out.Items {
		if getS(it, attrSK) == countSK {
			n, err := getN(it, attrConnections)
			if err != nil {
				return nil, 0, false, fmt.Errorf("query connections of %s: %w", ownerID, err)
			}
			counted = int(n)
			continue
		}
		records++
		c, err := parseConnection(it)
		if err != nil {
			return nil, 0, false, fmt.Errorf("query connections of %s: %w", ownerID, err)
		}
		if !c.Expired(now) {
			conns = append(conns, c)
		}
	}
	// A page that stopped early (its 1 MB) read fewer records than asked.
	if records <= limit && len(out.LastEvaluatedKey) == 0 {
		return conns, counted, true, nil
	}
	return conns[:min(len(conns), limit+1)], counted, false, nil
}

// queryAll runs in page after page (of the store's page limit, if set) and
// hands each item to each, stopping at the first error.
func (s *Store) queryAll(ctx context.Context, in *dynamodb.QueryInput, each func(map[string]types.AttributeValue) error) error {
	if s.pageLimit > 0 {
		in.Limit = aws.Int32(s.pageLimit)
	}
	pages := dynamodb.NewQueryPaginator(s.db, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, it := range page.Items {
			if err := each(it); err != nil {
				return err
			}
		}
	}
	return nil
}

// LookupKey implements auth.KeyStore. The read is strongly consistent so
// that a revocation takes effect on the next connect.
func (s *Store) LookupKey(ctx context.Context, hash string) (auth.Key, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            keyKey(hash),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return auth.Key{}, fmt.Errorf("get key %s: %w", auth.Prefix(hash), err)
	}
	if len(out.Item) == 0 {
		return auth.Key{}, auth.ErrNotFound
	}
	k, err := parseKey(out.Item)
	if err != nil {
		return auth.Key{}, fmt.Errorf("get key %s: %w", auth.Prefix(hash), err)
	}
	return k, nil
}

// PutKey stores a new key record (by its hash). A key with the same hash is
// never overwritten: that gives ErrKeyExists.
func (s *Store) PutKey(ctx context.Context, k auth.Key) error {
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           &s.table,
		Item:                keyItem(k),
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		err = ErrKeyExists
	}
	if err != nil {
		return fmt.Errorf("put key %s: %w", auth.Prefix(k.Hash), err)
	}
	return nil
}

// RevokeKey marks the key with the given hash revoked; auth.ErrNotFound if there is none.
func (s *Store) RevokeKey(ctx context.Context, hash string) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       keyKey(hash),
		UpdateExpression:          aws.String("SET revoked = :true"),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":true": &types.AttributeValueMemberBOOL{Value: true}},
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		err = auth.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("revoke key %s: %w", auth.Prefix(hash), err)
	}
	return nil
}

// ListKeys returns every key record, ordered by hash. It scans the whole
// table, connection records included: acceptable for an admin tool run by
// hand, never to be called on a request path.
func (s *Store) ListKeys(ctx context.Context) ([]auth.Key, error) {
	in := &dynamodb.ScanInput{
		TableName:                 &s.table,
		FilterExpression:          aws.String("begins_with(pk, :prefix)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":prefix": str(keyPrefix)},
	}
	if s.pageLimit > 0 {
		in.Limit = aws.Int32(s.pageLimit)
	}
	out := []auth.Key{}
	pages := dynamodb.NewScanPaginator(s.db, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("scan keys: %w", err)
		}
		for _, it := range page.Items {
			k, err := parseKey(it)
			if err != nil {
				return nil, fmt.Errorf("scan keys: %w", err)
			}
			out = append(out, k)
		}
	}
	// A Scan returns items in hash-of-partition-key order: sort for a stable listing.
	sortKeys(out)
	return out, nil
}

func sortKeys(ks []auth.Key) {
	sort.Slice(ks, func(i, j int) bool { return ks[i].Hash < ks[j].Hash })
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func connectionKey(ownerID, clientID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: str(ownerPrefix + ownerID), attrSK: str(clientPrefix + clientID)}
}

func idKey(connectionID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: str(connPrefix + connectionID), attrSK: str(connSK)}
}

func keyKey(hash string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: str(keyPrefix + hash), attrSK: str(keySK)}
}

// connectionItem encodes c. Owner and client ids live only in the keys, which
// keeps an item near 130 bytes with short client ids and a key id, so that a
// 1 MB Query page holds some 8,000 connections. expiresAt is rounded up to the second: a record may outlive
// c.ExpiresAt by under a second, never fall short of it.
func connectionItem(c store.Connection) map[string]types.AttributeValue {
	it := connectionKey(c.OwnerID, c.ClientID)
	it[attrConnectionID] = str(c.ConnectionID)
	it[attrConnectedAt] = str(c.ConnectedAt.UTC().Format(time.RFC3339Nano))
	it[attrExpiresAt] = number(expiry(c.ExpiresAt))
	if c.KeyID != "" {
		it[attrKeyID] = str(c.KeyID)
	}
	if !c.TokenExpiresAt.IsZero() {
		it[attrTokenExp] = number(expiry(c.TokenExpiresAt))
	}
	return it
}

// idItem encodes c as its id item: the record's attributes, keyed by the
// connection id, with the owner and client ids as attributes.
func idItem(c store.Connection) map[string]types.AttributeValue {
	it := connectionItem(c)
	it[attrPK], it[attrSK] = str(connPrefix+c.ConnectionID), str(connSK)
	it[attrOwnerID], it[attrClientID] = str(c.OwnerID), str(c.ClientID)
	return it
}

// parseIDItem decodes an id item as the record it stands for.
func parseIDItem(it map[string]types.AttributeValue) (store.Connection, error) {
	if !strings.HasPrefix(getS(it, attrPK), connPrefix) {
		return store.Connection{}, fmt.Errorf("item %q is not a connection id item", getS(it, attrPK))
	}
	rec := maps.Clone(it)
	rec[attrPK], rec[attrSK] = str(ownerPrefix+getS(it, attrOwnerID)), str(clientPrefix+getS(it, attrClientID))
	return parseConnection(rec)
}

func parseConnection(it map[string]types.AttributeValue) (store.Connection, error) {
	pk, sk := getS(it, attrPK), getS(it, attrSK)
	owner, ok1 := strings.CutPrefix(pk, ownerPrefix)
	client, ok2 := strings.CutPrefix(sk, clientPrefix)
	if !ok1 || !ok2 {
		return store.Connection{}, fmt.Errorf("item %q/%q is not a connection record", pk, sk)
	}
	connectedAt, err := time.Parse(time.RFC3339Nano, getS(it, attrConnectedAt))
	if err != nil {
		return store.Connection{}, fmt.Errorf("item %s/%s: connectedAt: %w", pk, sk, err)
	}
	exp, err := getN(it, attrExpiresAt)
	if err != nil {
		return store.Connection{}, fmt.Errorf("item %s/%s: %w", pk, sk, err)
	}
	var tokenExp time.Time
	if _, ok := it[attrTokenExp]; ok {
		n, err := getN(it, attrTokenExp)
		if err != nil {
			return store.Connection{}, fmt.Errorf("item %s/%s: %w", pk, sk, err)
		}
		tokenExp = time.Unix(n, 0).UTC()
	}
	return store.Connection{
		OwnerID:        owner,
		ClientID:       client,
		ConnectionID:   getS(it, attrConnectionID),
		KeyID:          getS(it, attrKeyID),
		TokenExpiresAt: tokenExp,
		ConnectedAt:    connectedAt,
		ExpiresAt:      time.Unix(exp, 0).UTC(),
	}, nil
}

func keyItem(k auth.Key) map[string]types.AttributeValue {
	it := keyKey(k.Hash)
	it[attrOwnerID] = str(k.OwnerID)
	if k.Name != "" {
		it[attrName] = str(k.Name)
	}
	it[attrCreatedAt] = str(k.CreatedAt.UTC().Format(time.RFC3339Nano))
	it[attrRevoked] = &types.AttributeValueMemberBOOL{Value: k.Revoked}
	return it
}

func parseKey(it map[string]types.AttributeValue) (auth.Key, error) {
	pk := getS(it, attrPK)
	hash, ok := strings.CutPrefix(pk, keyPrefix)
	if !ok {
		return auth.Key{}, fmt.Errorf("item %q is not a key record", pk)
	}
	createdAt, err := time.Parse(time.RFC3339Nano, getS(it, attrCreatedAt))
	if err != nil {
		return auth.Key{}, fmt.Errorf("key %s: createdAt: %w", auth.Prefix(hash), err)
	}
	revoked, _ := it[attrRevoked].(*types.AttributeValueMemberBOOL)
	return auth.Key{
		Hash:      hash,
		OwnerID:   getS(it, attrOwnerID),
		Name:      getS(it, attrName),
		CreatedAt: createdAt,
		Revoked:   revoked != nil && revoked.Value,
	}, nil
}

func getS(it map[string]types.AttributeValue, name string) string {
	if v, ok := it[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func getN(it map[string]types.AttributeValue, name string) (int64, error) {
	v, ok := it[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("%s is missing or not a number", name)
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return n, nil
}
