// Package asyncapi reads docs/asyncapi.yaml, the AsyncAPI 3.0 description of
// the WebSocket API, and checks messages against the JSON Schemas of its
// payloads. Tests run every message their clients receive through it (see
// Conn and Check), so the published contract and the server cannot part
// without a test failing.
//
// It reads the subset of AsyncAPI the document uses: operations that point at
// messages, payloads that are JSON Schemas (draft-07, AsyncAPI's default
// schema format), and local $refs. Whether the document is valid AsyncAPI is
// for @asyncapi/parser to say; this package's tests run it.
package asyncapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	wsnotify "github.com/wsnotify/wsnotify"
)

// ErrOffContract is wrapped by every error that reports a message breaking
// the document's schemas.
var ErrOffContract = errors.New("message breaks docs/asyncapi.yaml")

// Document is a parsed AsyncAPI document with its payload schemas compiled.
type Document struct {
	raw        map[string]any
	received   []Message            // messages of send operations and of replies: what a client receives
	operations map[string][]Message // each operation's own messages (not its reply's)
}

// Message is one message of the document.
type Message struct {
	// Name is the message's key under components/messages, e.g. "jobProgress".
	Name string
	// Type is the const of the payload's "type" property ("" if it has none):
	// the field that tells a client which message it holds.
	Type string
	// Payload is the payload schema as written, with its $ref resolved once.
	Payload map[string]any

	schema *jsonschema.Schema
}

// Validate checks a decoded JSON value (as jsonschema.UnmarshalJSON returns
// it) against the message's payload schema.
func (m Message) Validate(v any) error { return m.schema.Validate(v) }

// resourceURL names the document for the schema compiler; $refs inside it
// are local ("#/components/schemas/…") and resolve against it.
const resourceURL = "file:///docs/asyncapi.yaml"

var (
	loadOnce sync.Once
	loaded   *Document
	loadErr  error
)

// Load returns the repository's docs/asyncapi.yaml, parsed once per process.
func Load() (*Document, error) {
	loadOnce.Do(func() { loaded, loadErr = Parse(wsnotify.AsyncAPI) })
	return loaded, loadErr
}

// Parse parses an AsyncAPI document and compiles the payload schema of every
// message its operations name.
func Parse(data []byte) (*Document, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("asyncapi: %w", err)
	}
	// The schema compiler takes JSON values: YAML's integers and maps are
	// brought into that form through one JSON round trip.
	js, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("asyncapi: document is not JSON-compatible: %w", err)
	}
	value, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return nil, fmt.Errorf("asyncapi: %w", err)
	}
	d := &Document{raw: doc, operations: map[string][]Message{}}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	if err := c.AddResource(resourceURL, value); err != nil {
		return nil, fmt.Errorf("asyncapi: %w", err)
	}

	ops, _ := doc["operations"].(map[string]any)
	names := make([]string, 0, len(ops))
	for name := range ops {
		names = append(names, name)
	}
	sort.Strings(names)
	seen := map[string]bool{}
	for _, name := range names {
		op, _ := ops[name].(map[string]any)
		action, _ := op["action"].(string)
		refs, err := messageRefs(op["messages"])
		if err != nil {
			return nil, fmt.Errorf("asyncapi: operation %s: %w", name, err)
		}
		var replies []string
		if reply, ok := op["reply"].(map[string]any); ok {
			if replies, err = messageRefs(reply["messages"]); err != nil {
				return nil, fmt.Errorf("asyncapi: operation %s reply: %w", name, err)
			}
		}
		if action != "send" && action != "receive" {
			return nil, fmt.Errorf("asyncapi: operation %s: action %q is neither send nor receive", name, action)
		}
		// The document describes the server: it sends to clients what its
		// send operations and its replies carry.
		for i, ref := range slices.Concat(refs, replies) {
			m, err := d.message(c, ref)
			if err != nil {
				return nil, fmt.Errorf("asyncapi: operation %s: %w", name, err)
			}
			own := i < len(refs)
			if own {
				d.operations[name] = append(d.operations[name], m)
			}
			if (!own || action == "send") && !seen[m.Name] {
				seen[m.Name] = true
				d.received = append(d.received, m)
			}
		}
	}
	if len(d.received) == 0 {
		return nil, errors.New("asyncapi: no operation sends a message to clients")
	}
	return d, nil
}

