package dynamo

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

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

	attrHead  = "head"
	attrSeq   = "seq"
	attrID    = "id"
	attrType  = "type"
	attrJobID = "jobId"
	attrBody  = "body"

	// The counter's ring of the ids it numbered last: n0 (the newest) to
	// n15, each an id's hash, beside s0 to s15, their seqs.
	ringIDPrefix  = "n"
	ringSeqPrefix = "s"
	// A job item's ring of its job's latest events, likewise: r0 to r3, q0 to q3.
	jobIDPrefix  = "r"
	jobSeqPrefix = "q"
)

// counterRing is how many of the owner's last numbered ids the counter
// remembers. Two deliveries of one record at once, a publisher that died
// between numbering an event and committing it, and an update the SDK sent
// again after losing its answer all find their id there and take the same
// seq back, as long as fewer than counterRing other events of the owner were
// numbered meanwhile. 16 hashes and seqs keep the counter under 1 KB: one
// write unit.
const counterRing = 16

// jobRing is how many of a job's latest events its job item remembers the ids
// and seqs of, for a redelivery that comes once its event has been
// superseded. A job's events come from one FIFO message group: a redelivered
// record is one of the batch last delivered, and within a batch coalescing
// leaves one job_progress per job before its job_complete or error.
const jobRing = 4

// maxRecordAttempts bounds RecordEvent's rounds when the items it read change
// under it (an id evicted from the counter's ring between two requests, or
// committed by another delivery).
const maxRecordAttempts = 4

// noID fills a ring slot that holds no id yet (DynamoDB and dynalite refuse
// an empty string in some versions; no hash is "-").
const noID = "-"

var errEmptyID = errors.New("event has no owner or no id")

// errRingMissed: the counter refused an id as numbered already, and no
// longer holds it when read: numbering starts again.
var errRingMissed = errors.New("id left the counter's ring")

// stateOnly reports whether e is kept only as its job's state: a job_progress
// has no event item; its job item holds it until a later event of the job
// supersedes it.
func stateOnly(e store.Event) bool {
	return e.Type == string(event.TypeJobProgress) && e.JobID != ""
}

// RecordEvent implements notify.History with single-item writes only:
// a job_progress costs 2 (the counter, its job item), another event of a
// job 3 (and its event item), an event of no job 3 (the counter, its id
// marker, its event item), each beside one eventually consistent read
// (half a read unit).
//
//  1. Read the item that holds the event's id: the job item (whose ring
//     holds its job's last jobRing ids) for a job event, the id marker
//     id#<id> otherwise. An id found there is a redelivery: the held event
//     comes back (duplicate), after its event item is written again if its
//     publisher died before writing it. The read is a hint, and an
//     eventually consistent one does: the conditional writes below decide,
//     and a read that missed a commit of a moment ago only sends this
//     delivery on to step 3, whose refusal names the holder.
//  2. Number: UpdateItem of the counter, head + 1 → S, pushing the id's hash
//     and S into the counter's ring, conditioned on the hash not being in it.
//     A refusal means the id was numbered a moment ago (a delivery racing
//     this one, a publisher that died before step 3, or the SDK resending
//     this update after losing its answer): its seq is read from the ring
//     and used again, so none of these leaves a gap.
//  3. Commit: write the id's item with S, conditioned on its not holding the
//     id yet (and, for a job item, on holding an older seq or none, so a
//     late write never hides a newer state). From here on S belongs to the
//     id. A job_progress is recorded now: the job item is its state. A
//     refusal from an item that holds the id is another delivery's commit,
//     and this one is a duplicate of it, unless the SDK sent this write
//     more than once: then the holder may be this very write, whose first
//     answer was lost, and it is taken as done (two racing deliveries may
//     then both push the event, under one seq).
//  4. For any other event, PutItem of the event item seq#S, which a replay
//     reads.
//
// A gap is a seq taken at step 2 whose step 3 never happens: the publisher
// dies or fails between the two and its record is not delivered again
// before counterRing other events of its owner are numbered; or a
// redelivery's step 1 misses a commit of a moment ago (the read is
// eventually consistent, a second at most) while counterRing other events
// of the owner are numbered in that moment. A gap is a seq that no event
// has: replay skips it. No request holds anything for a publisher that may
// have died, so a redelivery never waits.
func (s *Store) RecordEvent(ctx context.Context, e store.Event, keep int, now time.Time) (store.Event, bool, error) {
	if e.OwnerID == "" || e.ID == "" {
		return store.Event{}, false, fmt.Errorf("record event %q of %q: %w", e.ID, e.OwnerID, errEmptyID)
	}
	h := idHash(e.ID)
	for range maxRecordAttempts {
		held, found, err := s.heldEvent(ctx, e, h, now)
		if err != nil {
			return store.Event{}, false, fmt.Errorf("record event %s of %s: %w", e.ID, e.OwnerID, err)
		}
		if found {
			return held, true, nil
		}
		// An id whose item expired is new again, though the counter's
		// ring may still hold it (an owner of few events): its old seq,
		// held.Seq or lower, is not taken back.
		seq, err := s.number(ctx, e.OwnerID, h, held.Seq)
		if errors.Is(err, errRingMissed) {
			continue
		}
		if err != nil {
			return store.Event{}, false, fmt.Errorf("record event %s of %s: %w", e.ID, e.OwnerID, err)
		}
		e.Seq = seq
		state, holder, err := s.commit(ctx, e, h, now)
		if err != nil {
			return store.Event{}, false, fmt.Errorf("record event %s of %s as %d: %w", e.ID, e.OwnerID, seq, err)
		}
		if state == heldByOther {
			// Another delivery committed the id: its item, as the refusal
			// returned it, holds the event.
			held, found, err := s.heldIn(ctx, e, h, holder, now)
			if err != nil {
				return store.Event{}, false, fmt.Errorf("record event %s of %s: %w", e.ID, e.OwnerID, err)
			}
			if found {
				return held, true, nil
			}
			continue
		}
		if !stateOnly(e) {
			if err := s.putEvent(ctx, e); err != nil {
				return store.Event{}, false, fmt.Errorf("record event %s of %s as %d: %w", e.ID, e.OwnerID, seq, err)
			}
		}
		return e, false, nil
	}
	return store.Event{}, false, fmt.Errorf("record event %s of %s: %w", e.ID, e.OwnerID, store.ErrConditionFailed)
}

