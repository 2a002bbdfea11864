// Package event defines the notifications clients receive, the rules that make
// one valid, and the envelope that job-event triggers carry.
//
// The JSON shapes are the client contract (docs/protocol.md, and the schemas
// of docs/asyncapi.yaml, which a test holds to these rules): fields may be
// added, never removed or renamed. The package has no AWS imports.
package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/wsnotify/wsnotify/shared/text"
)

// Type names an event kind, as the "type" field carries it.
type Type string

// The event kinds of the client contract.
const (
	TypeJobProgress  Type = "job_progress"
	TypeJobComplete  Type = "job_complete"
	TypeFileUploaded Type = "file_uploaded"
	TypeError        Type = "error"
)

// Job statuses a job_complete event may carry.
const (
	StatusCompleted = "completed"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
)

// MaxIDLength bounds jobId, fileId and the like; it keeps one event far below
// API Gateway's 128 KB message limit even when every field is at its maximum.
const MaxIDLength = 256

// MaxTextLength bounds free text (file names, error messages).
const MaxTextLength = 4096

// Event is one validated notification, ready to be encoded for clients.
type Event interface {
	// Kind returns the event's type.
	Kind() Type
	// Validate reports the first rule the event breaks, or nil.
	Validate() error
}

// JobProgress reports how far an organization job has come.
type JobProgress struct {
	Type           Type    `json:"type"`
	JobID          string  `json:"jobId"`
	Progress       float64 `json:"progress"`
	ProcessedCount int64   `json:"processedCount"`
	TotalCount     int64   `json:"totalCount"`
	CurrentFile    string  `json:"currentFile"`
}

// JobComplete reports that a job has finished.
type JobComplete struct {
	Type      Type   `json:"type"`
	JobID     string `json:"jobId"`
	Status    string `json:"status"`
	Organized int64  `json:"organized"`
	Failed    int64  `json:"failed"`
}

// FileUploaded reports a new file.
type FileUploaded struct {
	Type   Type   `json:"type"`
	FileID string `json:"fileId"`
	Name   string `json:"name"`
	Size   int64  `json:"size"`
}

// Error reports a failure during an operation. JobID is empty for errors that
// belong to no job, such as a rejected client message.
type Error struct {
	Type  Type   `json:"type"`
	JobID string `json:"jobId,omitempty"`
	Error string `json:"error"`
	Code  string `json:"code"`
}

// Kind implements Event.
func (JobProgress) Kind() Type { return TypeJobProgress }

// Kind implements Event.
func (JobComplete) Kind() Type { return TypeJobComplete }

// Kind implements Event.
func (FileUploaded) Kind() Type { return TypeFileUploaded }

// Kind implements Event.
func (Error) Kind() Type { return TypeError }

// ErrInvalid is wrapped by every validation and parse error of this package.
var ErrInvalid = errors.New("invalid event")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

