package asyncapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/shared/event"
)

// The Go types of shared/event, one per event kind.
var eventTypes = []event.Event{event.JobProgress{}, event.JobComplete{}, event.FileUploaded{}, event.Error{}}

// eventMessages returns the messages the "notify" operation sends, by type.
func eventMessages(t *testing.T) (*asyncapi.Document, map[string]asyncapi.Message) {
	t.Helper()
	doc, err := asyncapi.Load()
	if err != nil {
		t.Fatal(err)
	}
	byType := map[string]asyncapi.Message{}
	for _, m := range doc.Operation("notify") {
		if _, dup := byType[m.Type]; dup || m.Type == "" {
			t.Fatalf("notify's message %s: type %q is empty or taken", m.Name, m.Type)
		}
		byType[m.Type] = m
	}
	return doc, byType
}

// TestEveryEventAndFieldIsInTheSchemaAndBack holds the event schemas to
// shared/event's types both ways: the same event types, the same fields with
// the same JSON types, and the same required fields, where a field is
// required by shared/event if Parse refuses the document's example without it.
func TestEveryEventAndFieldIsInTheSchemaAndBack(t *testing.T) {
	doc, byType := eventMessages(t)
	var kinds, types []string
	for _, ev := range eventTypes {
		kinds = append(kinds, string(ev.Kind()))
	}
	for typ := range byType {
		types = append(types, typ)
	}
	sort.Strings(kinds)
	sort.Strings(types)
	if !slices.Equal(kinds, types) {
		t.Fatalf("shared/event has %v, the notify operation sends %v", kinds, types)
	}

	for _, ev := range eventTypes {
		t.Run(string(ev.Kind()), func(t *testing.T) {
			m := byType[string(ev.Kind())]
			goFields := jsonFields(reflect.TypeOf(ev))
			// event.Stamp adds these to every published event (seq only to
			// an owner-wide one); the stamp test in shared/event pins them.
			goFields["id"], goFields["seq"] = "string", "integer"
			props, _ := m.Payload["properties"].(map[string]any)
			schemaFields := map[string]string{}
			for name, p := range props {
				schemaFields[name] = jsonType(t, doc, p.(map[string]any))
			}
			if !reflect.DeepEqual(goFields, schemaFields) {
				t.Errorf("fields and JSON types:\nshared/event %v\nschema       %v", goFields, schemaFields)
			}

			example := exampleOf(t, doc, m)
			if _, err := event.Parse(example); err != nil {
				t.Fatalf("the document's example %s is invalid for shared/event: %v", example, err)
			}
			var goRequired []string
			for name := range goFields {
				if _, err := event.Parse(without(t, example, name)); err != nil {
					goRequired = append(goRequired, name)
				}
			}
			var schemaRequired []string
			for _, r := range m.Payload["required"].([]any) {
				schemaRequired = append(schemaRequired, r.(string))
			}
			sort.Strings(goRequired)
			sort.Strings(schemaRequired)
			if !slices.Equal(goRequired, schemaRequired) {
				t.Errorf("required fields: shared/event %v, schema %v", goRequired, schemaRequired)
			}
		})
	}
}

// TestTheServerSendsExactlyTheDocumentsExamples checks what leaves the
// server: each example, parsed and encoded again as a publish encodes it,
// is the example itself, so the schemas list exactly the fields sent.
func TestTheServerSendsExactlyTheDocumentsExamples(t *testing.T) {
	doc, byType := eventMessages(t)
	for typ, m := range byType {
		example := exampleOf(t, doc, m)
		ev, err := event.Parse(example)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		out, err := event.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		_ = json.Unmarshal(example, &a)
		_ = json.Unmarshal(out, &b)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: example %s is sent as %s", typ, example, out)
		}
		if err := doc.CheckReceived(out); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
}