// heldEvent is step 1: the event already recorded under e's id, if any, with
// its event item written again if it was missing. When the id's item has
// expired, it reports not found, with the expired item's seq. Its read is
// eventually consistent: a hint (see RecordEvent).
func (s *Store) heldEvent(ctx context.Context, e store.Event, h string, now time.Time) (store.Event, bool, error) {
	key := markerKey(e.OwnerID, e.ID)
	if e.JobID != "" {
		key = historyKey(e.OwnerID, jobPrefix+e.JobID)
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key})
	if err != nil {
		return store.Event{}, false, fmt.Errorf("read the item of id %s: %w", e.ID, err)
	}
	return s.heldIn(ctx, e, h, out.Item, now)
}

// heldIn is the event the item it (e's job item, or e's id marker; nil if
// none) holds under e's id, as heldEvent reports it.
func (s *Store) heldIn(ctx context.Context, e store.Event, h string, it map[string]types.AttributeValue, now time.Time) (store.Event, bool, error) {
	if len(it) == 0 {
		return store.Event{}, false, nil
	}
	if e.JobID == "" {
		m, err := parseMarker(e.OwnerID, it)
		if err != nil {
			return store.Event{}, false, err
		}
		if !now.Before(m.ExpiresAt) {
			return m, false, nil // expired: the id is new again
		}
		held, err := s.repairEvent(ctx, m)
		return held, err == nil, err
	}
	seq, ok := ringSeq(it, jobIDPrefix, jobSeqPrefix, jobRing, h)
	if !ok {
		return store.Event{}, false, nil
	}
	job, err := parseJob(e.OwnerID, it)
	if err != nil {
		return store.Event{}, false, err
	}
	if !now.Before(job.ExpiresAt) {
		return store.Event{Seq: job.Seq}, false, nil // expired: its ids are new again
	}
	held := e
	held.Seq = seq
	if stateOnly(e) {
		if seq == job.Seq && len(job.Body) > 0 {
			held.Body = job.Body // the job's state: as first published
		}
		// A superseded job_progress is no longer held: it goes out again
		// as delivered now, under its first seq.
		return held, true, nil
	}
	if held, err = s.repairEvent(ctx, held); err != nil {
		return store.Event{}, false, err
	}
	return held, true, nil
}