var codePattern = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,63}$`)

// Validate implements Event.
func (e JobProgress) Validate() error {
	switch {
	case e.Type != TypeJobProgress:
		return invalid("type must be %q", TypeJobProgress)
	case !validID(e.JobID):
		return invalid("jobId must be 1-%d characters", MaxIDLength)
	case e.Progress < 0 || e.Progress > 100:
		return invalid("progress must be between 0 and 100, got %v", e.Progress)
	case e.ProcessedCount < 0 || e.TotalCount < 0:
		return invalid("processedCount and totalCount must be >= 0")
	case e.ProcessedCount > e.TotalCount:
		return invalid("processedCount (%d) must not exceed totalCount (%d)", e.ProcessedCount, e.TotalCount)
	case len(e.CurrentFile) > MaxTextLength:
		return invalid("currentFile must be at most %d bytes", MaxTextLength)
	}
	return nil
}

// Validate implements Event.
func (e JobComplete) Validate() error {
	switch {
	case e.Type != TypeJobComplete:
		return invalid("type must be %q", TypeJobComplete)
	case !validID(e.JobID):
		return invalid("jobId must be 1-%d characters", MaxIDLength)
	case e.Status != StatusCompleted && e.Status != StatusFailed && e.Status != StatusCancelled:
		return invalid("status must be one of %q, %q, %q; got %q", StatusCompleted, StatusFailed, StatusCancelled, e.Status)
	case e.Organized < 0 || e.Failed < 0:
		return invalid("organized and failed must be >= 0")
	}
	return nil
}

// Validate implements Event.
func (e FileUploaded) Validate() error {
	switch {
	case e.Type != TypeFileUploaded:
		return invalid("type must be %q", TypeFileUploaded)
	case !validID(e.FileID):
		return invalid("fileId must be 1-%d characters", MaxIDLength)
	case e.Name == "" || len(e.Name) > MaxTextLength:
		return invalid("name must be 1-%d bytes", MaxTextLength)
	case e.Size < 0:
		return invalid("size must be >= 0")
	}
	return nil
}

// Validate implements Event.
func (e Error) Validate() error {
	switch {
	case e.Type != TypeError:
		return invalid("type must be %q", TypeError)
	case e.JobID != "" && !validID(e.JobID):
		return invalid("jobId must be at most %d characters", MaxIDLength)
	case e.Error == "" || len(e.Error) > MaxTextLength:
		return invalid("error must be 1-%d bytes", MaxTextLength)
	case !codePattern.MatchString(e.Code):
		return invalid("code must be 1-64 characters of A-Z, 0-9 and _, starting with a letter")
	}
	return nil
}

func validID(s string) bool { return s != "" && len(s) <= MaxIDLength }

// Parse decodes and validates one event. Decoding is strict: every required
// field must be present with its JSON type, counts must be whole numbers, and
// unknown fields are refused so that a misspelt optional field is an error
// rather than silently lost.
func Parse(data []byte) (Event, error) {
	var head struct {
		Type *Type `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, invalid("not a JSON object: %v", err)
	}
	if head.Type == nil {
		return nil, invalid("missing field \"type\"")
	}
	switch *head.Type {
	case TypeJobProgress:
		var raw struct {
			Type           Type     `json:"type"`
			JobID          *string  `json:"jobId"`
			Progress       *float64 `json:"progress"`
			ProcessedCount *int64   `json:"processedCount"`
			TotalCount     *int64   `json:"totalCount"`
			CurrentFile    *string  `json:"currentFile"`
		}
		if err := decodeStrict(data, &raw); err != nil {
			return nil, err
		}
		if err := required(map[string]bool{"jobId": raw.JobID != nil, "progress": raw.Progress != nil,
			"processedCount": raw.ProcessedCount != nil, "totalCount": raw.TotalCount != nil}); err != nil {
			return nil, err
		}
		ev := JobProgress{Type: raw.Type, JobID: *raw.JobID, Progress: *raw.Progress,
			ProcessedCount: *raw.ProcessedCount, TotalCount: *raw.TotalCount}
		if raw.CurrentFile != nil {
			ev.CurrentFile = *raw.CurrentFile
		}
		return ev, ev.Validate()
	case TypeJobComplete:
		var raw struct {
			Type      Type    `json:"type"`
			JobID     *string `json:"jobId"`
			Status    *string `json:"status"`
			Organized *int64  `json:"organized"`
			Failed    *int64  `json:"failed"`
		}
		if err := decodeStrict(data, &raw); err != nil {
			return nil, err
		}
		if err := required(map[string]bool{"jobId": raw.JobID != nil, "status": raw.Status != nil,
			"organized": raw.Organized != nil, "failed": raw.Failed != nil}); err != nil {
			return nil, err
		}
		ev := JobComplete{Type: raw.Type, JobID: *raw.JobID, Status: *raw.Status, Organized: *raw.Organized, Failed: *raw.Failed}
		return ev, ev.Validate()
	case TypeFileUploaded:
		var raw struct {
			Type   Type    `json:"type"`
			FileID *string `json:"fileId"`
			Name   *string `json:"name"`
			Size   *int64  `json:"size"`
		}
		if err := decodeStrict(data, &raw); err != nil {
			return nil, err
		}
		if err := required(map[string]bool{"fileId": raw.FileID != nil, "name": raw.Name != nil, "size": raw.Size != nil}); err != nil {
			return nil, err
		}
		ev := FileUploaded{Type: raw.Type, FileID: *raw.FileID, Name: *raw.Name, Size: *raw.Size}
		return ev, ev.Validate()
	case TypeError:
		var raw struct {
			Type  Type    `json:"type"`
			JobID *string `json:"jobId"`
			Error *string `json:"error"`
			Code  *string `json:"code"`
		}
		if err := decodeStrict(data, &raw); err != nil {
			return nil, err
		}
		if err := required(map[string]bool{"error": raw.Error != nil, "code": raw.Code != nil}); err != nil {
			return nil, err
		}
		ev := Error{Type: raw.Type, Error: *raw.Error, Code: *raw.Code}
		if raw.JobID != nil {
			ev.JobID = *raw.JobID
		}
		return ev, ev.Validate()
	default:
		return nil, invalid("unknown type %q (want %s, %s, %s or %s)", *head.Type,
			TypeJobProgress, TypeJobComplete, TypeFileUploaded, TypeError)
	}
}

