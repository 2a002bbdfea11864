package dynamo

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsnotify/wsnotify/infra/template"
	"github.com/wsnotify/wsnotify/shared/auth"
	"github.com/wsnotify/wsnotify/shared/store"
)

// fakeAPI is a DynamoDB client made of functions; a call to one left nil
// fails the test. It plays the parts of DynamoDB that dynalite cannot.
type fakeAPI struct {
	t          *testing.T
	getItem    func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error)
	putItem    func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error)
	deleteItem func(*dynamodb.DeleteItemInput) (*dynamodb.DeleteItemOutput, error)
	query      func(*dynamodb.QueryInput) (*dynamodb.QueryOutput, error)
}

func (f *fakeAPI) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if f.getItem == nil {
		f.t.Fatal("unexpected GetItem")
	}
	return f.getItem(in)
}

func (f *fakeAPI) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if f.putItem == nil {
		f.t.Fatal("unexpected PutItem")
	}
	return f.putItem(in)
}

func (f *fakeAPI) DeleteItem(_ context.Context, in *dynamodb.DeleteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	if f.deleteItem == nil {
		f.t.Fatal("unexpected DeleteItem")
	}
	return f.deleteItem(in)
}

func (f *fakeAPI) Query(_ context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if f.query == nil {
		f.t.Fatal("unexpected Query")
	}
	return f.query(in)
}

func (f *fakeAPI) UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	f.t.Fatal("unexpected UpdateItem")
	return nil, nil
}

func (f *fakeAPI) Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	f.t.Fatal("unexpected Scan")
	return nil, nil
}

func conditionFailed(item map[string]types.AttributeValue) error {
	return &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed"), Item: item}
}

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func TestPutConnection(t *testing.T) {
	ctx := context.Background()
	holder := conn(1, t0)
	next := conn(2, t0.Add(time.Minute))
	next.ClientID = holder.ClientID

	t.Run("the holder DynamoDB returns with the failed condition is used without a read", func(t *testing.T) {
		s := &Store{table: "t", db: &fakeAPI{t: t, putItem: func(in *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
			if in.ReturnValuesOnConditionCheckFailure != types.ReturnValuesOnConditionCheckFailureAllOld {
				t.Errorf("ReturnValuesOnConditionCheckFailure = %q, want ALL_OLD", in.ReturnValuesOnConditionCheckFailure)
			}
			return nil, conditionFailed(connectionItem(holder))
		}}}
		err := s.PutConnection(ctx, next, next.ConnectedAt)
		var taken *store.ClientTakenError
		if !errors.As(err, &taken) || taken.Existing.ConnectionID != holder.ConnectionID || !taken.Existing.ConnectedAt.Equal(holder.ConnectedAt) {
			t.Fatalf("PutConnection = %v, want *store.ClientTakenError naming %s", err, holder.ConnectionID)
		}
	})
	t.Run("a holder deleted before it could be read does not block the write", func(t *testing.T) {
		puts := 0
		s := &Store{table: "t", db: &fakeAPI{t: t,
			putItem: func(in *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
				if getS(in.Item, attrPK) != "owner#acct_1" {
					return &dynamodb.PutItemOutput{}, nil // the id item
				}
				puts++
				if puts == 1 {
					return nil, conditionFailed(nil)
				}
				return &dynamodb.PutItemOutput{}, nil
			},
			getItem: func(in *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
				if !aws.ToBool(in.ConsistentRead) {
					t.Error("the holder is read without ConsistentRead")
				}
				return &dynamodb.GetItemOutput{}, nil
			},
		}}
		if err := s.PutConnection(ctx, next, next.ConnectedAt); err != nil || puts != 2 {
			t.Fatalf("PutConnection = %v after %d puts, want nil after 2", err, puts)
		}
	})
	t.Run("a write that keeps losing to vanishing holders gives up", func(t *testing.T) {
		s := &Store{table: "t", db: &fakeAPI{t: t,
			putItem: func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) { return nil, conditionFailed(nil) },
			getItem: func(*dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) { return &dynamodb.GetItemOutput{}, nil },
		}}
		if err := s.PutConnection(ctx, next, next.ConnectedAt); !errors.Is(err, store.ErrConditionFailed) {
			t.Fatalf("PutConnection = %v, want store.ErrConditionFailed", err)
		}
	})
	t.Run("a DynamoDB failure is returned with context", func(t *testing.T) {
		throttled := errors.New("ProvisionedThroughputExceededException")
		s := &Store{table: "t", db: &fakeAPI{t: t, putItem: func(*dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
			return nil, throttled
		}}}
		err := s.PutConnection(ctx, next, next.ConnectedAt)
		if !errors.Is(err, throttled) || err.Error() != "put connection acct_1/tab-00001: ProvisionedThroughputExceededException" {
			t.Fatalf("PutConnection = %v", err)
		}
	})
}

