package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wsnotify/wsnotify/shared/push/hub"
)

// flags is local mode's command line: every flag has an environment
// variable, which gives the flag its value before the command line is read,
// so the command line wins. Flags bind straight to the fields they set.
type flags struct {
	*flag.FlagSet
	envs []envBinding
}

type envBinding struct{ flag, env string }

func newFlags() *flags {
	return &flags{FlagSet: flag.NewFlagSet("local", flag.ContinueOnError)}
}

// env binds the flag name, defined on fs, to the environment variable env,
// and names the variable in the flag's help.
func (fs *flags) env(name, env string) {
	fs.Lookup(name).Usage += " (env " + env + ")"
	fs.envs = append(fs.envs, envBinding{name, env})
}

// The definers below each define a flag bound to p (or v), whose default is
// the value p holds, and bind it to the environment variable env.

func (fs *flags) value(v flag.Value, name, env, usage string) {
	fs.Var(v, name, usage)
	fs.env(name, env)
}

func (fs *flags) stringVar(p *string, name, env, usage string) {
	fs.StringVar(p, name, *p, usage)
	fs.env(name, env)
}

func (fs *flags) boolVar(p *bool, name, env, usage string) {
	fs.BoolVar(p, name, *p, usage)
	fs.env(name, env)
}

func (fs *flags) intVar(p *int, name, env, usage string) {
	fs.IntVar(p, name, *p, usage)
	fs.env(name, env)
}

func (fs *flags) float64Var(p *float64, name, env, usage string) {
	fs.Float64Var(p, name, *p, usage)
	fs.env(name, env)
}

func (fs *flags) durationVar(p *time.Duration, name, env, usage string) {
	fs.DurationVar(p, name, *p, usage)
	fs.env(name, env)
}

// parse applies the environment, then args. An environment value the flag
// refuses is an error naming the variable; a list flag's value is split at
// commas there, and replaced as a whole by the command line's first use.
func (fs *flags) parse(args []string, lookupEnv func(string) (string, bool)) error {
	var errs []error
	for _, b := range fs.envs {
		v, ok := lookupEnv(b.env)
		if !ok || strings.TrimSpace(v) == "" {
			continue
		}
		var err error
		if l, ok := fs.Lookup(b.flag).Value.(*listFlag); ok {
			err = l.setEnv(v)
		} else {
			err = fs.Lookup(b.flag).Value.Set(strings.TrimSpace(v))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b.env, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	fs.VisitAll(func(f *flag.Flag) {
		if l, ok := f.Value.(*listFlag); ok && l.err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", f.Name, l.err))
		}
	})
	return errors.Join(errs...)
}

// listFlag is a repeatable flag. Its environment variable holds a
// comma-separated list; the command line's first use replaces that list,
// as the command line wins for every flag. check, if set, vets each value.
//
// A secret list (API keys, token secrets) never shows a value: String gives
// a count (flag prints defaults with it), and Set keeps its error for parse
// instead of returning it, because the flag package would quote the value.
type listFlag struct {
	values  []string
	fromCLI bool
	secret  bool
	check   func(string) error
	split   func(string) []string // the environment's list; default: at commas
	err     error
}

func (f *listFlag) String() string {
	switch {
	case f == nil || len(f.values) == 0:
		return ""
	case f.secret:
		return fmt.Sprintf("%d value(s)", len(f.values))
	}
	return strings.Join(f.values, ",")
}

func (f *listFlag) Set(v string) error {
	if !f.fromCLI {
		f.values, f.fromCLI = nil, true
	}
	err := f.add(v)
	if err != nil && f.secret {
		if f.err == nil {
			f.err = err
		}
		return nil
	}
	return err
}

// setEnv sets the values from the environment variable's list.
func (f *listFlag) setEnv(list string) error {
	parts := strings.Split(list, ",")
	if f.split != nil {
		parts = f.split(list)
	}
	for _, p := range parts {
		if strings.TrimSpace(p) == "" {
			continue
		}
		if err := f.add(p); err != nil {
			return err
		}
	}
	return nil
}

func (f *listFlag) add(v string) error {
	if v = strings.TrimSpace(v); v == "" {
		return errors.New("must not be empty")
	}
	if f.check != nil {
		if err := f.check(v); err != nil {
			return err
		}
	}
	f.values = append(f.values, v)
	return nil
}

// pairs splits each value at its first "=", as KEY=OWNER and NAME=URL lists
// are given.
func (f *listFlag) pairs() map[string]string {
	if len(f.values) == 0 {
		return nil
	}
	m := make(map[string]string, len(f.values))
	for _, v := range f.values {
		k, val, _ := strings.Cut(v, "=")
		m[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	return m
}

// pair vets a NAME=VALUE list value; what names the pair's parts in errors.
func pair(what string, checkName func(name, value string) error) func(string) error {
	return func(v string) error {
		k, val, ok := strings.Cut(v, "=")
		if k, val = strings.TrimSpace(k), strings.TrimSpace(val); !ok || k == "" || val == "" {
			return fmt.Errorf("must be given as %s", what)
		}
		if checkName != nil {
			return checkName(k, val)
		}
		return nil
	}
}

// secretValue is a flag value that is never echoed, as --control-token.
type secretValue string

func (s *secretValue) String() string {
	if s == nil || *s == "" {
		return ""
	}
	return "(set)"
}

func (s *secretValue) Set(v string) error {
	*s = secretValue(v)
	return nil
}

// limit is a duration flag for a limit that can be turned off: "never"
// (hub.Never) or a positive duration. Zero is refused rather than read as
// either "off" or "the default": the configuration's zero means the
// default, and a flag that meant "off" by it would say the opposite.
type limit struct{ d *time.Duration }

func (l limit) String() string {
	switch {
	case l.d == nil:
		return ""
	case *l.d == hub.Never:
		return "never"
	}
	return l.d.String()
}

func (l limit) Set(v string) error {
	if v == "never" {
		*l.d = hub.Never
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return fmt.Errorf("%q: want a positive duration such as 90s or 2h, or never", v)
	}
	*l.d = d
	return nil
}

// byteSize is a flag value in bytes: a plain number, or one with a K or M
// suffix. Both KB and KiB mean 1024 bytes, as API Gateway's "128 KB" does.
type byteSize struct{ n *int }

func (b byteSize) String() string {
	if b.n == nil {
		return "0"
	}
	return strconv.Itoa(*b.n)
}

func (b byteSize) Set(s string) error {
	num, unit := s, 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"K", 1 << 10}, {"M", 1 << 20}, {"B", 1}} {
		if rest, ok := strings.CutSuffix(strings.ToUpper(s), strings.ToUpper(u.suffix)); ok {
			num, unit = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || n > (1<<31-1)/unit {
		return fmt.Errorf("%q is not a size in bytes (e.g. 4194304, 4MB, 512KiB)", s)
	}
	*b.n = n * unit
	return nil
}