// TestTheResumeMessagesHaveSharedEventsFields holds the schemas of the
// messages that answer a resume to their Go types in shared/event, field by
// field, and checks that what the server sends of each is on the contract.
func TestTheResumeMessagesHaveSharedEventsFields(t *testing.T) {
	doc, err := asyncapi.Load()
	if err != nil {
		t.Fatal(err)
	}
	replayed := json.RawMessage(`{"type":"job_complete","jobId":"j","status":"completed","organized":1,"failed":0,"id":"evt_1","seq":7}`)
	for schema, sent := range map[string]any{
		"Resumed":   event.Resumed{Type: "resumed", Seq: 7, Replayed: 1, More: true},
		"Replay":    event.Replay{Type: "replay", Events: []json.RawMessage{replayed}},
		"ResumeGap": event.ResumeGap{Type: event.TypeError, Error: "gone", Code: event.CodeResumeGap, OldestSeq: 3},
	} {
		t.Run(schema, func(t *testing.T) {
			v, err := doc.Lookup("/components/schemas/" + schema + "/properties")
			if err != nil {
				t.Fatal(err)
			}
			schemaFields := map[string]string{}
			for name, p := range v.(map[string]any) {
				schemaFields[name] = jsonType(t, doc, p.(map[string]any))
			}
			if goFields := jsonFields(reflect.TypeOf(sent)); !reflect.DeepEqual(goFields, schemaFields) {
				t.Errorf("fields and JSON types:\nshared/event %v\nschema       %v", goFields, schemaFields)
			}
			out, _ := json.Marshal(sent)
			if err := doc.CheckReceived(out); err != nil {
				t.Error(err)
			}
		})
	}
}

// inexpressible lists the rules of shared/event that the schemas do not
// state, and why. Samples that need one name it; every rule here must be
// named by a sample, so the list cannot outlive its reason.
var inexpressible = map[string]string{
	"processed<=total": "processedCount must not exceed totalCount: JSON Schema draft-07 cannot compare two fields",
	"bytes":            "shared/event bounds lengths in bytes; maxLength counts characters, so a multibyte string can pass the schema and break the byte limit",
	"whole":            "shared/event decodes counts into int64 and refuses 65.0; JSON Schema's integer takes any number without a fraction, 65.0 included",
	"null-is-absent":   "shared/event takes null for an optional field as the field left out; the schema describes what the server sends, where null never appears",
	"empty-jobId":      "shared/event takes an empty jobId on an error as none, and the server then leaves the field out; the schema describes what is sent",
}

// sample is one candidate event, with the verdict of shared/event.Parse.
type sample struct {
	name  string
	json  string
	valid bool   // per shared/event
	rule  string // a key of inexpressible: the schema's verdict differs
}

