package event

import (
	"encoding/json"
	"errors"
	"regexp"
)

// MaxClientIDLength and MaxOwnerIDLength bound the identifiers that name
// connections; both end up in DynamoDB keys and log lines.
const (
	MaxClientIDLength = 128
	MaxOwnerIDLength  = 128
)

// ClientIDPattern and OwnerIDPattern are the identifiers' rules as regular
// expressions, in the syntax Go and JavaScript share (the Node.js publisher
// takes them from here, through its generated schema table).
const (
	ClientIDPattern = `^[A-Za-z0-9._:-]{1,128}$`
	OwnerIDPattern  = `^[A-Za-z0-9._:@-]{1,128}$`
)

var (
	clientIDPattern = regexp.MustCompile(ClientIDPattern)
	ownerIDPattern  = regexp.MustCompile(OwnerIDPattern)
)

// ValidClientID reports whether s may name a client session: 1-128 characters
// of A-Z, a-z, 0-9, '.', '_', ':' and '-' (a UUID fits).
func ValidClientID(s string) bool { return clientIDPattern.MatchString(s) }

// ValidOwnerID reports whether s may name an owner: 1-128 characters of
// A-Z, a-z, 0-9, '.', '_', ':', '@' and '-'. No '/', so an owner id is always
// exactly one segment of an S3 upload key.
func ValidOwnerID(s string) bool { return ownerIDPattern.MatchString(s) }

// DeduplicationPrefix starts the MessageDeduplicationId of a job queue
// message whose publisher names the event itself (the Go and Node.js
// publishers, from the message's idempotency key). The job events function
// derives the event's id from such an id rather than from the SQS message
// id, so a message sent again after SQS's five-minute deduplication window
// is still the same event. Other deduplication ids, such as the hash SQS
// makes of the body under content-based deduplication, are not names: two
// equal bodies may well be two events.
const DeduplicationPrefix = "wsn-"

// Envelope is what a job-event trigger carries: the event and whom it is for.
type Envelope struct {
	OwnerID  string `json:"ownerId"`
	ClientID string `json:"clientId,omitempty"`
	Event    Event  `json:"event"`
}

// ParseEnvelope decodes and validates a trigger message body:
//
//	{"ownerId": "acct_42", "clientId": "optional", "event": {"type": "job_progress", ...}}
func ParseEnvelope(data []byte) (Envelope, error) {
	var raw struct {
		OwnerID  *string         `json:"ownerId"`
		ClientID json.RawMessage `json:"clientId"`
		Event    json.RawMessage `json:"event"`
	}
	if err := decodeStrict(data, &raw); err != nil {
		return Envelope{}, err
	}
	if raw.OwnerID == nil {
		return Envelope{}, invalid("missing field \"ownerId\"")
	}
	if !ValidOwnerID(*raw.OwnerID) {
		return Envelope{}, invalid("ownerId must be 1-%d characters of A-Z a-z 0-9 . _ : @ -", MaxOwnerIDLength)
	}
	env := Envelope{OwnerID: *raw.OwnerID}
	if raw.ClientID != nil {
		// Leave clientId out to address every connection of the owner: a
		// null would mean the same, and reads like "no client" to some
		// producers and like a mistake to others.
		var id string
		if string(raw.ClientID) == "null" {
			return Envelope{}, invalid("clientId must not be null: leave it out to publish to every connection of the owner")
		}
		if err := json.Unmarshal(raw.ClientID, &id); err != nil {
			kind := "value"
			var typeErr *json.UnmarshalTypeError
			if errors.As(err, &typeErr) {
				kind = typeErr.Value
			}
			return Envelope{}, invalid("field \"clientId\" must be a string, got JSON %s", kind)
		}
		if !ValidClientID(id) {
			return Envelope{}, invalid("clientId must be 1-%d characters of A-Z a-z 0-9 . _ : -", MaxClientIDLength)
		}
		env.ClientID = id
	}
	if len(raw.Event) == 0 || string(raw.Event) == "null" {
		return Envelope{}, invalid("missing field \"event\"")
	}
	ev, err := Parse(raw.Event)
	if err != nil {
		return Envelope{}, err
	}
	if ev.Kind() == TypeFileUploaded {
		// file_uploaded comes from S3 alone, so its fileId is always ours.
		return Envelope{}, invalid("event type %q is published by the upload trigger, not by job events", TypeFileUploaded)
	}
	env.Event = ev
	return env, nil
}