// repairEvent returns the held event e as its event item holds it, writing
// the item first if it is missing: its publisher may have died between
// committing the event and writing it. A read costs a fifth of a write, and a
// redelivery nearly always finds the item.
func (s *Store) repairEvent(ctx context.Context, e store.Event) (store.Event, error) {
	it, err := s.getItem(ctx, historyKey(e.OwnerID, seqSK(e.Seq)))
	if err != nil {
		return store.Event{}, fmt.Errorf("read event %d: %w", e.Seq, err)
	}
	if len(it) > 0 {
		return parseEvent(e.OwnerID, it)
	}
	return e, s.putEvent(ctx, e)
}

// number is step 2: the owner's next seq from the counter, or the seq the
// counter's ring holds for the id's hash h, unless that is stale or lower
// (an expired event's): then a new one, whatever the ring holds.
func (s *Store) number(ctx context.Context, owner, h string, stale int64) (int64, error) {
	names := map[string]string{"#head": attrHead}
	values := map[string]types.AttributeValue{":one": number(1), ":zero": number(0), ":h": str(h), ":none": str(noID)}
	set, cond := ringUpdate(names, ringIDPrefix, ringSeqPrefix, counterRing, "if_not_exists(#head, :zero) + :one")
	in := &dynamodb.UpdateItemInput{
		TableName:                           &s.table,
		Key:                                 historyKey(owner, headSK),
		UpdateExpression:                    aws.String("SET " + set + ", #head = if_not_exists(#head, :zero) + :one"),
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValues:                        types.ReturnValueUpdatedNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	out, err := s.db.UpdateItem(ctx, in)
	var failed *types.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		held, rerr := s.refused(ctx, failed, historyKey(owner, headSK))
		if rerr != nil {
			return 0, fmt.Errorf("read counter: %w", rerr)
		}
		seq, ok := ringSeq(held, ringIDPrefix, ringSeqPrefix, counterRing, h)
		if !ok {
			return 0, errRingMissed
		}
		if seq > stale {
			return seq, nil
		}
		in.ConditionExpression = nil
		out, err = s.db.UpdateItem(ctx, in)
	}
	if err != nil {
		return 0, fmt.Errorf("take a seq: %w", err)
	}
	return getN(out.Attributes, attrHead)
}

// commitState is what step 3 found.
type commitState int

const (
	committed   commitState = iota
	heldByOther             // another delivery committed the id first
	superseded              // the job holds a newer event: a producer outside FIFO order
)

// commit is step 3 for e numbered. When it reports heldByOther it returns
// the item that holds the id, as the refusal returned it.
func (s *Store) commit(ctx context.Context, e store.Event, h string, now time.Time) (commitState, map[string]types.AttributeValue, error) {
	var attempts attemptCounter
	var key map[string]types.AttributeValue
	var err error
	if e.JobID == "" {
		key = markerKey(e.OwnerID, e.ID)
		it := markerKey(e.OwnerID, e.ID)
		eventAttrs(it, e)
		it[attrSeq] = number(e.Seq)
		_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: &s.table,
			Item:      it,
			// An expired marker is absent, as its event is: the id is new
			// again (as in the embedded store, whose ids leave with their
			// events).
			ConditionExpression:                 aws.String("attribute_not_exists(pk) OR #exp <= :now"),
			ExpressionAttributeNames:            map[string]string{"#exp": attrExpiresAt},
			ExpressionAttributeValues:           map[string]types.AttributeValue{":now": number(now.Unix())},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}, attempts.count)
	} else {
		key = historyKey(e.OwnerID, jobPrefix+e.JobID)
		in := commitJob(e, h, key)
		in.TableName = &s.table
		_, err = s.db.UpdateItem(ctx, in, attempts.count)
	}
	var failed *types.ConditionalCheckFailedException
	if !errors.As(err, &failed) {
		if err != nil {
			return 0, nil, fmt.Errorf("commit id %s: %w", e.ID, err)
		}
		return committed, nil, nil
	}
	held, err := s.refused(ctx, failed, key)
	if err != nil {
		return 0, nil, fmt.Errorf("read the item of id %s: %w", e.ID, err)
	}
	var seq int64
	var holds bool
	if e.JobID == "" {
		n, err := getN(held, attrSeq)
		seq, holds = n, err == nil
	} else if seq, holds = ringSeq(held, jobIDPrefix, jobSeqPrefix, jobRing, h); !holds {
		// The job holds a newer event than this one: the job's state is
		// not moved back. A job_progress is then superseded as it is
		// recorded; another event still gets its event item.
		return superseded, nil, nil
	}
	if holds && seq == e.Seq && attempts.n > 1 {
		// Sent more than once: the item may hold this very write.
		return committed, nil, nil
	}
	return heldByOther, held, nil
}

