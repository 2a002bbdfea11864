package event

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzParse checks that Parse never panics, that everything it accepts is
// valid and survives an encode/parse round trip unchanged, and that every
// refusal wraps ErrInvalid.
func FuzzParse(f *testing.F) {
	for _, src := range seedExamples {
		f.Add([]byte(src))
	}
	f.Add([]byte(`{"type":"job_progress","jobId":"j","progress":1e2,"processedCount":0,"totalCount":0}`))
	f.Add([]byte(`{"type":"error","error":"\u0000","code":"A"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("Parse accepted an invalid event: %v", err)
		}
		out, err := Marshal(ev)
		if err != nil {
			t.Fatalf("Marshal of a parsed event: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		out2, _ := Marshal(again)
		if string(out) != string(out2) {
			t.Fatalf("round trip changed the event:\n%s\n%s", out, out2)
		}
	})
}

// FuzzParseEnvelope checks that an accepted envelope names a valid owner, a
// valid or empty client, and a valid event that is not file_uploaded.
func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`{"ownerId":"acct_42","event":` + seedExamples[TypeJobProgress] + `}`))
	f.Add([]byte(`{"ownerId":"acct_42","clientId":"c-1","event":` + seedExamples[TypeError] + `}`))
	f.Add([]byte(`{"ownerId":"a/b","event":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := ParseEnvelope(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if !ValidOwnerID(env.OwnerID) || (env.ClientID != "" && !ValidClientID(env.ClientID)) {
			t.Fatalf("accepted bad ids: %+v", env)
		}
		if env.Event == nil || env.Event.Validate() != nil || env.Event.Kind() == TypeFileUploaded {
			t.Fatalf("accepted a bad event: %+v", env)
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
	})
}
