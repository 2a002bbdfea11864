package publish

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wsnotify/wsnotify/shared/event"
)

// Message is one event for one owner's connections.
type Message struct {
	// OwnerID is whose connections get the event.
	OwnerID string
	// ClientID, if not empty, limits the event to that client's connection;
	// such an event has no seq and is not kept for resume.
	ClientID string
	// IdempotencyKey names the event for retries: a message published again
	// with the same key for the same owner is the same event (same id and
	// seq) and is not pushed twice. At most MaxIdempotencyKeyLength
	// characters. Empty: the publisher makes one up for its own retries, so
	// each call is a new event.
	IdempotencyKey string
	// Event is the event, e.g. from JobProgress.
	Event event.Event
}

// MaxIdempotencyKeyLength bounds an idempotency key, as the publish API does.
const MaxIdempotencyKeyLength = 128

// JobProgress is a job_progress event: progress is a percentage (0-100),
// processed of total files done, currentFile the one being worked on (may
// be empty).
func JobProgress(jobID string, progress float64, processed, total int64, currentFile string) event.JobProgress {
	return event.JobProgress{Type: event.TypeJobProgress, JobID: jobID, Progress: progress,
		ProcessedCount: processed, TotalCount: total, CurrentFile: currentFile}
}

// JobComplete is a job_complete event; status is event.StatusCompleted,
// event.StatusFailed or event.StatusCancelled.
func JobComplete(jobID, status string, organized, failed int64) event.JobComplete {
	return event.JobComplete{Type: event.TypeJobComplete, JobID: jobID, Status: status, Organized: organized, Failed: failed}
}

// FileUploaded is a file_uploaded event. The stack publishes it by itself
// for uploads to its bucket, and the queue and the publish API refuse it
// (its fileId is the bucket's): the constructor is for tests and for
// reading events.
func FileUploaded(fileID, name string, size int64) event.FileUploaded {
	return event.FileUploaded{Type: event.TypeFileUploaded, FileID: fileID, Name: name, Size: size}
}

// Error is an error event: jobID may be empty for an error of no job; code
// is 1-64 characters of A-Z, 0-9 and _, e.g. "PERMISSION_ERROR".
func Error(jobID, code, message string) event.Error {
	return event.Error{Type: event.TypeError, JobID: jobID, Error: message, Code: code}
}

// ErrInvalid is wrapped by every error of a message refused before any
// network call; errors.Is(err, event.ErrInvalid) holds as well when the
// event itself breaks a rule.
var ErrInvalid = errors.New("invalid message")

// InvalidError is a message refused before anything was sent: Index is its
// place in the call's messages. Nothing of the call was sent.
type InvalidError struct {
	Index int
	Err   error
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("publish: messages[%d]: %v", e.Index, e.Err)
}

// Unwrap returns ErrInvalid and the reason.
func (e *InvalidError) Unwrap() []error { return []error{ErrInvalid, e.Err} }

// envelope is a message as the job queue and the publish API carry it.
type envelope struct {
	OwnerID        string          `json:"ownerId"`
	ClientID       string          `json:"clientId,omitempty"`
	IdempotencyKey string          `json:"idempotencyKey,omitempty"`
	Event          json.RawMessage `json:"event"`
}

// body encodes m as the job queue's message body ({"ownerId","clientId",
// "event"}) and checks it with the parser the job events function runs,
// so that what passes here is what the function accepts.
func (m Message) body() ([]byte, error) {
	if m.Event == nil {
		return nil, errors.New("no event")
	}
	if len(m.IdempotencyKey) > MaxIdempotencyKeyLength {
		return nil, fmt.Errorf("idempotencyKey is %d characters, over %d", len(m.IdempotencyKey), MaxIdempotencyKeyLength)
	}
	ev, err := event.Marshal(m.Event)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(envelope{OwnerID: m.OwnerID, ClientID: m.ClientID, Event: ev})
	if err != nil {
		return nil, err
	}
	if _, err := event.ParseEnvelope(body); err != nil {
		return nil, err
	}
	return body, nil
}

// check validates every message, returning their bodies, or the first
// refusal as an *InvalidError.
func check(msgs []Message) ([][]byte, error) {
	bodies := make([][]byte, len(msgs))
	for i, m := range msgs {
		b, err := m.body()
		if err != nil {
			return nil, &InvalidError{Index: i, Err: err}
		}
		bodies[i] = b
	}
	return bodies, nil
}

// newKey is a fresh idempotency key, for a message given none: the
// publishers' own retries then publish the message once.
func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "pub-" + hex.EncodeToString(b[:])
}
