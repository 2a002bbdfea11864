package dynamo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/store"
)

// The history's keys and attributes; the item layout is in the package doc.
const (
	historyPrefix = "history#"
	headSK        = "head"
	seqPrefix     = "seq#"
	idPrefix      = "id#"
	jobPrefix     = "job#"

	attrHead      = "head"
	attrTicket    = "ticket"
	attrSeq       = "seq"
	attrID        = "id"
	attrType      = "type"
	attrJobID     = "jobId"
	attrBody      = "body"
	attrClaim     = "claim"
	attrClaimedAt = "claimedAt"
)

// claimLease is how long an event's id stays with the publisher that claimed
// it and has not numbered it yet. Past it, a redelivery takes the claim over:
// the first publisher is taken for dead. RecordEvent gives up numbering after
// half of it (and releases its claim), so a claim older than the lease is a
// dead publisher's whatever the functions' timeouts (the job events
// function's is 2 minutes), with half a minute to spare for a last request
// still on its way. It is short enough that an S3 event's first
// asynchronous retry (about a minute later) or an SQS redelivery (after the
// 12-minute visibility timeout) finds a dead publisher's claim lapsed or
// nearly so, rather than failing on it until its retries run out.
const claimLease = time.Minute

// inFlightWait bounds how long RecordEvent waits for another publisher that
// holds the event's id to number it (two deliveries of one record at once,
// as SQS may do) before giving up with store.ErrEventInFlight. A live holder
// needs two requests; the bound leaves room for a slow one within the
// functions' 10-second timeout.
const inFlightWait = 3 * time.Second

// maxRecordAttempts bounds RecordEvent's rounds when the item it read
// changes under it (a marker released or taken over between two requests).
const maxRecordAttempts = 4

var errEmptyID = errors.New("event has no owner or no id")

// RecordEvent implements notify.History with single-item writes only. An
// event has two items (three for a job event) beside the owner's counter,
// written in this order:
//
//  1. Claim: PutItem of the id marker id#<id> (the event's content, a random
//     claim token, claimedAt), conditioned on no live marker. A refusal is a
//     redelivery: a marker with a seq gives the held event back (duplicate),
//     after writing its event and job items again in case their publisher died
//     before it did (both writes are idempotent); a marker without a seq is
//     another publisher's claim in flight, waited for (inFlightWait), or taken
//     over once older than claimLease.
//  2. Number: UpdateItem ADD head 1 on the counter → S. The same update sets a
//     random ticket, and is conditioned on the ticket not being already ours:
//     when the SDK resends the update after an answer lost on the way back
//     (a timeout, a reset connection, a 500 after the write), the resent
//     update is refused and S is read from the refusal (or the counter) as
//     long as no one else has taken a number since.
//  3. Commit: UpdateItem SET seq = S on the marker, conditioned on our claim
//     and on no seq: from here on S belongs to the id, and redeliveries get
//     it back.
//  4. PutItem of the event item seq#S.
//  5. For a job event, the job item job#<jobId>, conditioned on holding an
//     older seq or none, so a late write never hides a newer state.
//
// Every path that numbers an event goes through steps 2 and 3 in that order,
// so an id never gets two seqs (no duplicate), and a seq taken at step 2
// whose step 3 never happens is the only gap: the publisher dies or fails
// between the two (a Lambda timeout, an error at step 3, half the lease
// spent), or step 2's answer is lost for good (every SDK attempt failed) or
// lost while another publisher of the same owner took the next number. A
// gap is a seq that no event has: replay skips it. On an error before step
// 3 the claim is released, so a redelivery need not wait for the lease.
func (s *Store) RecordEvent(ctx context.Context, e store.Event, keep int, now time.Time) (store.Event, bool, error) {
	if e.OwnerID == "" || e.ID == "" {
		return store.Event{}, false, fmt.Errorf("record event %q of %q: %w", e.ID, e.OwnerID, errEmptyID)
	}
	claim := rand.Text()
	// Steps 1 to 3 end well within the lease (see claimLease); 4 and 5 are
	// idempotent and need no claim.
	numbering, cancel := context.WithTimeout(ctx, s.lease()/2)
	defer cancel()
	for range maxRecordAttempts {
		m, mine, err := s.claimEvent(numbering, e, claim, now)
		if err != nil {
			return store.Event{}, false, fmt.Errorf("record event %s of %s: %w", e.ID, e.OwnerID, err)
		}
		if !mine {
			if err := s.writeEvent(ctx, m); err != nil {
				return store.Event{}, false, fmt.Errorf("record event %s of %s again: %w", e.ID, e.OwnerID, err)
			}
			return m, true, nil
		}
		seq, committed, err := s.numberEvent(numbering, m.OwnerID, m.ID, claim)
		if err != nil {
			return store.Event{}, false, fmt.Errorf("record event %s of %s: %w", e.ID, e.OwnerID, err)
		}
		if !committed {
			continue // our claim was taken over: see who holds the id now
		}
		m.Seq = seq
		if err := s.writeEvent(ctx, m); err != nil {
			return store.Event{}, false, fmt.Errorf("record event %s of %s as %d: %w", e.ID, e.OwnerID, seq, err)
		}
		return m, false, nil
	}
	return store.Event{}, false, fmt.Errorf("record event %s of %s: %w", e.ID, e.OwnerID, store.ErrConditionFailed)
}

