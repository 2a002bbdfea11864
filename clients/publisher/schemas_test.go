package publisher_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wsnotify/wsnotify/infra/asyncapi"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

var update = flag.Bool("update", false, "rewrite schemas.json from docs/asyncapi.yaml and shared/event")

// The components of docs/asyncapi.yaml that are the events.
var eventSchemas = []string{"JobProgress", "JobComplete", "FileUploaded", "Error"}

// table builds schemas.json: the events' schemas from docs/asyncapi.yaml,
// flattened ($refs followed, allOf merged, descriptions and the fields the
// server adds left out), and from shared/event the id rules and the types
// an app may publish. The Node.js publisher checks messages with it.
func table(t *testing.T) []byte {
	t.Helper()
	doc, err := asyncapi.Load()
	if err != nil {
		t.Fatal(err)
	}
	events := map[string]any{}
	for _, name := range eventSchemas {
		raw, err := doc.Lookup("/components/schemas/" + name)
		if err != nil {
			t.Fatal(err)
		}
		flat, err := flatten(doc, raw.(map[string]any))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		props := flat["properties"].(map[string]any)
		delete(props, "id") // the server stamps them; a producer's event has neither
		delete(props, "seq")
		typ, _ := props["type"].(map[string]any)["const"].(string)
		events[typ] = flat
	}
	var publishable []string
	for _, ev := range []event.Event{
		event.JobProgress{Type: event.TypeJobProgress, JobID: "j"},
		event.JobComplete{Type: event.TypeJobComplete, JobID: "j", Status: event.StatusCompleted},
		event.FileUploaded{Type: event.TypeFileUploaded, FileID: "f", Name: "n"},
		event.Error{Type: event.TypeError, Error: "e", Code: "E"},
	} {
		data, _ := json.Marshal(ev)
		if _, err := event.ParseEnvelope(fmt.Appendf(nil, `{"ownerId":"o","event":%s}`, data)); err == nil {
			publishable = append(publishable, string(ev.Kind()))
		}
	}
	out, err := json.MarshalIndent(map[string]any{
		"_":                   "Generated from docs/asyncapi.yaml and shared/event by: go test ./clients/publisher -run TestTheSchemaTable -update. Do not edit.",
		"deduplicationPrefix": event.DeduplicationPrefix,
		"ownerId":             map[string]string{"pattern": event.OwnerIDPattern},
		"clientId":            map[string]string{"pattern": event.ClientIDPattern},
		"publishable":         publishable,
		"events":              events,
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

// flatten returns schema with $refs followed and allOf merged into it, so
// that the module's checker needs only a handful of keywords.
func flatten(doc *asyncapi.Document, schema map[string]any) (map[string]any, error) {
	schema, err := doc.Resolve(schema)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for k, v := range schema {
		switch k {
		case "description", "examples", "title", "$ref":
		case "allOf":
			for _, part := range v.([]any) {
				flat, err := flatten(doc, part.(map[string]any))
				if err != nil {
					return nil, err
				}
				if err := merge(out, flat); err != nil {
					return nil, err
				}
			}
		case "properties":
			props := map[string]any{}
			for name, p := range v.(map[string]any) {
				if props[name], err = flatten(doc, p.(map[string]any)); err != nil {
					return nil, fmt.Errorf("%s: %w", name, err)
				}
			}
			out[k] = props
		default:
			if err := merge(out, map[string]any{k: v}); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// merge adds src's keywords to dst, keeping the stricter bound where both
// have one; any other keyword both have must agree.
func merge(dst, src map[string]any) error {
	for k, v := range src {
		old, both := dst[k]
		switch {
		case !both:
			dst[k] = v
		case k == "minimum" || k == "minLength":
			dst[k] = maxNumber(old, v)
		case k == "maximum" || k == "maxLength":
			dst[k] = -maxNumber(-number(old), -number(v))
		case fmt.Sprint(old) != fmt.Sprint(v):
			return fmt.Errorf("allOf gives %s both %v and %v", k, old, v)
		}
	}
	return nil
}

func number(v any) float64 {
	switch n := v.(type) {
	case int:
		return float64(n)
	case float64:
		return n
	}
	panic(fmt.Sprintf("not a number: %v", v))
}

func maxNumber(a, b any) float64 { return max(number(a), number(b)) }

func dir(t *testing.T) string { return filepath.Join(testenv.RepoRoot(t), "clients", "publisher") }

// TestTheSchemaTableIsGeneratedFromTheContract fails when docs/asyncapi.yaml
// or shared/event changed and schemas.json was not generated again.
func TestTheSchemaTableIsGeneratedFromTheContract(t *testing.T) {
	want := table(t)
	path := filepath.Join(dir(t), "schemas.json")
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("clients/publisher/schemas.json is not what docs/asyncapi.yaml and shared/event give: run\n  go test ./clients/publisher -run TestTheSchemaTable -update")
	}
	var parsed struct{ Events map[string]any }
	_ = json.Unmarshal(got, &parsed)
	if keys := slices.Sorted(maps.Keys(parsed.Events)); len(keys) != 4 {
		t.Errorf("events in the table: %v", keys)
	}
}
