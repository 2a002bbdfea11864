package template

import (
	"fmt"
	"time"
)

// DefaultFunctionTimeout is Lambda's own default Timeout, 3 seconds, for a
// function for which neither it nor Globals sets one.
const DefaultFunctionTimeout = 3 * time.Second

// FunctionTimeouts returns the Timeout of each AWS::Serverless::Function by
// logical id: its own, else Globals.Function's, else Lambda's default.
// Local mode runs each invocation with it as the deadline, as Lambda does.
func (t *Template) FunctionTimeouts() (map[string]time.Duration, error) {
	global := DefaultFunctionTimeout
	if v, ok := t.Globals["Function"]["Timeout"]; ok {
		d, err := seconds(v)
		if err != nil {
			return nil, fmt.Errorf("Globals.Function.Timeout: %w", err)
		}
		global = d
	}
	timeouts := map[string]time.Duration{}
	for id, r := range t.Resources {
		if r.Type != "AWS::Serverless::Function" {
			continue
		}
		timeouts[id] = global
		if v, ok := r.Properties["Timeout"]; ok {
			d, err := seconds(v)
			if err != nil {
				return nil, fmt.Errorf("%s.Timeout: %w", id, err)
			}
			timeouts[id] = d
		}
	}
	return timeouts, nil
}

// seconds reads a Timeout: a whole number of seconds, 1 to 900 (Lambda's range).
func seconds(v any) (time.Duration, error) {
	n, ok := v.(int)
	if !ok || n < 1 || n > 900 {
		return 0, fmt.Errorf("must be a whole number of seconds from 1 to 900, got %v", v)
	}
	return time.Duration(n) * time.Second, nil
}
