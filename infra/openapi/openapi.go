// Package openapi reads docs/openapi.yaml, the OpenAPI 3.1 description of
// the publish API, and checks answers against the JSON Schemas of its
// responses. The publish API's tests run every answer they receive through
// CheckResponse, so the document and the server cannot part without a test
// failing. Whether the document is valid OpenAPI is for an OpenAPI
// validator from npm to say; this package's tests run it.
package openapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	wsnotify "github.com/wsnotify/wsnotify"
)

// ErrOffContract is wrapped by every error that reports an answer breaking
// the document.
var ErrOffContract = errors.New("answer breaks docs/openapi.yaml")

// resourceURL names the document for the schema compiler; its $refs are
// local and resolve against it.
const resourceURL = "file:///docs/openapi.yaml"

// Document is a parsed OpenAPI document.
type Document struct {
	raw map[string]any
	c   *jsonschema.Compiler

	mu      sync.Mutex
	schemas map[string]*jsonschema.Schema // by JSON pointer
}

var (
	loadOnce sync.Once
	loaded   *Document
	loadErr  error
)

// Load returns the repository's docs/openapi.yaml, parsed once per process.
func Load() (*Document, error) {
	loadOnce.Do(func() { loaded, loadErr = Parse(wsnotify.OpenAPI) })
	return loaded, loadErr
}

// Parse parses an OpenAPI 3.1 document; its schemas are JSON Schema 2020-12
// with formats asserted.
func Parse(data []byte) (*Document, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	js, err := json.Marshal(doc) // YAML's values into JSON's
	if err != nil {
		return nil, fmt.Errorf("openapi: document is not JSON-compatible: %w", err)
	}
	value, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(resourceURL, value); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	return &Document{raw: doc, c: c, schemas: map[string]*jsonschema.Schema{}}, nil
}

// CheckResponse checks an answer of the repository's document's API:
// status must be one the operation of method and path lists, and body must
// hold to its schema. An unknown route must be answered 404 with a Refusal.
func CheckResponse(method, path string, status int, body []byte) error {
	d, err := Load()
	if err != nil {
		return err
	}
	return d.CheckResponse(method, path, status, body)
}

// CheckResponse is the package's CheckResponse on d.
func (d *Document) CheckResponse(method, path string, status int, body []byte) error {
	ptr, err := d.responseSchema(method, path, status)
	if err != nil {
		return err
	}
	sch, err := d.compile(ptr)
	if err != nil {
		return err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %s %s %d: the body is not JSON: %v", ErrOffContract, method, path, status, err)
	}
	if err := sch.Validate(v); err != nil {
		return fmt.Errorf("%w: %s %s %d: %v", ErrOffContract, method, path, status, err)
	}
	return nil
}

// responseSchema finds the JSON pointer of the schema of the answer.
func (d *Document) responseSchema(method, path string, status int) (string, error) {
	tmpl, ok := d.route(path)
	if !ok {
		if status != 404 {
			return "", fmt.Errorf("%w: %s %s is no path of the document, answered %d", ErrOffContract, method, path, status)
		}
		return "/components/schemas/Refusal", nil
	}
	opPtr := "/paths/" + escape(tmpl) + "/" + strings.ToLower(method)
	if _, err := d.Lookup(opPtr); err != nil {
		return "", fmt.Errorf("%w: %s %s: no such operation", ErrOffContract, method, tmpl)
	}
	respPtr := opPtr + "/responses/" + strconv.Itoa(status)
	resp, err := d.Lookup(respPtr)
	if err != nil {
		return "", fmt.Errorf("%w: %s %s: status %d is not in the document", ErrOffContract, method, tmpl, status)
	}
	if m, ok := resp.(map[string]any); ok {
		if ref, ok := m["$ref"].(string); ok {
			respPtr = strings.TrimPrefix(ref, "#")
		}
	}
	ptr := respPtr + "/content/application~1json/schema"
	if _, err := d.Lookup(ptr); err != nil {
		return "", fmt.Errorf("%w: %s %s %d has no application/json schema", ErrOffContract, method, tmpl, status)
	}
	return ptr, nil
}

// route returns the document's path template that path matches.
func (d *Document) route(path string) (string, bool) {
	paths, _ := d.raw["paths"].(map[string]any)
	segs := strings.Split(path, "/")
	for tmpl := range paths {
		t := strings.Split(tmpl, "/")
		if len(t) != len(segs) {
			continue
		}
		match := true
		for i := range t {
			param := strings.HasPrefix(t[i], "{") && strings.HasSuffix(t[i], "}")
			if (param && segs[i] == "") || (!param && t[i] != segs[i]) {
				match = false
				break
			}
		}
		if match {
			return tmpl, true
		}
	}
	return "", false
}

// compile compiles the schema at ptr once.
func (d *Document) compile(ptr string) (*jsonschema.Schema, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.schemas[ptr]; ok {
		return s, nil
	}
	s, err := d.c.Compile(resourceURL + "#" + ptr)
	if err != nil {
		return nil, fmt.Errorf("openapi: schema %s: %w", ptr, err)
	}
	d.schemas[ptr] = s
	return s, nil
}

// Lookup returns the value at a JSON pointer ("/paths/~1v1~1publish").
func (d *Document) Lookup(pointer string) (any, error) {
	var v any = d.raw
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("openapi: %s: not found", pointer)
		}
		if v, ok = m[tok]; !ok {
			return nil, fmt.Errorf("openapi: %s: not found", pointer)
		}
	}
	return v, nil
}

// escape makes a path template one JSON pointer token.
func escape(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}