// claimEvent is step 1: it returns the event under e's id and whether we hold
// its claim (to number it), or the numbered event of an earlier delivery.
// The event we hold may be another delivery's content, taken over.
func (s *Store) claimEvent(ctx context.Context, e store.Event, claim string, now time.Time) (store.Event, bool, error) {
	deadline := time.Now().Add(s.waitInFlight())
	wait := 10 * time.Millisecond
claiming:
	for range maxRecordAttempts {
		_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: &s.table,
			Item:      markerItem(e, claim, now),
			// An expired marker is absent, as its event is: the id is new
			// again (as in the embedded store, whose ids leave with their
			// events).
			ConditionExpression:       aws.String("attribute_not_exists(pk) OR #exp <= :now"),
			ExpressionAttributeNames:  map[string]string{"#exp": attrExpiresAt},
			ExpressionAttributeValues: map[string]types.AttributeValue{":now": number(now.Unix())},
			// DynamoDB returns the marker in the way in the refusal, sparing
			// a read; dynalite ignores it.
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		var failed *types.ConditionalCheckFailedException
		if !errors.As(err, &failed) {
			if err != nil {
				return store.Event{}, false, fmt.Errorf("claim id: %w", err)
			}
			return e, true, nil
		}
		held := failed.Item
		for {
			if len(held) == 0 {
				if held, err = s.getItem(ctx, markerKey(e.OwnerID, e.ID)); err != nil {
					return store.Event{}, false, fmt.Errorf("read claim: %w", err)
				}
			}
			if len(held) == 0 {
				// Released (its publisher failed) or deleted by TTL since.
				continue claiming
			}
			m, err := parseMarker(e.OwnerID, held)
			if err != nil {
				return store.Event{}, false, err
			}
			switch {
			case !now.Before(m.event.ExpiresAt):
				continue claiming // expired since the refusal
			case m.event.Seq > 0:
				return m.event, false, nil
			case m.claim == claim:
				// Our own put, resent by the SDK after its answer was lost.
				return m.event, true, nil
			case !now.Before(m.claimedAt.Add(s.lease())):
				took, err := s.takeOver(ctx, e.OwnerID, e.ID, m.claim, claim, now)
				if err != nil {
					return store.Event{}, false, err
				}
				if took {
					return m.event, true, nil
				}
			case !time.Now().Before(deadline):
				return store.Event{}, false, store.ErrEventInFlight
			default:
				if err := sleep(ctx, wait); err != nil {
					return store.Event{}, false, err
				}
				wait = min(2*wait, 200*time.Millisecond)
			}
			held = nil
		}
	}
	return store.Event{}, false, fmt.Errorf("claim id: %w", store.ErrConditionFailed)
}

// takeOver moves a lapsed claim to us, unless its holder numbered the event
// or someone else took the claim first.
func (s *Store) takeOver(ctx context.Context, owner, id, theirs, ours string, now time.Time) (bool, error) {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &s.table,
		Key:                      markerKey(owner, id),
		UpdateExpression:         aws.String("SET #claim = :ours, #claimedAt = :now"),
		ConditionExpression:      aws.String("#claim = :theirs AND attribute_not_exists(#seq)"),
		ExpressionAttributeNames: map[string]string{"#claim": attrClaim, "#claimedAt": attrClaimedAt, "#seq": attrSeq},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":ours": str(ours), ":theirs": str(theirs), ":now": number(now.Unix()),
		},
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("take over claim: %w", err)
	}
	return true, nil
}

