// Package iamcheck runs the Lambda binaries under IAM as AWS would enforce
// it: each function's role, exactly as the SAM transform writes it from
// template.yaml, becomes an IAM user of a moto server that enforces IAM,
// and each binary calls DynamoDB, SQS and Secrets Manager there with that
// user's keys. A recording proxy in front of moto notes every call (who,
// which action, on which resource, and moto's answer), so that a test can
// hold each role to what its function does, both ways: a call its role does
// not grant fails, and a grant no call used fails too.
//
// moto checks the action of every request but matches resources only for
// some services (SQS yes; DynamoDB and Secrets Manager see "*"), so the
// users' policies name "*" for those, and Check matches the resource of each
// recorded call against the role's own resources instead.
package iamcheck

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Statement is one Allow statement of a function's role, its intrinsic
// functions resolved.
type Statement struct {
	// Policy is the policy it belongs to: an inline policy's name, or an
	// AWS managed policy's ARN.
	Policy string
	Sid    string
	// Actions and Resources as the statement lists them (patterns with *
	// and ? in Resources).
	Actions   []string
	Resources []string
}

// Role is what a function's role allows, and the resources Lambda itself
// reaches on the function's behalf with it.
type Role struct {
	Statements []Statement
	// EventSources are the ARNs of the event source mappings invoking the
	// function: Lambda's poller reads those queues with the role.
	EventSources []string
	// DeadLetter is the ARN of the function's asynchronous dead-letter
	// target, which Lambda sends to with the role, or "".
	DeadLetter string
}

// Values resolves the template's references: a parameter or resource name
// (Ref, and ${Name} in Fn::Sub), Name.Attribute (Fn::GetAtt), and the
// pseudo parameters (AWS::Region, ...).
type Values map[string]string

// rolesScript prints the transformed template's roles (see roles.py).
func rolesScript(root string) string { return filepath.Join(root, "infra", "iamcheck", "roles.py") }

// LoadRoles runs the SAM transform on the template at root/template.yaml
// and returns each function's role, keyed by the function's logical id,
// with references resolved through values. A reference values lacks is an
// error naming it.
func LoadRoles(root string, values Values) (map[string]Role, error) {
	python, err := exec.LookPath("python3")
	if err != nil {
		return nil, fmt.Errorf("python3 is not on PATH: install Python 3 with aws-sam-translator and moto")
	}
	cmd := exec.Command(python, rolesScript(root), filepath.Join(root, "template.yaml"))
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		return nil, fmt.Errorf("the SAM transform of template.yaml (roles.py): %v\n%s", err, stderr)
	}
	var raw map[string]struct {
		Statements []struct {
			Policy    string         `json:"policy"`
			Statement map[string]any `json:"statement"`
		} `json:"statements"`
		EventSources []any `json:"eventSources"`
		DeadLetter   any   `json:"deadLetter"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, fmt.Errorf("roles.py's output: %w", err)
	}
	roles := make(map[string]Role, len(raw))
	for fn, r := range raw {
		var role Role
		for _, s := range r.Statements {
			if s.Statement["Effect"] != "Allow" {
				return nil, fmt.Errorf("%s: policy %s has a statement that is not Allow: %v", fn, s.Policy, s.Statement)
			}
			actions, err := values.resolve(s.Statement["Action"])
			if err != nil {
				return nil, fmt.Errorf("%s: policy %s: Action: %w", fn, s.Policy, err)
			}
			resources, err := values.resolve(s.Statement["Resource"])
			if err != nil {
				return nil, fmt.Errorf("%s: policy %s: Resource: %w", fn, s.Policy, err)
			}
			sid, _ := s.Statement["Sid"].(string)
			role.Statements = append(role.Statements, Statement{Policy: s.Policy, Sid: sid, Actions: actions, Resources: resources})
		}
		for _, src := range r.EventSources {
			arns, err := values.resolve(src)
			if err != nil {
				return nil, fmt.Errorf("%s: event source: %w", fn, err)
			}
			role.EventSources = append(role.EventSources, arns...)
		}
		if r.DeadLetter != nil {
			arns, err := values.resolve(r.DeadLetter)
			if err != nil || len(arns) != 1 {
				return nil, fmt.Errorf("%s: dead-letter target %v: %v", fn, r.DeadLetter, err)
			}
			role.DeadLetter = arns[0]
		}
		roles[fn] = role
	}
	return roles, nil
}

// subVar matches ${Name}, ${Name.Attribute} and ${AWS::Pseudo} in Fn::Sub.
var subVar = regexp.MustCompile(`\$\{([A-Za-z0-9:.]+)\}`)

// resolve turns an Action or Resource value (a string, a list, or an
// intrinsic function) into strings.
func (v Values) resolve(x any) ([]string, error) {
	switch x := x.(type) {
	case string:
		return []string{x}, nil
	case []any:
		var out []string
		for _, e := range x {
			s, err := v.resolve(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s...)
		}
		return out, nil
	case map[string]any:
		if len(x) != 1 {
			return nil, fmt.Errorf("not an intrinsic function: %v", x)
		}
		for fn, arg := range x {
			switch fn {
			case "Ref":
				name, _ := arg.(string)
				return v.lookup(name)
			case "Fn::GetAtt":
				parts, _ := arg.([]any)
				if len(parts) != 2 {
					return nil, fmt.Errorf("Fn::GetAtt %v", arg)
				}
				return v.lookup(fmt.Sprintf("%v.%v", parts[0], parts[1]))
			case "Fn::Sub":
				s, ok := arg.(string)
				if !ok {
					return nil, fmt.Errorf("Fn::Sub with variables is not supported here: %v", arg)
				}
				var missing error
				out := subVar.ReplaceAllStringFunc(s, func(m string) string {
					r, err := v.lookup(m[2 : len(m)-1])
					if err != nil {
						missing = err
						return m
					}
					return r[0]
				})
				return []string{out}, missing
			}
			return nil, fmt.Errorf("intrinsic function %s is not supported here", fn)
		}
	}
	return nil, fmt.Errorf("unexpected value %v", x)
}

func (v Values) lookup(name string) ([]string, error) {
	s, ok := v[name]
	if !ok {
		return nil, fmt.Errorf("no value for %s", name)
	}
	return []string{s}, nil
}

// Matches reports whether IAM's pattern (with * for any run of characters
// and ? for one) matches s. Actions are matched without regard to case, as
// IAM does; resources with it.
func Matches(pattern, s string, foldCase bool) bool {
	expr := regexp.QuoteMeta(pattern)
	expr = strings.ReplaceAll(expr, `\*`, `.*`)
	expr = strings.ReplaceAll(expr, `\?`, `.`)
	if foldCase {
		expr = "(?i)" + expr
	}
	return regexp.MustCompile("^" + expr + "$").MatchString(s)
}

// grants reports whether st allows action on resource.
func (st Statement) grants(action, resource string) bool {
	return slices.ContainsFunc(st.Actions, func(a string) bool { return Matches(a, action, true) }) &&
		slices.ContainsFunc(st.Resources, func(r string) bool { return Matches(r, resource, false) })
}

// service is an action's service prefix (dynamodb of dynamodb:GetItem).
func service(action string) string {
	s, _, _ := strings.Cut(action, ":")
	return s
}