// commitJob is the update of step 3 for an event of a job: the job item
// takes e's id into its ring, and its seq, type and expiry, and its body
// for a job_progress. The body is kept only while the job runs:
// CurrentJobs and a replay send nothing else from a job item, and a
// finished job's item stays small until it expires.
func commitJob(e store.Event, h string, key map[string]types.AttributeValue) *dynamodb.UpdateItemInput {
	names := map[string]string{"#seq": attrSeq, "#id": attrID, "#type": attrType, "#exp": attrExpiresAt, "#body": attrBody}
	values := map[string]types.AttributeValue{
		":seq": number(e.Seq), ":id": str(e.ID), ":type": str(e.Type), ":exp": number(expiry(e.ExpiresAt)),
		":h": str(h), ":none": str(noID), ":zero": number(0),
	}
	ring, notHeld := ringUpdate(names, jobIDPrefix, jobSeqPrefix, jobRing, ":seq")
	update := "SET " + ring + ", #seq = :seq, #id = :id, #type = :type, #exp = :exp"
	if stateOnly(e) && len(e.Body) > 0 {
		update += ", #body = :body"
		values[":body"] = &types.AttributeValueMemberB{Value: e.Body}
	} else {
		update += " REMOVE #body"
	}
	return &dynamodb.UpdateItemInput{
		Key:                                 key,
		UpdateExpression:                    aws.String(update),
		ConditionExpression:                 aws.String("(attribute_not_exists(#seq) OR #seq < :seq) AND " + notHeld),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
}

// attemptCounter counts the attempts the SDK makes of one request (its
// retryer sends a request again after an error, a lost answer among them).
type attemptCounter struct{ n int }

// count is the client option that counts each attempt: a step of the
// Finalize phase after the retry loop's, run once per attempt.
func (a *attemptCounter) count(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		step := middleware.FinalizeMiddlewareFunc("wsnotifyCountAttempts",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				a.n++
				return next.HandleFinalize(ctx, in)
			})
		if _, ok := stack.Finalize.Get("Retry"); !ok {
			return stack.Finalize.Add(step, middleware.After) // no retry loop: one attempt
		}
		return stack.Finalize.Insert(step, "Retry", middleware.After)
	})
}

// refused returns the item a conditional write was refused on: DynamoDB
// returns it in the refusal when asked; dynalite does not, and it is read.
func (s *Store) refused(ctx context.Context, failed *types.ConditionalCheckFailedException, key map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
	if len(failed.Item) > 0 {
		return failed.Item, nil
	}
	return s.getItem(ctx, key)
}

// putEvent is step 4: the event item, written whole with the same content
// by whoever writes it, so writing it twice is harmless.
func (s *Store) putEvent(ctx context.Context, e store.Event) error {
	it := historyKey(e.OwnerID, seqSK(e.Seq))
	eventAttrs(it, e)
	it[attrID] = str(e.ID)
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: it}); err != nil {
		return fmt.Errorf("put event %d: %w", e.Seq, err)
	}
	return nil
}

// ringUpdate returns the SET clauses that push the hash :h and seq (an
// expression) into a ring of n slots (the oldest falls out) and the
// condition that :h is in none of them. It adds the slots' names to names;
// values must hold :h, :none and :zero. DynamoDB and dynalite read every
// operand of an update before writing any, so the slots shift as one.
func ringUpdate(names map[string]string, idPrefix, seqPrefix string, n int, seq string) (set, notHeld string) {
	var sets, held []string
	for i := n - 1; i >= 0; i-- {
		id, sq := fmt.Sprintf("#%s%d", idPrefix, i), fmt.Sprintf("#%s%d", seqPrefix, i)
		names[id], names[sq] = id[1:], sq[1:]
		if i == 0 {
			sets = append(sets, id+" = :h", sq+" = "+seq)
		} else {
			prevID, prevSeq := fmt.Sprintf("#%s%d", idPrefix, i-1), fmt.Sprintf("#%s%d", seqPrefix, i-1)
			sets = append(sets, fmt.Sprintf("%s = if_not_exists(%s, :none)", id, prevID), fmt.Sprintf("%s = if_not_exists(%s, :zero)", sq, prevSeq))
		}
		held = append(held, id+" = :h")
	}
	return strings.Join(sets, ", "), "NOT (" + strings.Join(held, " OR ") + ")"
}