func TestDeleteConnection(t *testing.T) {
	old := conn(1, t0)
	idOf := func(in *dynamodb.DeleteItemInput) string { return getS(in.Key, attrPK) }
	t.Run("a late disconnect deletes the id item and not a newer connection's record", func(t *testing.T) {
		var deleted []string
		s := &Store{table: "t", db: &fakeAPI{t: t, deleteItem: func(in *dynamodb.DeleteItemInput) (*dynamodb.DeleteItemOutput, error) {
			deleted = append(deleted, idOf(in))
			if len(deleted) == 1 {
				return &dynamodb.DeleteItemOutput{Attributes: idItem(old)}, nil
			}
			want := old.ConnectionID
			if got := in.ExpressionAttributeValues[":id"]; aws.ToString(in.ConditionExpression) != "connectionId = :id" || getS(map[string]types.AttributeValue{"v": got}, "v") != want {
				t.Errorf("the record's DeleteItem is not conditioned on connection %s", want)
			}
			return nil, conditionFailed(nil)
		}}}
		if _, err := s.DeleteConnection(context.Background(), old.ConnectionID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("DeleteConnection = %v, want store.ErrNotFound", err)
		}
		if want := []string{"conn#" + old.ConnectionID, "owner#acct_1"}; fmt.Sprint(deleted) != fmt.Sprint(want) {
			t.Fatalf("deleted %v, want %v in that order", deleted, want)
		}
	})
	t.Run("a connection without an id item touches no record", func(t *testing.T) {
		s := &Store{table: "t", db: &fakeAPI{t: t, deleteItem: func(in *dynamodb.DeleteItemInput) (*dynamodb.DeleteItemOutput, error) {
			if idOf(in) != "conn#"+old.ConnectionID || in.ReturnValues != types.ReturnValueAllOld {
				t.Errorf("DeleteItem of %s returning %q, want the id item's, ALL_OLD", idOf(in), in.ReturnValues)
			}
			return &dynamodb.DeleteItemOutput{}, nil
		}}}
		if _, err := s.DeleteConnection(context.Background(), old.ConnectionID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("DeleteConnection = %v, want store.ErrNotFound", err)
		}
	})
}

func TestAnIDItemThatCannotBeWrittenFailsTheConnectAndTakesItsRecordBack(t *testing.T) {
	c := conn(1, t0)
	throttled := errors.New("ProvisionedThroughputExceededException")
	var puts, deleted []string
	s := &Store{table: "t", db: &fakeAPI{t: t,
		putItem: func(in *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
			puts = append(puts, getS(in.Item, attrPK))
			if len(puts) == 2 {
				return nil, throttled
			}
			return &dynamodb.PutItemOutput{}, nil
		},
		deleteItem: func(in *dynamodb.DeleteItemInput) (*dynamodb.DeleteItemOutput, error) {
			deleted = append(deleted, getS(in.Key, attrPK))
			return &dynamodb.DeleteItemOutput{}, nil
		},
	}}
	err := s.PutConnection(context.Background(), c, t0)
	if !errors.Is(err, throttled) {
		t.Fatalf("PutConnection = %v, want the id item's failure", err)
	}
	if want := []string{"owner#acct_1", "conn#" + c.ConnectionID}; fmt.Sprint(puts) != fmt.Sprint(want) {
		t.Fatalf("put %v, want %v in that order", puts, want)
	}
	if len(deleted) == 0 || deleted[0] != "owner#acct_1" {
		t.Fatalf("deleted %v, want the record taken back", deleted)
	}
}

func TestIDItemRoundTrip(t *testing.T) {
	c := conn(7, t0.Add(123*time.Millisecond))
	c.ExpiresAt = t0.Add(time.Hour)
	got, err := parseIDItem(idItem(c))
	if err != nil || got != c {
		t.Fatalf("parseIDItem(idItem(c)) = %+v, %v; want %+v", got, err, c)
	}
	if _, err := parseIDItem(connectionItem(c)); err == nil {
		t.Fatal("a record parsed as an id item")
	}
}

func TestKeyRoundTrip(t *testing.T) {
	k := auth.Key{Hash: auth.Hash("wsn_x"), OwnerID: "acct_1", CreatedAt: t0.Add(123 * time.Microsecond)}
	got, err := parseKey(keyItem(k))
	if err != nil || got != k {
		t.Fatalf("parseKey(keyItem(k)) = %+v, %v; want %+v", got, err, k)
	}
	if _, ok := keyItem(k)[attrName]; ok {
		t.Error("an empty name is stored as an attribute")
	}
}

func TestTemplateTableMatchesTheStore(t *testing.T) {
	tpl, err := template.Repo()
	if err != nil {
		t.Fatal(err)
	}
	attr, err := tpl.TimeToLiveAttribute(template.ConnectionsTable)
	if err != nil || attr != TTLAttribute {
		t.Fatalf("TTL attribute = %q, %v; want %q", attr, err, TTLAttribute)
	}
	in, err := tpl.CreateTableInput(template.ConnectionsTable, "t")
	if err != nil {
		t.Fatal(err)
	}
	// Every read by a key is a GetItem or a Query of the table itself, which
	// can be strongly consistent; an index could not be.
	if len(in.GlobalSecondaryIndexes) != 0 || len(in.LocalSecondaryIndexes) != 0 {
		t.Fatalf("table indexes = %+v %+v, want none", in.GlobalSecondaryIndexes, in.LocalSecondaryIndexes)
	}
}
