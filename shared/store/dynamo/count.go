package dynamo

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsnotify/wsnotify/shared/store"
)

// The count item: one per owner, the number of its connections
// (notify.ConnectionCounter). It lies in the owner's partition, beside the
// connection records (whose sort keys all start "client#"), so the Query
// that lists them for a publish reads it too (ListConnectionsCounted).
const (
	countSK         = "count"
	attrConnections = "connections"
)

func countKey(ownerID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: str(ownerPrefix + ownerID), attrSK: str(countSK)}
}

// countNames names the count attribute in expressions.
var countNames = map[string]string{"#n": attrConnections}

// ReserveConnection implements notify.ConnectionCounter: one UpdateItem that
// adds 1 on the condition that the count is below max. A count that does not
// exist yet is created at 1.
func (s *Store) ReserveConnection(ctx context.Context, ownerID string, max int) (int, error) {
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       countKey(ownerID),
		UpdateExpression:          aws.String("ADD #n :one"),
		ConditionExpression:       aws.String("attribute_not_exists(#n) OR #n < :max"),
		ExpressionAttributeNames:  countNames,
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": number(1), ":max": number(int64(max))},
		// The new count comes back in the same request: the figures report
		// how many connections the owner held.
		ReturnValues: types.ReturnValueUpdatedNew,
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return max, store.ErrOwnerFull
	}
	if err != nil {
		return 0, fmt.Errorf("count connection of %s: %w", ownerID, err)
	}
	n, err := getN(out.Attributes, attrConnections)
	if err != nil {
		return 0, fmt.Errorf("count connection of %s: %w", ownerID, err)
	}
	return int(n) - 1, nil
}

// ReleaseConnections implements notify.ConnectionCounter: one UpdateItem
// that subtracts k on the condition that at least k are counted. A count
// below k (it drifted low: a correction raced a release) is set to zero by
// a second UpdateItem, on the condition that it is still below k; if a
// connect raised it meanwhile, the owner's next publish corrects it.
func (s *Store) ReleaseConnections(ctx context.Context, ownerID string, k int) error {
	var failed *types.ConditionalCheckFailedException
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       countKey(ownerID),
		UpdateExpression:          aws.String("ADD #n :minus"),
		ConditionExpression:       aws.String("#n >= :k"),
		ExpressionAttributeNames:  countNames,
		ExpressionAttributeValues: map[string]types.AttributeValue{":minus": number(int64(-k)), ":k": number(int64(k))},
	})
	if errors.As(err, &failed) && k > 1 {
		_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 &s.table,
			Key:                       countKey(ownerID),
			UpdateExpression:          aws.String("SET #n = :zero"),
			ConditionExpression:       aws.String("#n < :k"),
			ExpressionAttributeNames:  countNames,
			ExpressionAttributeValues: map[string]types.AttributeValue{":zero": number(0), ":k": number(int64(k))},
		})
	}
	if errors.As(err, &failed) {
		return nil // at zero already, or no count: nothing to take
	}
	if err != nil {
		return fmt.Errorf("release %d connections of %s: %w", k, ownerID, err)
	}
	return nil
}

// ConnectionCount implements notify.ConnectionCounter with an eventually
// consistent GetItem, half the read cost of a consistent one: a publish
// reads the count with its Query instead (ListConnectionsCounted), and a
// correction rewrites the count on the condition that it is still what was
// read, so a stale read only skips a correction.
func (s *Store) ConnectionCount(ctx context.Context, ownerID string) (int, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                &s.table,
		Key:                      countKey(ownerID),
		ProjectionExpression:     aws.String("#n"),
		ExpressionAttributeNames: countNames,
	})
	if err != nil {
		return 0, fmt.Errorf("read connection count of %s: %w", ownerID, err)
	}
	if len(out.Item) == 0 {
		return 0, nil
	}
	n, err := getN(out.Item, attrConnections)
	if err != nil {
		return 0, fmt.Errorf("read connection count of %s: %w", ownerID, err)
	}
	return int(n), nil
}

// CorrectConnectionCount implements notify.ConnectionCounter: one UpdateItem
// conditioned on the count read before.
func (s *Store) CorrectConnectionCount(ctx context.Context, ownerID string, was, n int) error {
	cond := "#n = :was"
	if was == 0 {
		cond = "attribute_not_exists(#n) OR #n = :was"
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       countKey(ownerID),
		UpdateExpression:          aws.String("SET #n = :n"),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  countNames,
		ExpressionAttributeValues: map[string]types.AttributeValue{":was": number(int64(was)), ":n": number(int64(n))},
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		err = store.ErrConditionFailed
	}
	if err != nil {
		return fmt.Errorf("correct connection count of %s from %d to %d: %w", ownerID, was, n, err)
	}
	return nil
}