// ringSeq returns the seq a ring of n slots holds for the hash h.
func ringSeq(it map[string]types.AttributeValue, idPrefix, seqPrefix string, n int, h string) (int64, bool) {
	for i := range n {
		if getS(it, fmt.Sprint(idPrefix, i)) == h {
			seq, err := getN(it, fmt.Sprint(seqPrefix, i))
			return seq, err == nil && seq > 0
		}
	}
	return 0, false
}

// idHash is what the rings hold of an event id: 96 bits of its SHA-256, 16
// characters, so that the counter stays one write unit whatever the ids.
func idHash(id string) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// EventsSince implements notify.History: a consistent GetItem of the
// counter, a consistent Query of the event items from since+1 (or from the
// oldest seq retention by count keeps) up to the head, and a consistent
// Query of the owner's job items, whose running jobs' job_progress (each
// job's latest event) are merged in by seq; expired items are skipped. A
// job_progress that a later event of its job superseded has no item: it is
// not replayed, and its seq is one the answer skips. When that range starts
// above the oldest seq retention by count keeps, one more Query looks below
// it for expired events, for the window (its first item answers, unless
// expired ones lie there).
//
// An event whose seq is taken but whose item is not written yet (its
// publisher between steps 2 and 4 of RecordEvent) is missing from the
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
	var expired int64 // the highest seq seen expired: the window starts above it
	if limit > 0 && from <= head {
		if events, expired, err = s.queryEvents(ctx, owner, from, head, limit, now); err != nil {
			return nil, store.Window{}, fmt.Errorf("events of %s since %d: %w", owner, since, err)
		}
	}
	if head > 0 {
		// The jobs' items hold the running jobs' progress, and tell of
		// expired events even where no event item does.
		jobs, jobsExpired, err := s.queryJobs(ctx, owner, floor, head, now)
		if err != nil {
			return nil, store.Window{}, fmt.Errorf("events of %s since %d: %w", owner, since, err)
		}
		expired = max(expired, jobsExpired)
		if limit > 0 {
			events = mergeProgress(events, jobs, from, limit)
		}
	}
	// Expired events lie below from, or were seen above; with nothing read
	// (limit 0), they are looked for up to the head.
	upper := from - 1
	if limit <= 0 {
		upper = head
	}
	below, err := s.lastExpired(ctx, owner, floor, min(upper, head), now)
	if err != nil {
		return nil, store.Window{}, fmt.Errorf("events of %s since %d: %w", owner, since, err)
	}
	return events, store.Window{Head: head, Oldest: max(floor, expired+1, below+1)}, nil
}

// mergeProgress adds to events (up to limit event items from seq from, in
// order) the running jobs' job_progress of seq from or more, in seq order,
// and keeps the first limit. When events is a full page, a job_progress
// beyond its last event belongs to the next page, which reads from there.
func mergeProgress(events, jobs []store.Event, from int64, limit int) []store.Event {
	full := len(events) >= limit
	var last int64
	if len(events) > 0 {
		last = events[len(events)-1].Seq
	}
	added := false
	for _, j := range jobs {
		if j.Type != string(event.TypeJobProgress) || j.Seq < from || (full && j.Seq > last) {
			continue
		}
		events = append(events, j)
		added = true
	}
	if added {
		sort.Slice(events, func(i, k int) bool { return events[i].Seq < events[k].Seq })
	}
	return events[:min(len(events), limit)]
}

// CurrentJobs implements notify.History: a consistent read of the counter
// and a consistent Query of the owner's job items (one per job whose latest
// event has not expired from the table yet; a finished job's item is small).
func (s *Store) CurrentJobs(ctx context.Context, owner string, keep int, now time.Time) ([]store.Event, int64, error) {
	head, err := s.head(ctx, owner)
	if err != nil {
		return nil, 0, fmt.Errorf("current jobs of %s: %w", owner, err)
	}
	all, _, err := s.queryJobs(ctx, owner, heldFloor(head, keep), head, now)
	if err != nil {
		return nil, 0, fmt.Errorf("current jobs of %s: %w", owner, err)
	}
	var jobs []store.Event
	for _, e := range all {
		if e.Type == string(event.TypeJobProgress) {
			jobs = append(jobs, e)
		}
	}
	return jobs, head, nil
}