// numberEvent is steps 2 and 3. committed is false, with no error, when our
// claim was taken over before step 3: the seq taken is then a gap.
func (s *Store) numberEvent(ctx context.Context, owner, id, claim string) (seq int64, committed bool, err error) {
	if seq, err = s.nextSeq(ctx, owner); err != nil {
		s.release(ctx, owner, id, claim)
		return 0, false, err
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       markerKey(owner, id),
		UpdateExpression:          aws.String("SET #seq = :seq"),
		ConditionExpression:       aws.String("#claim = :claim AND attribute_not_exists(#seq)"),
		ExpressionAttributeNames:  map[string]string{"#seq": attrSeq, "#claim": attrClaim},
		ExpressionAttributeValues: map[string]types.AttributeValue{":seq": number(seq), ":claim": str(claim)},
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		// Either the SDK resent our own update after losing its answer, or
		// the claim lapsed and a redelivery took it over.
		held, err := s.getItem(ctx, markerKey(owner, id))
		if err != nil {
			return 0, false, fmt.Errorf("read claim: %w", err)
		}
		if n, err := getN(held, attrSeq); err == nil && n == seq && getS(held, attrClaim) == claim {
			return seq, true, nil
		}
		return 0, false, nil
	}
	if err != nil {
		s.release(ctx, owner, id, claim)
		return 0, false, fmt.Errorf("commit seq %d: %w", seq, err)
	}
	return seq, true, nil
}

// nextSeq is step 2: the owner's next seq, from the counter.
func (s *Store) nextSeq(ctx context.Context, owner string) (int64, error) {
	for range maxRecordAttempts {
		ticket := rand.Text()
		out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                &s.table,
			Key:                      historyKey(owner, headSK),
			UpdateExpression:         aws.String("ADD #head :one SET #ticket = :ticket"),
			ConditionExpression:      aws.String("attribute_not_exists(#ticket) OR #ticket <> :ticket"),
			ExpressionAttributeNames: map[string]string{"#head": attrHead, "#ticket": attrTicket},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":one": number(1), ":ticket": str(ticket),
			},
			ReturnValues:                        types.ReturnValueUpdatedNew,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		var failed *types.ConditionalCheckFailedException
		if errors.As(err, &failed) {
			// Only a resend of this very update is refused: the first
			// attempt took a number. It is the head as long as the ticket
			// is still ours.
			held := failed.Item
			if len(held) == 0 {
				if held, err = s.getItem(ctx, historyKey(owner, headSK)); err != nil {
					return 0, fmt.Errorf("read counter: %w", err)
				}
			}
			if getS(held, attrTicket) == ticket {
				return getN(held, attrHead)
			}
			continue // someone took the next one since: ours is a gap
		}
		if err != nil {
			return 0, fmt.Errorf("take a seq: %w", err)
		}
		return getN(out.Attributes, attrHead)
	}
	return 0, fmt.Errorf("take a seq: %w", store.ErrConditionFailed)
}

// release gives up our claim of an id we have not numbered, so that a
// redelivery can number it at once rather than after claimLease. It is best
// effort, on a context of its own since ctx may be what ended: if it fails,
// the lease still frees the id.
func (s *Store) release(ctx context.Context, owner, id, claim string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_, _ = s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 &s.table,
		Key:                       markerKey(owner, id),
		ConditionExpression:       aws.String("#claim = :claim AND attribute_not_exists(#seq)"),
		ExpressionAttributeNames:  map[string]string{"#claim": attrClaim, "#seq": attrSeq},
		ExpressionAttributeValues: map[string]types.AttributeValue{":claim": str(claim)},
	})
}

