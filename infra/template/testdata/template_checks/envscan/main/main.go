// Command main is a fixture for the environment scan: each way a program can
// read a variable, and two the scan cannot name.
package main

import (
	"os"

	"example.com/envscan/config"
	"example.org/elsewhere"
)

const prefix = "APP_"

func main() {
	_ = os.Getenv("DIRECT")
	_, _ = os.LookupEnv(prefix + "JOINED")
	cfg, _ := config.FromEnv(os.LookupEnv)
	_ = cfg
	_ = required("WRAPPED")
	for _, k := range []string{"LISTED_A", "LISTED_B"} {
		_ = os.Getenv(k)
	}
	name := os.Args[0]
	_ = os.Getenv(name)            // unresolved: not a constant
	elsewhere.Configure(os.Getenv) // unresolved: outside the module
}

func required(name string) string { return os.Getenv(name) }