// queryJobs returns, in seq order, the latest event of each of the owner's
// jobs whose seq lies in floor..head and has not expired, and the highest
// such seq that has expired (0 if none). A job item newer than the head
// read before is left out, so the answer is the state as of that head.
func (s *Store) queryJobs(ctx context.Context, owner string, floor, head int64, now time.Time) ([]store.Event, int64, error) {
	var jobs []store.Event
	var expired int64
	err := s.queryAll(ctx, &dynamodb.QueryInput{
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
		switch {
		case e.Seq < floor || e.Seq > head:
		case !now.Before(e.ExpiresAt):
			expired = max(expired, e.Seq)
		default:
			jobs = append(jobs, e)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("query jobs: %w", err)
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].Seq < jobs[j].Seq })
	return jobs, expired, nil
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

// queryEvents returns up to limit unexpired events of seq from..to, in order,
// and the highest seq it skipped as expired (0 if none).
func (s *Store) queryEvents(ctx context.Context, owner string, from, to int64, limit int, now time.Time) ([]store.Event, int64, error) {
	var out []store.Event
	var expired int64
	var start map[string]types.AttributeValue
	for {
		in := s.seqRange(owner, from, to, limit-len(out))
		in.ExclusiveStartKey = start
		page, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, 0, fmt.Errorf("query events %d to %d: %w", from, to, err)
		}
		for _, it := range page.Items {
			e, err := parseEvent(owner, it)
			if err != nil {
				return nil, 0, fmt.Errorf("query events %d to %d: %w", from, to, err)
			}
			// Expired events are skipped here rather than by a
			// FilterExpression, which would save no read capacity, and
			// whose Limit would count them anyway.
			switch {
			case !now.Before(e.ExpiresAt):
				expired = max(expired, e.Seq)
			case stateOnly(e):
				// Written by a version that kept every step: the job
				// item holds the job's state.
			default:
				out = append(out, e)
			}
		}
		if start = page.LastEvaluatedKey; len(start) == 0 || len(out) >= limit {
			return out, expired, nil
		}
	}
}

// lastExpired returns the highest seq among from..to whose event item has
// expired, 0 if none, reading from the low end up to the first unexpired
// item: events share one time to live, so the expired ones lie at the low end
// until TTL deletes them (within days). It reads one item first, then
// bigger pages.
func (s *Store) lastExpired(ctx context.Context, owner string, from, to int64, now time.Time) (int64, error) {
	if from > to {
		return 0, nil
	}
	var last int64
	var start map[string]types.AttributeValue
	for n := 1; ; n = 100 {
		in := s.seqRange(owner, from, to, n)
		in.ExclusiveStartKey = start
		in.ProjectionExpression = aws.String("sk, #exp")
		in.ExpressionAttributeNames = map[string]string{"#exp": attrExpiresAt}
		page, err := s.db.Query(ctx, in)
		if err != nil {
			return 0, fmt.Errorf("query expired events: %w", err)
		}
		for _, it := range page.Items {
			seq, err := parseSeqSK(getS(it, attrSK))
			if err != nil {
				return 0, fmt.Errorf("query expired events: %w", err)
			}
			exp, err := getN(it, attrExpiresAt)
			if err != nil {
				return 0, fmt.Errorf("query expired event %d: %w", seq, err)
			}
			if now.Before(time.Unix(exp, 0)) {
				return last, nil
			}
			last = seq
		}
		if start = page.LastEvaluatedKey; len(start) == 0 {
			return last, nil
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

// heldFloor is the lowest seq retention by count still holds at head.
func heldFloor(head int64, keep int) int64 {
	return min(max(head-int64(keep), 0)+1, head+1)
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

// parseMarker reads an id marker: its event, numbered.
func parseMarker(owner string, it map[string]types.AttributeValue) (store.Event, error) {
	sk := getS(it, attrSK)
	id, ok := strings.CutPrefix(sk, idPrefix)
	if !ok {
		return store.Event{}, fmt.Errorf("item %q is not an id marker", sk)
	}
	e, err := parseContent(owner, it)
	if err != nil {
		return store.Event{}, fmt.Errorf("id marker %s: %w", id, err)
	}
	e.ID = id
	if e.Seq, err = getN(it, attrSeq); err != nil {
		return store.Event{}, fmt.Errorf("id marker %s: %w", id, err)
	}
	return e, nil
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
