package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/notify"
)

// DefaultUploadPrefix is where uploads land: uploads/{ownerId}/{name...}.
const DefaultUploadPrefix = "uploads/"

// S3Upload handles S3 ObjectCreated notifications and publishes file_uploaded.
type S3Upload struct {
	n      *notify.Notifier
	log    *slog.Logger
	prefix string
}

// NewS3Upload returns the upload handler for keys under prefix (DefaultUploadPrefix if empty).
func NewS3Upload(n *notify.Notifier, log *slog.Logger, prefix string) *S3Upload {
	if prefix == "" {
		prefix = DefaultUploadPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return &S3Upload{n: n, log: log, prefix: prefix}
}

// S3Result is the function's answer: what was published and what was skipped.
type S3Result struct {
	Published int         `json:"published"`
	Skipped   []S3Skipped `json:"skipped,omitempty"`
}

// S3Skipped names a record that was not published and why.
type S3Skipped struct {
	Key    string `json:"key"`
	Reason string `json:"reason"`
}

// S3Event is an S3 event notification as the upload function receives it:
// the fields of aws-lambda-go's events.S3Event that this function uses, with
// the same JSON names. It exists because events.S3Event fails the whole event
// on one bad record (events.S3Object URL-decodes the key while unmarshalling;
// a size that is no int64 fails the decode), which would fail, and so retry
// and re-deliver, every good record delivered with it. Here each record is
// decoded on its own, the key stays as S3 sent it, and a bad record is
// skipped alone.
type S3Event struct {
	Records []S3Record `json:"Records"`
	// Event is "s3:TestEvent" on the message S3 sends once when a bucket's
	// notifications are set up; it carries no record.
	Event string `json:"Event"`
}

// S3Record is one record of an S3Event.
type S3Record struct {
	EventName string        `json:"eventName"`
	S3        S3RecordInner `json:"s3"`

	// invalid says why the record could not be decoded, or is not a
	// record that can be published; it is skipped with that reason.
	invalid error
}

// S3RecordInner is an S3Record's "s3" member.
type S3RecordInner struct {
	Bucket struct {
		Name string `json:"name"`
	} `json:"bucket"`
	Object struct {
		Key       string `json:"key"` // URL-encoded, '+' for a space
		Size      int64  `json:"size"`
		ETag      string `json:"eTag"`
		VersionID string `json:"versionId"`
		Sequencer string `json:"sequencer"`
	} `json:"object"`
}

// UnmarshalJSON decodes one record. A record that does not decode (a size
// that is a string, a fraction or beyond int64, a key that is no string) or
// that breaks a rule (a negative size) is kept, marked invalid, so that the
// records around it are still published.
func (r *S3Record) UnmarshalJSON(data []byte) error {
	type plain S3Record // without this method
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		*r = S3Record{invalid: fmt.Errorf("malformed record: %s", jsonProblem(err))}
		// The key, if it can be read, names the record in the log.
		var named struct {
			S3 struct {
				Object struct {
					Key string `json:"key"`
				} `json:"object"`
			} `json:"s3"`
		}
		if json.Unmarshal(data, &named) == nil {
			r.S3.Object.Key = named.S3.Object.Key
		}
		return nil
	}
	*r = S3Record(p)
	if r.S3.Object.Size < 0 {
		r.invalid = fmt.Errorf("size %d is negative", r.S3.Object.Size)
	}
	return nil
}

// jsonProblem describes a decode error without the decoder's Go type names.
func jsonProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Sprintf("field %q cannot take JSON %s (wrong type, or out of range)", typeErr.Field, typeErr.Value)
	}
	return err.Error()
}

// Upload is one parsed upload record.
type Upload struct {
	OwnerID string
	Name    string
	Key     string // decoded
}

