// Package config is a fixture: a loader that reads the environment through
// the lookup function its caller passes.
package config

// EnvTable names the table variable.
const EnvTable = "TABLE"

// Config is read from the environment.
type Config struct {
	Table  string
	Region string `env:"REGION,required"`
	lookup func(string) (string, bool)
}

// FromEnv reads a Config.
func FromEnv(lookup func(string) (string, bool)) (Config, error) {
	get := func(name string) string {
		v, _ := lookup(name)
		return v
	}
	c := Config{Table: get(EnvTable), lookup: lookup}
	_ = c.optional("FIELD")
	return c, nil
}

func (c Config) optional(name string) string {
	v, _ := c.lookup(name)
	return v
}

// Unused reads nothing: nobody passes it an accessor.
func Unused(lookup func(string) string, name string) string { return lookup(name) }
