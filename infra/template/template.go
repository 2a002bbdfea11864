// Package template reads the AWS SAM template (template.yaml) so that Go code
// can use the stack's one definition: tests and local mode create the
// DynamoDB table from it, and template checks inspect its resources.
//
// CloudFormation's short intrinsic tags (!Ref, !GetAtt, !Sub, !If, …) are
// rewritten to their long form while parsing, so every value reads the same
// whichever form the template uses: !Ref X becomes {"Ref": "X"}, !GetAtt A.B
// becomes {"Fn::GetAtt": ["A", "B"]}, !Sub s becomes {"Fn::Sub": "s"}, and
// !Condition C becomes {"Condition": "C"}. Nothing is resolved: a check sees
// which parameter or resource a value refers to.
package template

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	wsnotify "github.com/wsnotify/wsnotify"
)

// Template is a parsed CloudFormation / SAM template. Intrinsic functions
// appear in their long form (see the package doc).
type Template struct {
	FormatVersion string                    `yaml:"AWSTemplateFormatVersion"`
	Transform     any                       `yaml:"Transform"`
	Description   string                    `yaml:"Description"`
	Parameters    map[string]map[string]any `yaml:"Parameters"`
	Mappings      map[string]any            `yaml:"Mappings"`
	Conditions    map[string]any            `yaml:"Conditions"`
	Globals       map[string]map[string]any `yaml:"Globals"`
	Resources     map[string]Resource       `yaml:"Resources"`
	Outputs       map[string]map[string]any `yaml:"Outputs"`
}

// Resource is one entry of the template's Resources section.
type Resource struct {
	Type                string
	Properties          map[string]any
	DependsOn           []string
	Condition           string
	DeletionPolicy      string
	UpdateReplacePolicy string
	Metadata            map[string]any

	props *yaml.Node // Properties as parsed, for DecodeProperties
}

// UnmarshalYAML implements yaml.Unmarshaler: it keeps the Properties node so
// that DecodeProperties can decode it into a typed struct.
func (r *Resource) UnmarshalYAML(n *yaml.Node) error {
	var raw struct {
		Type                string         `yaml:"Type"`
		Properties          yaml.Node      `yaml:"Properties"`
		DependsOn           yaml.Node      `yaml:"DependsOn"`
		Condition           string         `yaml:"Condition"`
		DeletionPolicy      string         `yaml:"DeletionPolicy"`
		UpdateReplacePolicy string         `yaml:"UpdateReplacePolicy"`
		Metadata            map[string]any `yaml:"Metadata"`
	}
	if err := n.Decode(&raw); err != nil {
		return err
	}
	*r = Resource{
		Type:                raw.Type,
		Condition:           raw.Condition,
		DeletionPolicy:      raw.DeletionPolicy,
		UpdateReplacePolicy: raw.UpdateReplacePolicy,
		Metadata:            raw.Metadata,
	}
	// DependsOn is a string or a list of strings.
	switch raw.DependsOn.Kind {
	case 0:
	case yaml.ScalarNode:
		r.DependsOn = []string{raw.DependsOn.Value}
	default:
		if err := raw.DependsOn.Decode(&r.DependsOn); err != nil {
			return fmt.Errorf("DependsOn: %w", err)
		}
	}
	if raw.Properties.Kind != 0 {
		if err := raw.Properties.Decode(&r.Properties); err != nil {
			return fmt.Errorf("Properties: %w", err)
		}
		r.props = &raw.Properties
	}
	return nil
}

// DecodeProperties decodes the resource's Properties into v, a pointer to a
// struct whose fields carry `yaml:"PropertyName"` tags (yaml.v3 would
// otherwise match lower-cased field names). Intrinsics decode as maps.
func (r Resource) DecodeProperties(v any) error {
	if r.props == nil {
		return nil
	}
	return r.props.Decode(v)
}

// Load parses a template.
func Load(data []byte) (*Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	if doc.Kind == 0 {
		return nil, errors.New("parse template: empty document")
	}
	if err := longForm(&doc); err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	var t Template
	if err := doc.Decode(&t); err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	if len(t.Resources) == 0 {
		return nil, errors.New("parse template: no Resources")
	}
	return &t, nil
}