// messageRefs returns the $ref of each entry of an operation's messages list.
func messageRefs(v any) ([]string, error) {
	list, _ := v.([]any)
	refs := make([]string, 0, len(list))
	for _, item := range list {
		ref, _ := item.(map[string]any)["$ref"].(string)
		if ref == "" {
			return nil, errors.New("a message is not a $ref")
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

// message resolves a message reference (through the channel's messages, if
// it points there) and compiles its payload schema.
func (d *Document) message(c *jsonschema.Compiler, ref string) (Message, error) {
	ptr, obj, err := d.follow(ref)
	if err != nil {
		return Message{}, err
	}
	name := ptr[strings.LastIndex(ptr, "/")+1:]
	payload, _ := obj["payload"].(map[string]any)
	if payload == nil {
		return Message{}, fmt.Errorf("message %s has no payload", name)
	}
	payloadPtr := ptr + "/payload"
	if r, ok := payload["$ref"].(string); ok {
		if payloadPtr, payload, err = d.follow(r); err != nil {
			return Message{}, fmt.Errorf("message %s: %w", name, err)
		}
	}
	sch, err := c.Compile(resourceURL + "#" + escapePointer(payloadPtr))
	if err != nil {
		return Message{}, fmt.Errorf("message %s: %w", name, err)
	}
	return Message{Name: name, Type: d.typeConst(payload), Payload: payload, schema: sch}, nil
}

// follow resolves ref, and the refs it lands on, to an object of the
// document. It returns the JSON pointer where the object is written.
func (d *Document) follow(ref string) (string, map[string]any, error) {
	for range 8 { // a chain longer than this is a cycle
		ptr, ok := strings.CutPrefix(ref, "#")
		if !ok {
			return "", nil, fmt.Errorf("$ref %q is not local to the document", ref)
		}
		v, err := d.Lookup(ptr)
		if err != nil {
			return "", nil, err
		}
		obj, isObj := v.(map[string]any)
		if !isObj {
			return "", nil, fmt.Errorf("$ref %q is not an object", ref)
		}
		next, isRef := obj["$ref"].(string)
		if !isRef {
			return ptr, obj, nil
		}
		ref = next
	}
	return "", nil, fmt.Errorf("$ref %q: too many levels", ref)
}

// Lookup returns the value at a JSON pointer ("/components/schemas/ID").
func (d *Document) Lookup(pointer string) (any, error) {
	var v any = d.raw
	if pointer == "" {
		return v, nil
	}
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch node := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = node[tok]; !ok {
				return nil, fmt.Errorf("pointer %q: no %q", pointer, tok)
			}
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(node) {
				return nil, fmt.Errorf("pointer %q: no item %q", pointer, tok)
			}
			v = node[i]
		default:
			return nil, fmt.Errorf("pointer %q: %q is not inside an object or a list", pointer, tok)
		}
	}
	return v, nil
}

// Resolve returns schema with a $ref at its top followed, or schema itself.
func (d *Document) Resolve(schema map[string]any) (map[string]any, error) {
	ref, ok := schema["$ref"].(string)
	if !ok {
		return schema, nil
	}
	_, obj, err := d.follow(ref)
	return obj, err
}

// typeConst finds the const of a payload's "type" property, looking through
// allOf, which is how a message narrows another's payload.
func (d *Document) typeConst(schema map[string]any) string {
	schema, err := d.Resolve(schema)
	if err != nil {
		return ""
	}
	if props, ok := schema["properties"].(map[string]any); ok {
		if t, ok := props["type"].(map[string]any); ok {
			if c, ok := t["const"].(string); ok {
				return c
			}
		}
	}
	all, _ := schema["allOf"].([]any)
	for _, sub := range all {
		if s, ok := sub.(map[string]any); ok {
			if c := d.typeConst(s); c != "" {
				return c
			}
		}
	}
	return ""
}

// escapePointer escapes a JSON pointer for a URL fragment.
func escapePointer(ptr string) string {
	return (&url.URL{Fragment: ptr}).EscapedFragment()
}

// Operation returns the messages an operation names (not its reply's), or
// nil if the document has no such operation.
func (d *Document) Operation(name string) []Message {
	return append([]Message(nil), d.operations[name]...)
}

// CheckReceived checks one message a client received: it must be a JSON
// object that matches a message the server sends. Its "type" field picks the
// candidates; a message without one is held to those without a type. The
// error wraps ErrOffContract and says which rule broke.
func (d *Document) CheckReceived(data []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%w: %s: not JSON: %v", ErrOffContract, quote(data), err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%w: %s: not a JSON object", ErrOffContract, quote(data))
	}
	typ, _ := obj["type"].(string)
	var errs []string
	for _, m := range d.received {
		if m.Type != typ {
			continue
		}
		err := m.Validate(v)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Sprintf("as %s: %v", m.Name, err))
	}
	if len(errs) == 0 {
		return fmt.Errorf("%w: %s: no message has type %q", ErrOffContract, quote(data), typ)
	}
	return fmt.Errorf("%w: %s:\n%s", ErrOffContract, quote(data), strings.Join(errs, "\n"))
}

// quote shows a message in an error, shortened: one can be 128 KB.
func quote(data []byte) string {
	const max = 300
	if len(data) > max {
		return fmt.Sprintf("%q… (%d bytes)", data[:max], len(data))
	}
	return fmt.Sprintf("%q", data)
}