// Handle implements the S3Upload Lambda. Records outside the key layout are
// logged and skipped. If publishing fails (the store, or a push other than
// 410), the other records are still published and the error is returned so
// that Lambda retries the event (and, after its retries, sends it to the
// function's dead-letter queue); the retry re-publishes with the same
// fileIds, which clients de-duplicate on.
func (h *S3Upload) Handle(ctx context.Context, ev S3Event) (S3Result, error) {
	ctx = notify.WithPath(ctx, notify.PathS3) // its publishes are counted as uploads'
	var res S3Result
	var errs []error
	skip := func(rec S3Record, reason string) {
		h.log.WarnContext(ctx, "skipped upload record", "bucket", rec.S3.Bucket.Name, "key", rec.S3.Object.Key, "reason", reason)
		res.Skipped = append(res.Skipped, S3Skipped{Key: rec.S3.Object.Key, Reason: reason})
	}
	if ev.Event == "s3:TestEvent" {
		h.log.InfoContext(ctx, "S3 test event ignored")
		return res, nil
	}
	for _, rec := range ev.Records {
		if rec.invalid != nil {
			skip(rec, rec.invalid.Error())
			continue
		}
		up, err := ParseUploadKey(rec.S3.Object.Key, h.prefix)
		if err == nil && !strings.HasPrefix(rec.EventName, "ObjectCreated:") {
			err = fmt.Errorf("event %q is not an ObjectCreated event", rec.EventName)
		}
		if err != nil {
			skip(rec, err.Error())
			continue
		}
		fu := event.FileUploaded{
			Type:   event.TypeFileUploaded,
			FileID: FileID(rec),
			Name:   up.Name,
			Size:   rec.S3.Object.Size,
		}
		// One S3 object version, delivered twice, is one event: its id
		// derives from the same values as its fileId.
		pub, err := h.n.Publish(ctx, up.OwnerID, "", derivedID("s3", fu.FileID), fu)
		if err == nil {
			err = pushesFailed(pub)
		}
		switch {
		case notify.ErrorCode(err) == notify.CodeInvalid:
			skip(rec, notify.ErrorMessage(err)) // a retry cannot fix it
		case err != nil:
			h.log.ErrorContext(ctx, "publish upload", "owner", up.OwnerID, "fileId", fu.FileID, "err", err)
			errs = append(errs, fmt.Errorf("publish %s: %w", fu.FileID, err))
		default:
			res.Published++
		}
	}
	return res, errors.Join(errs...)
}

// ParseUploadKey decodes an S3 event's object key (URL-encoded, '+' for a
// space) and splits it into owner and name along prefix{ownerId}/{name...}.
func ParseUploadKey(rawKey, prefix string) (Upload, error) {
	key, err := url.QueryUnescape(rawKey)
	if err != nil {
		return Upload{}, fmt.Errorf("key is not valid URL encoding: %v", err)
	}
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return Upload{}, fmt.Errorf("key is outside %s{ownerId}/{name}", prefix)
	}
	owner, name, ok := strings.Cut(rest, "/")
	if !ok || !event.ValidOwnerID(owner) {
		return Upload{}, fmt.Errorf("key has no valid owner segment after %s", prefix)
	}
	if name == "" || strings.HasSuffix(name, "/") {
		return Upload{}, errors.New("key names a folder, not a file")
	}
	if len(name) > event.MaxTextLength {
		return Upload{}, fmt.Errorf("file name is longer than %d bytes", event.MaxTextLength)
	}
	return Upload{OwnerID: owner, Name: name, Key: key}, nil
}

// FileID derives a file id from what identifies one upload: bucket, key,
// version, ETag and the event's sequencer. S3 delivers at least once; a
// duplicate delivery of an upload carries the same values and so gets the same
// id, while a new upload of the same key gets a new sequencer and a new id.
func FileID(rec S3Record) string {
	o := rec.S3.Object
	return hashID("file_", rec.S3.Bucket.Name, o.Key, o.VersionID, o.ETag, o.Sequencer)
}