func samples() []sample {
	progress := func(fields string) string {
		return `{"type":"job_progress","jobId":"job_123",` + fields + `}`
	}
	complete := func(status string, organized, failed string) string {
		return fmt.Sprintf(`{"type":"job_complete","jobId":"job_123","status":%q,"organized":%s,"failed":%s}`, status, organized, failed)
	}
	upload := func(name, size string) string {
		return fmt.Sprintf(`{"type":"file_uploaded","fileId":"file_456","name":%q,"size":%s}`, name, size)
	}
	errorEvent := func(jobID, msg, code string) string {
		return fmt.Sprintf(`{"type":"error","jobId":%q,"error":%q,"code":%q}`, jobID, msg, code)
	}
	counts := `"processedCount":65,"totalCount":100`
	long := func(n int) string { return strings.Repeat("a", n) }
	return []sample{
		{"progress 0", progress(`"progress":0,` + counts), true, ""},
		{"progress 100", progress(`"progress":100,` + counts), true, ""},
		{"progress with a fraction", progress(`"progress":99.5,` + counts), true, ""},
		{"progress 101", progress(`"progress":101,` + counts), false, ""},
		{"progress just over 100", progress(`"progress":100.01,` + counts), false, ""},
		{"progress below 0", progress(`"progress":-0.5,` + counts), false, ""},
		{"progress as a string", progress(`"progress":"65",` + counts), false, ""},
		{"no currentFile", progress(`"progress":65,` + counts), true, ""},
		{"an empty currentFile", progress(`"progress":65,` + counts + `,"currentFile":""`), true, ""},
		{"currentFile at its limit", progress(`"progress":65,` + counts + `,"currentFile":"` + long(event.MaxTextLength) + `"`), true, ""},
		{"currentFile over its limit", progress(`"progress":65,` + counts + `,"currentFile":"` + long(event.MaxTextLength+1) + `"`), false, ""},
		{"processed equal to total", progress(`"progress":100,"processedCount":100,"totalCount":100`), true, ""},
		{"zero counts", progress(`"progress":0,"processedCount":0,"totalCount":0`), true, ""},
		{"a negative processedCount", progress(`"progress":0,"processedCount":-1,"totalCount":100`), false, ""},
		{"a negative totalCount", progress(`"progress":0,"processedCount":0,"totalCount":-1`), false, ""},
		{"a count past 64 bits", progress(`"progress":0,"processedCount":0,"totalCount":9223372036854775808`), false, ""},
		{"the largest count", progress(`"progress":0,"processedCount":0,"totalCount":9223372036854775807`), true, ""},
		{"no progress", progress(counts), false, ""},
		{"no jobId", `{"type":"job_progress","progress":65,` + counts + `}`, false, ""},
		{"a null jobId", `{"type":"job_progress","jobId":null,"progress":65,` + counts + `}`, false, ""},
		{"an empty jobId", `{"type":"job_progress","jobId":"","progress":65,` + counts + `}`, false, ""},
		{"a jobId at its limit", `{"type":"job_progress","jobId":"` + long(event.MaxIDLength) + `","progress":65,` + counts + `}`, true, ""},
		{"a jobId over its limit", `{"type":"job_progress","jobId":"` + long(event.MaxIDLength+1) + `","progress":65,` + counts + `}`, false, ""},
		{"an unknown field", progress(`"progress":65,` + counts + `,"eta":3`), false, ""},
		{"processed over total", progress(`"progress":65,"processedCount":101,"totalCount":100`), false, "processed<=total"},
		{"a count written 65.0", progress(`"progress":65,"processedCount":65.0,"totalCount":100`), false, "whole"},
		{"a count with a fraction", progress(`"progress":65,"processedCount":65.5,"totalCount":100`), false, ""},
		{"a null currentFile", progress(`"progress":65,` + counts + `,"currentFile":null`), true, "null-is-absent"},
		{"a jobId of 200 two-byte characters", `{"type":"job_progress","jobId":"` + strings.Repeat("é", 200) + `","progress":65,` + counts + `}`, false, "bytes"},

		{"completed", complete("completed", "100", "0"), true, ""},
		{"failed", complete("failed", "3", "97"), true, ""},
		{"cancelled", complete("cancelled", "0", "0"), true, ""},
		{"an unknown status", complete("done", "100", "0"), false, ""},
		{"an empty status", complete("", "100", "0"), false, ""},
		{"negative organized", complete("completed", "-1", "0"), false, ""},
		{"negative failed", complete("completed", "0", "-1"), false, ""},
		{"organized as a string", complete("completed", `"100"`, "0"), false, ""},

		{"an upload", upload("newfile.pdf", "512000"), true, ""},
		{"an empty file", upload("empty.txt", "0"), true, ""},
		{"a negative size", upload("newfile.pdf", "-1"), false, ""},
		{"an empty name", upload("", "1"), false, ""},
		{"a name at its limit", upload(long(event.MaxTextLength), "1"), true, ""},
		{"a name over its limit", upload(long(event.MaxTextLength+1), "1"), false, ""},
		{"no fileId", `{"type":"file_uploaded","name":"a","size":1}`, false, ""},

		{"an error of a job", errorEvent("job_123", "Permission denied", "PERMISSION_ERROR"), true, ""},
		{"an error of no job", `{"type":"error","error":"Permission denied","code":"PERMISSION_ERROR"}`, true, ""},
		{"a one-letter code", errorEvent("job_123", "x", "E"), true, ""},
		{"a code at its limit", errorEvent("job_123", "x", "E"+strings.Repeat("_", 63)), true, ""},
		{"a code over its limit", errorEvent("job_123", "x", "E"+strings.Repeat("_", 64)), false, ""},
		{"a lower-case code", errorEvent("job_123", "x", "permission_error"), false, ""},
		{"a code starting with a digit", errorEvent("job_123", "x", "1ERROR"), false, ""},
		{"an empty code", errorEvent("job_123", "x", ""), false, ""},
		{"an empty message", errorEvent("job_123", "", "E"), false, ""},
		{"a message at its limit", errorEvent("job_123", long(event.MaxTextLength), "E"), true, ""},
		{"a message over its limit", errorEvent("job_123", long(event.MaxTextLength+1), "E"), false, ""},
		{"no code", `{"type":"error","error":"x"}`, false, ""},
		{"an empty jobId on an error", errorEvent("", "x", "E"), true, "empty-jobId"},
		{"a null jobId on an error", `{"type":"error","jobId":null,"error":"x","code":"E"}`, true, "null-is-absent"},

		{"an unknown type", `{"type":"job_started","jobId":"job_123"}`, false, ""},
		{"no type", `{"jobId":"job_123","progress":65}`, false, ""},
		{"not an object", `["job_progress"]`, false, ""},
	}
}