// decodeStrict decodes one JSON object into v, refusing unknown fields,
// wrong JSON types and trailing data.
func decodeStrict(data []byte, v any) error {
	if err := noDuplicateKeys(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field == "" {
			return invalid("not a JSON object, got JSON %s", typeErr.Value)
		}
		if errors.As(err, &typeErr) {
			return invalid("field %q must be %s, got JSON %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
		}
		return invalid("%v", err)
	}
	if dec.More() {
		return invalid("trailing data after the JSON object")
	}
	return nil
}

// noDuplicateKeys refuses a JSON document in which an object names a key
// twice, at any depth. encoding/json keeps the last value, so {"ownerId":"a",
// "ownerId":"b"} would go to b while another reader of the message may see
// a: an ambiguous message is refused rather than resolved silently.
// Malformed JSON passes here and is refused by the decoder, in its words.
func noDuplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	err := walkKeys(dec, 0)
	if errors.Is(err, errMalformed) {
		return nil
	}
	return err
}

// errMalformed stops walkKeys at JSON the decoder will refuse anyway.
var errMalformed = errors.New("malformed JSON")

// maxDepth bounds the nesting walkKeys follows: events are two levels deep,
// and a document of a million '[' must not take a million stack frames.
const maxDepth = 32

// walkKeys reads one JSON value from dec, refusing duplicate keys in it.
func walkKeys(dec *json.Decoder, depth int) error {
	if depth > maxDepth {
		return invalid("JSON nested deeper than %d levels", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return errMalformed
	}
	switch tok {
	case json.Delim('{'):
		keys := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			key, ok := tok.(string)
			if err != nil || !ok {
				return errMalformed
			}
			if keys[key] {
				return invalid("duplicate key %q", text.Clip(key, 64))
			}
			keys[key] = true
			if err := walkKeys(dec, depth+1); err != nil {
				return err
			}
		}
	case json.Delim('['):
		for dec.More() {
			if err := walkKeys(dec, depth+1); err != nil {
				return err
			}
		}
	default:
		return nil // a scalar
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return errMalformed
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int64":
		return "a whole number"
	case "float64":
		return "a number"
	case "string":
		return "a string"
	default:
		return goKind
	}
}

// required reports the missing fields, in a stable order.
func required(present map[string]bool) error {
	var missing []string
	for _, name := range []string{"jobId", "fileId", "name", "size", "progress", "processedCount", "totalCount",
		"status", "organized", "failed", "error", "code"} {
		if ok, listed := present[name]; listed && !ok {
			missing = append(missing, fmt.Sprintf("%q", name))
		}
	}
	if len(missing) > 0 {
		return invalid("missing field %s", strings.Join(missing, ", "))
	}
	return nil
}

// Marshal encodes an event as clients receive it. The publish path calls it
// once per event, whatever the number of receiving connections.
func Marshal(ev Event) ([]byte, error) {
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(ev)
}

// JobOf returns the job an event belongs to: its jobId, or "" for an event
// of no job (file_uploaded, an error outside any job).
func JobOf(ev Event) string {
	switch e := ev.(type) {
	case JobProgress:
		return e.JobID
	case JobComplete:
		return e.JobID
	case Error:
		return e.JobID
	}
	return ""
}

// Stamp adds the fields that place a published event in its stream to
// data, an event as Marshal encodes it: "id" always, and "seq" when it is
// not 0 (owner-wide events). The fields are appended, so the event's own
// fields and their order stay exactly as the client contract shows them.
func Stamp(data []byte, id string, seq int64) []byte {
	if len(data) < 2 || data[len(data)-1] != '}' {
		panic("event.Stamp: not an encoded event")
	}
	idJSON, _ := json.Marshal(id) // a string always encodes
	out := make([]byte, 0, len(data)+len(idJSON)+32)
	out = append(out, data[:len(data)-1]...)
	if len(data) > 2 {
		out = append(out, ',')
	}
	out = append(out, `"id":`...)
	out = append(out, idJSON...)
	if seq != 0 {
		out = append(out, `,"seq":`...)
		out = strconv.AppendInt(out, seq, 10)
	}
	return append(out, '}')
}

// Resumed is the message that ends a replay: the client has every event up
// to Seq (the head it caught up to), Replayed of them from the replay; the
// live stream follows.
type Resumed struct {
	Type     string `json:"type"` // "resumed"
	Seq      int64  `json:"seq"`
	Replayed int    `json:"replayed"`
	// More is set when a resume without since sent the state of only the
	// most recently active running jobs: more were running.
	More bool `json:"more,omitempty"`
}

// Replay carries replayed events, in seq order, each as it was published
// (with its id and seq): a resume packs them into as few messages as the
// message limit allows. Only a client that resumes ever gets one.
type Replay struct {
	Type   string            `json:"type"` // "replay"
	Events []json.RawMessage `json:"events"`
}

// CodeResumeGap is the code of the error sent when a resume asks for events
// older than the history holds.
const CodeResumeGap = "RESUME_GAP"

// ResumeGap is the error sent before a replay that cannot start where the
// client asked: OldestSeq is the oldest event still held, where it starts.
type ResumeGap struct {
	Type      Type   `json:"type"` // "error"
	Error     string `json:"error"`
	Code      string `json:"code"`
	OldestSeq int64  `json:"oldestSeq"`
}