// writeEvent is steps 4 and 5, for e numbered. Both are idempotent: the event
// item is always written whole with the same content, and the job item only
// moves forward.
func (s *Store) writeEvent(ctx context.Context, e store.Event) error {
	it := historyKey(e.OwnerID, seqSK(e.Seq))
	eventAttrs(it, e)
	it[attrID] = str(e.ID)
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: it}); err != nil {
		return fmt.Errorf("put event %d: %w", e.Seq, err)
	}
	if e.JobID == "" {
		return nil
	}
	// The body is kept only while the job runs: CurrentJobs returns nothing
	// else, and a finished job's item stays small until it expires.
	set := "SET #seq = :seq, #id = :id, #type = :type, #exp = :exp"
	names := map[string]string{"#seq": attrSeq, "#id": attrID, "#type": attrType, "#exp": attrExpiresAt, "#body": attrBody}
	values := map[string]types.AttributeValue{
		":seq": number(e.Seq), ":id": str(e.ID), ":type": str(e.Type), ":exp": number(expiry(e.ExpiresAt)),
	}
	if e.Type == string(event.TypeJobProgress) && len(e.Body) > 0 {
		set += ", #body = :body"
		values[":body"] = &types.AttributeValueMemberB{Value: e.Body}
	} else {
		set += " REMOVE #body"
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       historyKey(e.OwnerID, jobPrefix+e.JobID),
		UpdateExpression:          aws.String(set),
		ConditionExpression:       aws.String("attribute_not_exists(#seq) OR #seq < :seq"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return nil // the job holds a newer event already
	}
	if err != nil {
		return fmt.Errorf("update job %s to %d: %w", e.JobID, e.Seq, err)
	}
	return nil
}

// EventsSince implements notify.History: a consistent GetItem of the
// counter, then a consistent Query of the event items from since+1 (or from
// the oldest seq retention by count keeps) up to the head, skipping expired
// ones. When that range starts above the oldest seq retention by count
// keeps, one more Query finds the oldest event still held, for the window
// (its first item, unless expired ones lie before it).
//
// An event whose seq is taken but whose item is not written yet (its
// publisher between steps 3 and 4 of RecordEvent) is missing from the
// answer though below the head, while events above it may be there: its
// publisher pushes it live once written, and a later replay has it.
func (s *Store) EventsSince(ctx context.Context, owner string, since int64, limit, keep int, now time.Time) ([]store.Event, store.Window, error) {
	head, err := s.head(ctx, owner)
	if err != nil {
		return nil, store.Window{}, fmt.Errorf("events of %s since %d: %w", owner, since, err)
	}
	floor := heldFloor(head, keep)
	from := max(since+1, floor)
	var events []store.Event
	if limit > 0 && from <= head {
		if events, err = s.queryEvents(ctx, owner, from, head, limit, now); err != nil {
			return nil, store.Window{}, fmt.Errorf("events of %s since %d: %w", owner, since, err)
		}
	}
	// The oldest held is below from, or else the first event read; with
	// nothing read (limit 0), it is looked for up to the head.
	upper := from - 1
	if limit <= 0 {
		upper = head
	}
	w := store.Window{Head: head, Oldest: head + 1}
	oldest, found, err := s.oldestHeld(ctx, owner, floor, min(upper, head), now)
	switch {
	case err != nil:
		return nil, store.Window{}, fmt.Errorf("events of %s since %d: %w", owner, since, err)
	case found:
		w.Oldest = oldest
	case len(events) > 0:
		w.Oldest = events[0].Seq
	}
	return events, w, nil
}

// CurrentJobs implements notify.History: a consistent read of the counter
// and a consistent Query of the owner's job items (one per job whose latest
// event has not expired from the table yet; a finished job's item is small).
func (s *Store) CurrentJobs(ctx context.Context, owner string, keep int, now time.Time) ([]store.Event, int64, error) {
	head, err := s.head(ctx, owner)
	if err != nil {
		return nil, 0, fmt.Errorf("current jobs of %s: %w", owner, err)
	}
	floor := heldFloor(head, keep)
	var jobs []store.Event
	err = s.queryAll(ctx, &dynamodb.QueryInput{
		TableName:              &s.table,
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :job)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(historyPrefix + owner), ":job": str(jobPrefix),
		},
		ConsistentRead: aws.Bool(true),
	}, func(it map[string]types.AttributeValue) error {
		e, err := parseJob(owner, it)
		if err != nil {
			return err
		}
		// A job item newer than the head read above is left out, so the
		// answer is the state as of that head.
		if e.Type == string(event.TypeJobProgress) && e.Seq >= floor && e.Seq <= head && now.Before(e.ExpiresAt) {
			jobs = append(jobs, e)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("query jobs of %s: %w", owner, err)
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].Seq < jobs[j].Seq })
	return jobs, head, nil
}