// TestSharedEventAndTheSchemaGiveTheSameVerdicts runs each sample through
// shared/event.Parse and through the schema of its type. They must agree,
// except where the sample names a rule the schema cannot express; there the
// schema must take the other view, so a rule that becomes expressible is
// noticed and taken off the list.
func TestSharedEventAndTheSchemaGiveTheSameVerdicts(t *testing.T) {
	_, byType := eventMessages(t)
	named := map[string]bool{}
	for _, s := range samples() {
		t.Run(s.name, func(t *testing.T) {
			_, parseErr := event.Parse([]byte(s.json))
			if (parseErr == nil) != s.valid {
				t.Fatalf("shared/event: Parse = %v, want valid %v (the table is wrong)", parseErr, s.valid)
			}
			schemaErr := validateEvent(byType, s.json)
			schemaValid := schemaErr == nil
			if s.rule != "" {
				named[s.rule] = true
				if _, ok := inexpressible[s.rule]; !ok {
					t.Fatalf("rule %q is not in the inexpressible list", s.rule)
				}
				if schemaValid == s.valid {
					t.Fatalf("the schema now agrees with shared/event (%v) on rule %q: take it off the inexpressible list", schemaErr, s.rule)
				}
				return
			}
			if schemaValid != s.valid {
				t.Fatalf("shared/event says valid=%v (%v), the schema says valid=%v (%v)", s.valid, parseErr, schemaValid, schemaErr)
			}
		})
	}
	for rule := range inexpressible {
		if !named[rule] {
			t.Errorf("no sample shows the inexpressible rule %q", rule)
		}
	}
}

// validateEvent holds a candidate event to the schema of its type.
func validateEvent(byType map[string]asyncapi.Message, data string) error {
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(data))
	if err != nil {
		return err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("not an object")
	}
	typ, _ := obj["type"].(string)
	m, ok := byType[typ]
	if !ok {
		return fmt.Errorf("no event has type %q", typ)
	}
	return m.Validate(v)
}

// jsonFields maps each JSON field of an event struct to its JSON type.
func jsonFields(typ reflect.Type) map[string]string {
	fields := map[string]string{}
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch f.Type.Kind() {
		case reflect.String:
			fields[name] = "string"
		case reflect.Float32, reflect.Float64:
			fields[name] = "number"
		case reflect.Int, reflect.Int32, reflect.Int64:
			fields[name] = "integer"
		case reflect.Bool:
			fields[name] = "boolean"
		case reflect.Slice:
			fields[name] = "array"
		default:
			fields[name] = "unknown Go kind " + f.Type.Kind().String()
		}
	}
	return fields
}

// jsonType returns the JSON type a property schema allows, following $ref
// and allOf, and taking a const's type.
func jsonType(t *testing.T, doc *asyncapi.Document, schema map[string]any) string {
	t.Helper()
	schema, err := doc.Resolve(schema)
	if err != nil {
		t.Fatal(err)
	}
	if typ, ok := schema["type"].(string); ok {
		return typ
	}
	if c, ok := schema["const"]; ok {
		switch c.(type) {
		case string:
			return "string"
		case bool:
			return "boolean"
		default:
			return fmt.Sprintf("const %T", c)
		}
	}
	for _, sub := range schema["allOf"].([]any) {
		if typ := jsonType(t, doc, sub.(map[string]any)); typ != "" {
			return typ
		}
	}
	return ""
}

// exampleOf returns the first example payload of a message, as JSON.
func exampleOf(t *testing.T, doc *asyncapi.Document, m asyncapi.Message) []byte {
	t.Helper()
	v, err := doc.Lookup("/components/messages/" + m.Name + "/examples/0/payload")
	if err != nil {
		t.Fatalf("message %s has no example: %v", m.Name, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// without returns the JSON object data with one field removed.
func without(t *testing.T, data []byte, field string) []byte {
	t.Helper()
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&obj); err != nil {
		t.Fatal(err)
	}
	delete(obj, field)
	b, _ := json.Marshal(obj)
	return b
}