// LoadFile reads and parses the template at path.
func LoadFile(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	t, err := Load(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Repo parses the repository's template.yaml, embedded in the module's root
// package at build time.
func Repo() (*Template, error) {
	t, err := Load(wsnotify.Template)
	if err != nil {
		return nil, fmt.Errorf("template.yaml: %w", err)
	}
	return t, nil
}

// Resource returns the resource with the given logical id and type.
func (t *Template) Resource(logicalID, typ string) (Resource, error) {
	r, ok := t.Resources[logicalID]
	if !ok {
		return Resource{}, fmt.Errorf("template has no resource %s", logicalID)
	}
	if r.Type != typ {
		return Resource{}, fmt.Errorf("resource %s is a %s, not a %s", logicalID, r.Type, typ)
	}
	return r, nil
}

// FunctionType is the resource type of a SAM function.
const FunctionType = "AWS::Serverless::Function"

// OfType returns the logical ids of the resources of type typ, sorted.
func (t *Template) OfType(typ string) []string {
	var ids []string
	for id, r := range t.Resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// FunctionProperties returns the properties of the SAM function logicalID
// with Globals.Function merged in, as SAM deploys them: a map merges key by
// key, the function's keys winning; a list is the global list followed by
// the function's; any other value, an intrinsic function included, replaces
// the global one. The result shares no map or list with the template.
func (t *Template) FunctionProperties(logicalID string) (map[string]any, error) {
	r, err := t.Resource(logicalID, FunctionType)
	if err != nil {
		return nil, err
	}
	merged, _ := mergeGlobal(t.Globals["Function"], r.Properties).(map[string]any)
	if merged == nil {
		merged = map[string]any{}
	}
	return merged, nil
}

// mergeGlobal merges a function's value local over the global value of the
// same property.
func mergeGlobal(global, local any) any {
	switch l := local.(type) {
	case nil:
		return deepCopy(global)
	case map[string]any:
		g, ok := global.(map[string]any)
		if !ok || isIntrinsic(l) || isIntrinsic(g) {
			return deepCopy(l)
		}
		out := make(map[string]any, len(g)+len(l))
		for k, v := range g {
			out[k] = deepCopy(v)
		}
		for k, v := range l {
			out[k] = mergeGlobal(g[k], v)
		}
		return out
	case []any:
		g, _ := global.([]any)
		return deepCopy(append(slices.Clone(g), l...))
	default:
		return l
	}
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	default:
		return v
	}
}

// isIntrinsic reports whether m is one intrinsic function call, such as
// {"Ref": X} or {"Fn::Sub": S}.
func isIntrinsic(m map[string]any) bool {
	if len(m) != 1 {
		return false
	}
	for k := range m {
		return k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::")
	}
	return false
}

// longForm rewrites, in place, every node tagged with a CloudFormation short
// intrinsic (!Ref X) into the equivalent long-form mapping ({Ref: X}).
func longForm(n *yaml.Node) error {
	for _, c := range n.Content {
		if err := longForm(c); err != nil {
			return err
		}
	}
	if n.Kind == yaml.AliasNode || !strings.HasPrefix(n.Tag, "!") || strings.HasPrefix(n.Tag, "!!") {
		return nil
	}
	name := strings.TrimPrefix(n.Tag, "!")
	key := "Fn::" + name
	if name == "Ref" || name == "Condition" {
		key = name
	}
	arg := *n
	switch arg.Kind {
	case yaml.ScalarNode:
		arg.Tag = "!!str"
	case yaml.SequenceNode:
		arg.Tag = "!!seq"
	case yaml.MappingNode:
		arg.Tag = "!!map"
	}
	if name == "GetAtt" && arg.Kind == yaml.ScalarNode {
		// !GetAtt Resource.Attribute is the short form of [Resource, Attribute];
		// the attribute itself may contain dots (Endpoint.Address).
		res, att, ok := strings.Cut(arg.Value, ".")
		if !ok {
			return fmt.Errorf("line %d: !GetAtt %q is not Resource.Attribute", n.Line, arg.Value)
		}
		arg = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: n.Line, Column: n.Column, Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Tag: "!!str", Value: res},
			{Kind: yaml.ScalarNode, Tag: "!!str", Value: att},
		}}
	}
	*n = yaml.Node{
		Kind:   yaml.MappingNode,
		Tag:    "!!map",
		Line:   n.Line,
		Column: n.Column,
		Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
			&arg,
		},
	}
	return nil
}
