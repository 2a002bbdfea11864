package template_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// This file reads template.yaml for the template checks the way SAM and
// CloudFormation see it: intrinsic functions in their long form
// ({"Ref": X}, {"Fn::GetAtt": [R, A]}, {"Fn::Sub": S}), nothing resolved,
// and each function's properties merged with Globals as SAM merges them.

// samTemplate is a parsed SAM template.
type samTemplate struct {
	Transform  any                    `json:"Transform"`
	Parameters map[string]any         `json:"Parameters"`
	Globals    map[string]any         `json:"Globals"`
	Resources  map[string]samResource `json:"Resources"`
	Outputs    map[string]any         `json:"Outputs"`
}

// samResource is one entry of Resources.
type samResource struct {
	Type       string         `json:"Type"`
	Properties map[string]any `json:"Properties"`
	Metadata   map[string]any `json:"Metadata"`
	DependsOn  any            `json:"DependsOn"`
}

// parseSAM parses a template. A repeated mapping key is an error: YAML
// parsers differ on which of the two wins.
func parseSAM(data []byte) (*samTemplate, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	v, err := samValue(&doc)
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	// The generic value is re-decoded into the typed view; JSON keeps
	// intrinsics as maps and numbers as float64.
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	var t samTemplate
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	if len(t.Resources) == 0 {
		return nil, fmt.Errorf("parse template: no Resources")
	}
	return &t, nil
}

// samValue converts a YAML node to plain Go values, rewriting CloudFormation
// short-form tags (!Ref X, !GetAtt A.B, !Sub s, ...) to their long form.
func samValue(n *yaml.Node) (any, error) {
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		name := strings.TrimPrefix(n.Tag, "!")
		key := "Fn::" + name
		if name == "Ref" || name == "Condition" {
			key = name
		}
		var arg any
		switch {
		case n.Kind == yaml.ScalarNode && name == "GetAtt":
			res, att, ok := strings.Cut(n.Value, ".")
			if !ok {
				return nil, fmt.Errorf("line %d: !GetAtt %q is not Resource.Attribute", n.Line, n.Value)
			}
			arg = []any{res, att}
		case n.Kind == yaml.ScalarNode:
			arg = n.Value // an intrinsic's scalar argument is always a string
		default:
			plain := *n
			plain.Tag = ""
			var err error
			if arg, err = samValue(&plain); err != nil {
				return nil, err
			}
		}
		return map[string]any{key: arg}, nil
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, fmt.Errorf("empty document")
		}
		return samValue(n.Content[0])
	case yaml.AliasNode:
		return samValue(n.Alias)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := samValue(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if _, dup := out[k]; dup {
				return nil, fmt.Errorf("line %d: key %q repeated", n.Content[i].Line, k)
			}
			v, err := samValue(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	default:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return v, nil
	}
}

// ofType returns the logical ids of the resources of type typ, sorted.
func (t *samTemplate) ofType(typ string) []string {
	var ids []string
	for id, r := range t.Resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// functionProps returns the properties of the AWS::Serverless::Function id
// merged with Globals.Function: maps merge key by key, lists are appended to
// the global list, and any other value replaces the global one (SAM's rules).
func (t *samTemplate) functionProps(id string) map[string]any {
	props := t.Resources[id].Properties
	if props == nil {
		props = map[string]any{}
	}
	merged, _ := samMerge(t.Globals["Function"], props).(map[string]any)
	if merged == nil {
		merged = map[string]any{}
	}
	return merged
}

func samMerge(global, local any) any {
	switch l := local.(type) {
	case map[string]any:
		g, ok := global.(map[string]any)
		if !ok || isIntrinsic(l) || isIntrinsic(g) {
			return l
		}
		out := make(map[string]any, len(g)+len(l))
		maps.Copy(out, g)
		for k, v := range l {
			out[k] = samMerge(g[k], v)
		}
		return out
	case []any:
		if g, ok := global.([]any); ok {
			return append(slices.Clone(g), l...)
		}
		return l
	case nil:
		return global
	default:
		return l
	}
}

// functionEnv returns the environment variables SAM sets for function id.
func (t *samTemplate) functionEnv(id string) map[string]any {
	env, _ := dig(t.functionProps(id), "Environment", "Variables").(map[string]any)
	return env
}

// dig walks maps by key; nil when a step is missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// isIntrinsic reports whether m is one intrinsic function call.
func isIntrinsic(m map[string]any) bool {
	if len(m) != 1 {
		return false
	}
	for k := range m {
		return k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::")
	}
	return false
}

// refOf returns X for {"Ref": X}.
func refOf(v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return "", false
	}
	s, ok := m["Ref"].(string)
	return s, ok
}

