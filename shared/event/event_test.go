package event

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The client contract's four original examples, verbatim (docs/protocol.md shows them).
var seedExamples = map[Type]string{
	TypeJobProgress: `{
  "type": "job_progress",
  "jobId": "job_123",
  "progress": 65,
  "processedCount": 65,
  "totalCount": 100,
  "currentFile": "document.pdf"
}`,
	TypeJobComplete: `{
  "type": "job_complete",
  "jobId": "job_123",
  "status": "completed",
  "organized": 100,
  "failed": 0
}`,
	TypeFileUploaded: `{
  "type": "file_uploaded",
  "fileId": "file_456",
  "name": "newfile.pdf",
  "size": 512000
}`,
	TypeError: `{
  "type": "error",
  "jobId": "job_123",
  "error": "Permission denied",
  "code": "PERMISSION_ERROR"
}`,
}

func TestSeedExamplesRoundTripInTheirExactShape(t *testing.T) {
	for typ, src := range seedExamples {
		t.Run(string(typ), func(t *testing.T) {
			ev, err := Parse([]byte(src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if ev.Kind() != typ {
				t.Fatalf("Kind = %q", ev.Kind())
			}
			out, err := Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			var want, got map[string]any
			_ = json.Unmarshal([]byte(src), &want)
			_ = json.Unmarshal(out, &got)
			if !reflect.DeepEqual(want, got) {
				t.Fatalf("round trip changed the shape:\nwant %v\ngot  %v", want, got)
			}
		})
	}
}

func TestParseRefusesWhatBreaksTheRules(t *testing.T) {
	long := strings.Repeat("x", MaxIDLength+1)
	tests := []struct {
		name, in, want string
	}{
		{"not JSON", `{"type":`, "not a JSON object"},
		{"an array", `[1,2]`, "not a JSON object"},
		{"no type", `{"jobId":"j"}`, `missing field "type"`},
		{"a type that is not a string", `{"type":5}`, "not a JSON object"},
		{"an unknown type", `{"type":"job_started"}`, `unknown type "job_started"`},
		{"progress without jobId", `{"type":"job_progress","progress":1,"processedCount":1,"totalCount":1}`, `missing field "jobId"`},
		{"progress missing its counts", `{"type":"job_progress","jobId":"j","progress":1}`, `missing field "processedCount", "totalCount"`},
		{"progress over 100", `{"type":"job_progress","jobId":"j","progress":100.5,"processedCount":1,"totalCount":1}`, "progress must be between 0 and 100"},
		{"negative progress", `{"type":"job_progress","jobId":"j","progress":-1,"processedCount":1,"totalCount":1}`, "progress must be between 0 and 100"},
		{"progress as a string", `{"type":"job_progress","jobId":"j","progress":"65","processedCount":1,"totalCount":1}`, `field "progress" must be a number`},
		{"a fractional count", `{"type":"job_progress","jobId":"j","progress":1,"processedCount":1.5,"totalCount":2}`, `field "processedCount" must be a whole number`},
		{"a negative count", `{"type":"job_progress","jobId":"j","progress":1,"processedCount":-1,"totalCount":2}`, "must be >= 0"},
		{"more processed than total", `{"type":"job_progress","jobId":"j","progress":1,"processedCount":3,"totalCount":2}`, "processedCount (3) must not exceed totalCount (2)"},
		{"a misspelt optional field", `{"type":"job_progress","jobId":"j","progress":1,"processedCount":1,"totalCount":2,"curentFile":"a"}`, `unknown field "curentFile"`},
		{"an empty jobId", `{"type":"job_complete","jobId":"","status":"completed","organized":1,"failed":0}`, "jobId must be 1-256"},
		{"an overlong jobId", `{"type":"job_complete","jobId":"` + long + `","status":"completed","organized":1,"failed":0}`, "jobId must be 1-256"},
		{"an unknown status", `{"type":"job_complete","jobId":"j","status":"done","organized":1,"failed":0}`, `got "done"`},
		{"a negative failed count", `{"type":"job_complete","jobId":"j","status":"failed","organized":1,"failed":-2}`, "must be >= 0"},
		{"job_complete missing failed", `{"type":"job_complete","jobId":"j","status":"failed","organized":1}`, `missing field "failed"`},
		{"an upload without a name", `{"type":"file_uploaded","fileId":"f","name":"","size":1}`, "name must be 1-4096"},
		{"a negative size", `{"type":"file_uploaded","fileId":"f","name":"a","size":-1}`, "size must be >= 0"},
		{"an error without code", `{"type":"error","error":"boom"}`, `missing field "code"`},
		{"a lower-case code", `{"type":"error","error":"boom","code":"oops"}`, "code must be"},
		{"an empty message", `{"type":"error","error":"","code":"E"}`, "error must be 1-4096"},
		{"trailing data", `{"type":"error","error":"x","code":"E"} {}`, "after top-level value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse(%s) = %#v, want an error", tt.in, ev)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

func TestParseAcceptsTheEdgesOfEachRule(t *testing.T) {
	for _, in := range []string{
		`{"type":"job_progress","jobId":"j","progress":0,"processedCount":0,"totalCount":0}`,
		`{"type":"job_progress","jobId":"j","progress":100,"processedCount":5,"totalCount":5,"currentFile":""}`,
		`{"type":"job_progress","jobId":"j","progress":33.3,"processedCount":1,"totalCount":3}`,
		`{"type":"job_complete","jobId":"j","status":"cancelled","organized":0,"failed":0}`,
		`{"type":"file_uploaded","fileId":"f","name":"a b/c.pdf","size":0}`,
		`{"type":"error","error":"Disk full","code":"E2"}`,
	} {
		if _, err := Parse([]byte(in)); err != nil {
			t.Errorf("Parse(%s): %v", in, err)
		}
	}
}

func TestProgressWithoutCurrentFileStillCarriesTheField(t *testing.T) {
	ev, err := Parse([]byte(`{"type":"job_progress","jobId":"j","progress":1,"processedCount":1,"totalCount":2}`))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := Marshal(ev)
	if !strings.Contains(string(out), `"currentFile":""`) {
		t.Fatalf("%s lacks currentFile: clients written against the seed read it unconditionally", out)
	}
}

func TestErrorWithoutJobOmitsJobID(t *testing.T) {
	out, err := Marshal(Error{Type: TypeError, Error: "bad", Code: "BAD_REQUEST"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), `{"type":"error","error":"bad","code":"BAD_REQUEST"}`; got != want {
		t.Fatalf("Marshal = %s, want %s", got, want)
	}
}

func TestMarshalRefusesAnInvalidEvent(t *testing.T) {
	if _, err := Marshal(JobProgress{Type: TypeJobProgress, JobID: "j", Progress: 101}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Marshal of progress 101: err = %v, want ErrInvalid", err)
	}
}

func TestParseEnvelope(t *testing.T) {
	progress := `{"type":"job_progress","jobId":"job_1","progress":5,"processedCount":5,"totalCount":100}`
	t.Run("an owner-wide envelope", func(t *testing.T) {
		env, err := ParseEnvelope([]byte(`{"ownerId":"acct_42","event":` + progress + `}`))
		if err != nil {
			t.Fatal(err)
		}
		if env.OwnerID != "acct_42" || env.ClientID != "" || env.Event.Kind() != TypeJobProgress {
			t.Fatalf("got %+v", env)
		}
	})
	t.Run("an envelope for one client", func(t *testing.T) {
		env, err := ParseEnvelope([]byte(`{"ownerId":"acct_42","clientId":"3f0c9a52-6c1e","event":` + progress + `}`))
		if err != nil {
			t.Fatal(err)
		}
		if env.ClientID != "3f0c9a52-6c1e" {
			t.Fatalf("ClientID = %q", env.ClientID)
		}
	})
	bad := []struct{ name, in, want string }{
		{"no owner", `{"event":` + progress + `}`, `missing field "ownerId"`},
		{"an owner with a slash", `{"ownerId":"a/b","event":` + progress + `}`, "ownerId must be"},
		{"an empty owner", `{"ownerId":"","event":` + progress + `}`, "ownerId must be"},
		{"a client id with a space", `{"ownerId":"o","clientId":"a b","event":` + progress + `}`, "clientId must be"},
		{"no event", `{"ownerId":"o"}`, `missing field "event"`},
		{"a null event", `{"ownerId":"o","event":null}`, `missing field "event"`},
		{"an invalid event", `{"ownerId":"o","event":{"type":"job_progress"}}`, `missing field "jobId"`},
		{"an upload event from a job producer", `{"ownerId":"o","event":{"type":"file_uploaded","fileId":"f","name":"n","size":1}}`, "published by the upload trigger"},
		{"an unknown envelope field", `{"ownerId":"o","owner":"x","event":` + progress + `}`, `unknown field "owner"`},
		{"not an object", `"hello"`, "not a JSON object, got JSON string"},
		{"two owners", `{"ownerId":"victim","ownerId":"o","event":` + progress + `}`, `duplicate key "ownerId"`},
		{"two client ids", `{"ownerId":"o","clientId":"a","event":` + progress + `,"clientId":"b"}`, `duplicate key "clientId"`},
		{"a key twice inside the event", `{"ownerId":"o","event":{"type":"job_progress","jobId":"j","jobId":"k","progress":1,"processedCount":1,"totalCount":1}}`, `duplicate key "jobId"`},
		{"a null client id", `{"ownerId":"o","clientId":null,"event":` + progress + `}`, "clientId must not be null"},
		{"a client id that is a number", `{"ownerId":"o","clientId":7,"event":` + progress + `}`, `field "clientId" must be a string, got JSON number`},
		{"an empty client id", `{"ownerId":"o","clientId":"","event":` + progress + `}`, "clientId must be"},
		{"JSON nested without end", `{"ownerId":"o","event":` + progress + `,"x":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}`, "nested deeper"},
	}
	for _, tt := range bad {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			_, err := ParseEnvelope([]byte(tt.in))
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseEnvelope(%s) error = %v, want one saying %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestIdentifierRules(t *testing.T) {
	tests := []struct {
		id            string
		client, owner bool
	}{
		{"3f0c9a52-6c1e-4e7b-9a43-1d2f6b8e7c10", true, true},
		{"a", true, true},
		{"user_1.tab:2", true, true},
		{"me@example.com", false, true},
		{"", false, false},
		{"a b", false, false},
		{"a/b", false, false},
		{"é", false, false},
		{strings.Repeat("a", 128), true, true},
		{strings.Repeat("a", 129), false, false},
	}
	for _, tt := range tests {
		if got := ValidClientID(tt.id); got != tt.client {
			t.Errorf("ValidClientID(%q) = %v", tt.id, got)
		}
		if got := ValidOwnerID(tt.id); got != tt.owner {
			t.Errorf("ValidOwnerID(%q) = %v", tt.id, got)
		}
	}
}

func TestTheLargestValidEventFitsOneAPIGatewayMessage(t *testing.T) {
	const apiGatewayLimit = 128 * 1024
	worst := strings.Repeat("\x01", MaxTextLength) // JSON-escapes to six bytes each
	id := strings.Repeat("\x01", MaxIDLength)
	for _, ev := range []Event{
		JobProgress{Type: TypeJobProgress, JobID: id, Progress: 99.99999999, ProcessedCount: 1 << 62, TotalCount: 1 << 62, CurrentFile: worst},
		Error{Type: TypeError, JobID: id, Error: worst, Code: strings.Repeat("A", 64)},
		FileUploaded{Type: TypeFileUploaded, FileID: id, Name: worst, Size: 1 << 62},
	} {
		out, err := Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) > apiGatewayLimit/4 {
			t.Errorf("%s encodes to %d bytes; the rules should keep it well under %d", ev.Kind(), len(out), apiGatewayLimit)
		}
	}
}

func TestStampAddsIDAndSeqAfterTheEventsOwnFields(t *testing.T) {
	data, err := Marshal(JobComplete{Type: TypeJobComplete, JobID: "job_123", Status: StatusCompleted, Organized: 100})
	if err != nil {
		t.Fatal(err)
	}
	got := string(Stamp(data, `evt_"1"`, 42))
	want := `{"type":"job_complete","jobId":"job_123","status":"completed","organized":100,"failed":0,"id":"evt_\"1\"","seq":42}`
	if got != want {
		t.Fatalf("Stamp = %s\nwant    %s", got, want)
	}
	if got := string(Stamp(data, "evt_2", 0)); !strings.HasSuffix(got, `"failed":0,"id":"evt_2"}`) {
		t.Fatalf("a client-addressed event carries an id and no seq: %s", got)
	}
	// The stamped event still parses as the event it was: the fields are only added.
	var back map[string]any
	if err := json.Unmarshal(Stamp(data, "evt_3", 7), &back); err != nil || back["jobId"] != "job_123" || back["seq"] != float64(7) {
		t.Fatalf("stamped event decodes as %v, %v", back, err)
	}
}

func TestJobOf(t *testing.T) {
	for _, tt := range []struct {
		ev   Event
		want string
	}{
		{JobProgress{JobID: "a"}, "a"}, {JobComplete{JobID: "b"}, "b"}, {Error{JobID: "c"}, "c"},
		{Error{}, ""}, {FileUploaded{FileID: "f"}, ""},
	} {
		if got := JobOf(tt.ev); got != tt.want {
			t.Errorf("JobOf(%T) = %q, want %q", tt.ev, got, tt.want)
		}
	}
}