// head returns the owner's last seq given, 0 before any.
func (s *Store) head(ctx context.Context, owner string) (int64, error) {
	it, err := s.getItem(ctx, historyKey(owner, headSK))
	if err != nil {
		return 0, fmt.Errorf("read counter: %w", err)
	}
	if len(it) == 0 {
		return 0, nil
	}
	return getN(it, attrHead)
}

// queryEvents returns up to limit unexpired events of seq from..to, in order.
func (s *Store) queryEvents(ctx context.Context, owner string, from, to int64, limit int, now time.Time) ([]store.Event, error) {
	var out []store.Event
	var start map[string]types.AttributeValue
	for {
		in := s.seqRange(owner, from, to, limit-len(out))
		in.ExclusiveStartKey = start
		page, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("query events %d to %d: %w", from, to, err)
		}
		for _, it := range page.Items {
			e, err := parseEvent(owner, it)
			if err != nil {
				return nil, fmt.Errorf("query events %d to %d: %w", from, to, err)
			}
			// Expired events are skipped here rather than by a
			// FilterExpression, which would save no read capacity, and
			// whose Limit would count them anyway.
			if now.Before(e.ExpiresAt) {
				out = append(out, e)
			}
		}
		if start = page.LastEvaluatedKey; len(start) == 0 || len(out) >= limit {
			return out, nil
		}
	}
}

// oldestHeld returns the lowest unexpired seq among from..to. Expired events
// lie mostly at the low end until TTL deletes them (within days), so it
// reads one item first, then bigger pages.
func (s *Store) oldestHeld(ctx context.Context, owner string, from, to int64, now time.Time) (int64, bool, error) {
	if from > to {
		return 0, false, nil
	}
	var start map[string]types.AttributeValue
	for n := 1; ; n = 100 {
		in := s.seqRange(owner, from, to, n)
		in.ExclusiveStartKey = start
		in.ProjectionExpression = aws.String("sk, #exp")
		in.ExpressionAttributeNames = map[string]string{"#exp": attrExpiresAt}
		page, err := s.db.Query(ctx, in)
		if err != nil {
			return 0, false, fmt.Errorf("query oldest event: %w", err)
		}
		for _, it := range page.Items {
			seq, err := parseSeqSK(getS(it, attrSK))
			if err != nil {
				return 0, false, fmt.Errorf("query oldest event: %w", err)
			}
			exp, err := getN(it, attrExpiresAt)
			if err != nil {
				return 0, false, fmt.Errorf("query oldest event %d: %w", seq, err)
			}
			if now.Before(time.Unix(exp, 0)) {
				return seq, true, nil
			}
		}
		if start = page.LastEvaluatedKey; len(start) == 0 {
			return 0, false, nil
		}
	}
}

// seqRange is a consistent Query of the owner's event items from..to, at most
// n items a page (and no more than the store's test page limit).
func (s *Store) seqRange(owner string, from, to int64, n int) *dynamodb.QueryInput {
	if s.pageLimit > 0 {
		n = min(n, int(s.pageLimit))
	}
	return &dynamodb.QueryInput{
		TableName:              &s.table,
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :from AND :to"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(historyPrefix + owner), ":from": str(seqSK(from)), ":to": str(seqSK(to)),
		},
		ConsistentRead: aws.Bool(true),
		Limit:          aws.Int32(int32(min(n, 1<<30))),
	}
}

// getItem is a strongly consistent GetItem: nil when there is no item.
func (s *Store) getItem(ctx context.Context, key map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}

func (s *Store) lease() time.Duration {
	if s.claimLease > 0 {
		return s.claimLease
	}
	return claimLease
}

func (s *Store) waitInFlight() time.Duration {
	if s.inFlightWait > 0 {
		return s.inFlightWait
	}
	return inFlightWait
}

