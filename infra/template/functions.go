package template

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// DefaultFunctionTimeout is Lambda's own default Timeout, 3 seconds, for a
// function for which neither it nor Globals sets one.
const DefaultFunctionTimeout = 3 * time.Second

// Function is one AWS::Serverless::Function of the template, as the
// repository's programs need it: local mode serves the functions by these
// names, runs each with its Timeout, and lets only the WebSocket endpoint
// run a route's function; the tests build each from its Dir.
type Function struct {
	// LogicalID names the function, as the Invoke API takes it.
	LogicalID string
	// Dir is the folder of its main under functions/: the logical id
	// without "Function", in lower case (JobEventsFunction: jobevents). The
	// template checks hold every function and every folder to it.
	Dir string
	// Timeout is its own Timeout, else Globals.Function's, else Lambda's
	// default. Lambda ends an invocation at it, and so does local mode.
	Timeout time.Duration
	// Route is the WebSocket route whose integration invokes it ($connect,
	// $disconnect, $default), or "" for a function triggered otherwise.
	Route string
}

// Functions returns the template's functions, in logical-id order.
func (t *Template) Functions() ([]Function, error) {
	routes, err := t.routeFunctions()
	if err != nil {
		return nil, err
	}
	var out []Function
	for _, id := range t.OfType(FunctionType) {
		props, err := t.FunctionProperties(id)
		if err != nil {
			return nil, err
		}
		timeout := DefaultFunctionTimeout
		if v, ok := props["Timeout"]; ok {
			if timeout, err = seconds(v); err != nil {
				return nil, fmt.Errorf("%s.Timeout: %w", id, err)
			}
		}
		out = append(out, Function{
			LogicalID: id,
			Dir:       strings.ToLower(strings.TrimSuffix(id, "Function")),
			Timeout:   timeout,
			Route:     routes[id],
		})
	}
	return out, nil
}

// subRef matches "${Name}" and "${Name.Attribute}" in an Fn::Sub string.
var subRef = regexp.MustCompile(`\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9]+)?\}`)

// routeFunctions maps each function that a WebSocket route integrates with
// (an HTTP API's routes are left out)
// to the route's key, following Route.Target ("integrations/${Integration}")
// to Integration.IntegrationUri ("…/functions/${Function.Arn}/invocations").
func (t *Template) routeFunctions() (map[string]string, error) {
	out := map[string]string{}
	for _, id := range t.OfType("AWS::ApiGatewayV2::Route") {
		props := t.Resources[id].Properties
		key, _ := props["RouteKey"].(string)
		if t.httpAPI(props["ApiId"]) {
			continue // an HTTP API's route: its function is no route function
		}
		integration := subTarget(props["Target"], "integrations/")
		if integration == "" {
			continue // a route without a Lambda integration
		}
		r, ok := t.Resources[integration]
		if !ok {
			return nil, fmt.Errorf("route %s: no integration %s", id, integration)
		}
		fn := subTarget(r.Properties["IntegrationUri"], "/functions/")
		if fn == "" {
			return nil, fmt.Errorf("integration %s: its IntegrationUri names no function", integration)
		}
		out[fn] = key
	}
	return out, nil
}

// httpAPI reports whether ref (a route's ApiId) names an HTTP API of the
// template.
func (t *Template) httpAPI(ref any) bool {
	m, _ := ref.(map[string]any)
	id, _ := m["Ref"].(string)
	r, ok := t.Resources[id]
	return ok && r.Type == "AWS::ApiGatewayV2::Api" && r.Properties["ProtocolType"] == "HTTP"
}

// subTarget returns the resource an Fn::Sub string v refers to right after
// prefix, or "".
func subTarget(v any, prefix string) string {
	m, _ := v.(map[string]any)
	s, _ := m["Fn::Sub"].(string)
	_, after, ok := strings.Cut(s, prefix)
	if !ok {
		return ""
	}
	match := subRef.FindStringSubmatch(after)
	if match == nil || !strings.HasPrefix(after, match[0]) {
		return ""
	}
	return match[1]
}

// seconds reads a Timeout: a whole number of seconds, 1 to 900 (Lambda's range).
func seconds(v any) (time.Duration, error) {
	n, ok := v.(int)
	if !ok || n < 1 || n > 900 {
		return 0, fmt.Errorf("must be a whole number of seconds from 1 to 900, got %v", v)
	}
	return time.Duration(n) * time.Second, nil
}