// getAttOf returns R and A for {"Fn::GetAtt": [R, A]}.
func getAttOf(v any) (res, att string, ok bool) {
	m, isMap := v.(map[string]any)
	if !isMap || len(m) != 1 {
		return "", "", false
	}
	args, _ := m["Fn::GetAtt"].([]any)
	if len(args) != 2 {
		return "", "", false
	}
	res, ok1 := args[0].(string)
	att, ok2 := args[1].(string)
	return res, att, ok1 && ok2
}

// subOf returns the template string of {"Fn::Sub": S} or {"Fn::Sub": [S, vars]}.
func subOf(v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return "", false
	}
	switch a := m["Fn::Sub"].(type) {
	case string:
		return a, true
	case []any:
		if len(a) > 0 {
			s, ok := a[0].(string)
			return s, ok
		}
	}
	return "", false
}

// describe renders a value for messages and comparisons: Ref(X),
// GetAtt(R.A), Sub(S), or the literal.
func describe(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if r, ok := refOf(v); ok {
		return "Ref(" + r + ")"
	}
	if r, a, ok := getAttOf(v); ok {
		return "GetAtt(" + r + "." + a + ")"
	}
	if s, ok := subOf(v); ok {
		return "Sub(" + s + ")"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// subPlaceholder matches ${Name} and ${Name.Attr} in a Fn::Sub string, not
// the ${!Literal} escape.
var subPlaceholder = regexp.MustCompile(`\$\{([^!}][^}]*)\}`)

// references returns the logical ids (resources or parameters) v refers to
// through Ref, GetAtt and Sub, without pseudo parameters (AWS::...).
func references(v any) []string {
	seen := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			if r, ok := refOf(x); ok {
				seen[r] = true
				return
			}
			if r, _, ok := getAttOf(x); ok {
				seen[r] = true
				return
			}
			if sub, ok := x["Fn::Sub"]; ok && len(x) == 1 {
				s, _ := subOf(x)
				var vars map[string]any
				if a, ok := sub.([]any); ok && len(a) == 2 {
					vars, _ = a[1].(map[string]any)
					walk(vars)
				}
				for _, m := range subPlaceholder.FindAllStringSubmatch(s, -1) {
					name, _, _ := strings.Cut(m[1], ".")
					if _, local := vars[name]; !local {
						seen[name] = true
					}
				}
				return
			}
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	var out []string
	for id := range seen {
		if !strings.HasPrefix(id, "AWS::") {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// stringList returns v as a list of strings: a string is a list of one.
func stringList(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// dependencyCycle returns a cycle among the template's resources, or nil.
// An edge R -> D means R must be created after D: R refers to D (Ref,
// GetAtt, Sub) or names it in DependsOn. SAM's event sources are read as the
// resources SAM generates from them: an S3 event makes the bucket depend on
// the function (its NotificationConfiguration), other events add mapping
// resources that depend on both, so neither adds an edge from the function.
func (t *samTemplate) dependencyCycle() []string {
	edges := map[string][]string{}
	add := func(from string, to ...string) {
		for _, d := range to {
			if _, ok := t.Resources[d]; ok {
				edges[from] = append(edges[from], d)
			}
		}
	}
	for id, r := range t.Resources {
		props := r.Properties
		if r.Type == "AWS::Serverless::Function" {
			props = maps.Clone(t.functionProps(id))
			for _, ev := range mapValues(props["Events"]) {
				if dig(ev, "Type") == "S3" {
					if bucket, ok := refOf(dig(ev, "Properties", "Bucket")); ok {
						add(bucket, id)
					}
				}
			}
			delete(props, "Events")
		}
		add(id, references(props)...)
		add(id, stringList(r.DependsOn)...)
	}
	const (
		unvisited = iota
		inPath
		done
	)
	state := map[string]int{}
	var path []string
	var visit func(id string) []string
	visit = func(id string) []string {
		state[id] = inPath
		path = append(path, id)
		deps := slices.Clone(edges[id])
		sort.Strings(deps)
		for _, d := range deps {
			switch state[d] {
			case inPath:
				i := slices.Index(path, d)
				return append(slices.Clone(path[i:]), d)
			case unvisited:
				if c := visit(d); c != nil {
					return c
				}
			}
		}
		path = path[:len(path)-1]
		state[id] = done
		return nil
	}
	ids := slices.Sorted(maps.Keys(t.Resources))
	for _, id := range ids {
		if state[id] == unvisited {
			if c := visit(id); c != nil {
				return c
			}
		}
	}
	return nil
}

// mapValues returns the values of a map in key order.
func mapValues(v any) []any {
	m, _ := v.(map[string]any)
	var out []any
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k])
	}
	return out
}