// heldFloor is the lowest seq retention by count still holds at head.
func heldFloor(head int64, keep int) int64 {
	return min(max(head-int64(keep), 0)+1, head+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func number(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func historyKey(owner, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: str(historyPrefix + owner), attrSK: str(sk)}
}

func markerKey(owner, id string) map[string]types.AttributeValue {
	return historyKey(owner, idPrefix+id)
}

// seqSK is an event item's sort key: zero-padded, so that the sort keys'
// string order is seq order.
func seqSK(seq int64) string { return fmt.Sprintf("%s%020d", seqPrefix, seq) }

func parseSeqSK(sk string) (int64, error) {
	digits, ok := strings.CutPrefix(sk, seqPrefix)
	if !ok {
		return 0, fmt.Errorf("item %q is not an event", sk)
	}
	seq, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("item %q: %w", sk, err)
	}
	return seq, nil
}

// expiry is t in epoch seconds, rounded up, for expiresAt: an item
// may outlive its ExpiresAt by under a second, never fall short of it.
func expiry(t time.Time) int64 {
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	return sec
}

// eventAttrs sets e's content on it. Empty values are left out: DynamoDB
// refuses empty key attributes, and an absent attribute reads back the same.
func eventAttrs(it map[string]types.AttributeValue, e store.Event) {
	if e.Type != "" {
		it[attrType] = str(e.Type)
	}
	if e.JobID != "" {
		it[attrJobID] = str(e.JobID)
	}
	if len(e.Body) > 0 {
		// Binary: the body is bytes to the store, and a DynamoDB string
		// must be valid UTF-8.
		it[attrBody] = &types.AttributeValueMemberB{Value: e.Body}
	}
	it[attrExpiresAt] = number(expiry(e.ExpiresAt))
}

func markerItem(e store.Event, claim string, now time.Time) map[string]types.AttributeValue {
	it := markerKey(e.OwnerID, e.ID)
	eventAttrs(it, e)
	it[attrClaim] = str(claim)
	it[attrClaimedAt] = number(now.Unix())
	return it
}

// marker is an id marker as read: the event (Seq 0 until numbered) and its claim.
type marker struct {
	event     store.Event
	claim     string
	claimedAt time.Time
}

func parseMarker(owner string, it map[string]types.AttributeValue) (marker, error) {
	sk := getS(it, attrSK)
	id, ok := strings.CutPrefix(sk, idPrefix)
	if !ok {
		return marker{}, fmt.Errorf("item %q is not an id marker", sk)
	}
	e, err := parseContent(owner, it)
	if err != nil {
		return marker{}, fmt.Errorf("id marker %s: %w", id, err)
	}
	e.ID = id
	if _, ok := it[attrSeq]; ok {
		if e.Seq, err = getN(it, attrSeq); err != nil {
			return marker{}, fmt.Errorf("id marker %s: %w", id, err)
		}
	}
	claimedAt, err := getN(it, attrClaimedAt)
	if err != nil {
		return marker{}, fmt.Errorf("id marker %s: %w", id, err)
	}
	return marker{event: e, claim: getS(it, attrClaim), claimedAt: time.Unix(claimedAt, 0)}, nil
}

func parseEvent(owner string, it map[string]types.AttributeValue) (store.Event, error) {
	seq, err := parseSeqSK(getS(it, attrSK))
	if err != nil {
		return store.Event{}, err
	}
	e, err := parseContent(owner, it)
	if err != nil {
		return store.Event{}, fmt.Errorf("event %d: %w", seq, err)
	}
	e.Seq = seq
	e.ID = getS(it, attrID)
	return e, nil
}

func parseJob(owner string, it map[string]types.AttributeValue) (store.Event, error) {
	sk := getS(it, attrSK)
	job, ok := strings.CutPrefix(sk, jobPrefix)
	if !ok {
		return store.Event{}, fmt.Errorf("item %q is not a job", sk)
	}
	e, err := parseContent(owner, it)
	if err != nil {
		return store.Event{}, fmt.Errorf("job %s: %w", job, err)
	}
	if e.Seq, err = getN(it, attrSeq); err != nil {
		return store.Event{}, fmt.Errorf("job %s: %w", job, err)
	}
	e.ID = getS(it, attrID)
	e.JobID = job
	return e, nil
}

// parseContent reads what eventAttrs wrote.
func parseContent(owner string, it map[string]types.AttributeValue) (store.Event, error) {
	exp, err := getN(it, attrExpiresAt)
	if err != nil {
		return store.Event{}, err
	}
	e := store.Event{
		OwnerID:   owner,
		Type:      getS(it, attrType),
		JobID:     getS(it, attrJobID),
		ExpiresAt: time.Unix(exp, 0).UTC(),
	}
	if b, ok := it[attrBody].(*types.AttributeValueMemberB); ok {
		e.Body = b.Value
	}
	return e, nil
}
