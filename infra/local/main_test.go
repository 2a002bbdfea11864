package main

import (
	"bytes"
	"io"
	"maps"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		addr string
		keys map[string]string
		err  string
	}{
		{name: "defaults", addr: "127.0.0.1:8000"},
		{name: "the environment sets the address and keys",
			env:  map[string]string{envAddr: "127.0.0.2:9000", envAPIKeys: "k1=o1, k2=o2"},
			addr: "127.0.0.2:9000", keys: map[string]string{"k1": "o1", "k2": "o2"}},
		{name: "flags win over the environment",
			args: []string{"--addr", "localhost:7000", "--api-key", "k3=o3", "--api-key", "k4=o4"},
			env:  map[string]string{envAddr: "127.0.0.1:9000", envAPIKeys: "k1=o1"},
			addr: "localhost:7000", keys: map[string]string{"k3": "o3", "k4": "o4"}},
		{name: "IPv6 loopback needs no control token", args: []string{"--addr", "[::1]:8000"}, addr: "[::1]:8000"},
		{name: "every interface with a control token",
			env:  map[string]string{envAddr: "0.0.0.0:9000", envControlToken: "secret-control-token-1"},
			addr: "0.0.0.0:9000"},
		{name: "every interface without a control token is refused",
			args: []string{"--addr", "0.0.0.0:8000"}, err: "--control-token"},
		{name: "an empty host (every interface) without a control token is refused",
			args: []string{"--addr", ":8000"}, err: "not a loopback address"},
		{name: "a host name without a control token is refused",
			args: []string{"--addr", "devbox.example:8000"}, err: "--control-token"},
		{name: "a LAN address without a control token is refused",
			args: []string{"--addr", "192.0.2.10:8000"}, err: "--control-token"},
		{name: "a control token too short to be a secret is refused without echoing it",
			args: []string{"--control-token", "secret-key"}, err: "at least 16"},
		{name: "a key without an owner is refused without echoing it",
			args: []string{"--api-key", "secret-key-without-owner"}, err: "KEY=OWNER"},
		{name: "a malformed environment list is refused",
			env: map[string]string{envAPIKeys: "k1=o1,oops"}, err: envAPIKeys},
		{name: "stray arguments are refused", args: []string{"serve"}, err: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(tt.args, envOf(tt.env))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "secret-key") {
					t.Fatalf("err = %v, want one mentioning %q and no key", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.addr != tt.addr || !maps.Equal(cfg.keys(), tt.keys) {
				t.Fatalf("config = %+v", cfg)
			}
		})
	}
}

func TestTheBannerOfAGeneratedKeyIsReadyToUse(t *testing.T) {
	var out bytes.Buffer
	printBanner(&out, "127.0.0.1:8000", "wsn_generated", map[string]string{"wsn_generated": devOwner}, nil)
	text := out.String()
	url := regexp.MustCompile(`ws://127\.0\.0\.1:8000/api/v1/ws/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\?token=wsn_generated`)
	if !url.MatchString(text) || !strings.Contains(text, "Owner:    "+devOwner) ||
		!strings.Contains(text, "curl -s http://127.0.0.1:8000/2015-03-31/functions/JobEventsFunction/invocations -d '") ||
		!strings.Contains(text, `\"ownerId\":\"`+devOwner+`\"`) || !strings.Contains(text, "Origins:  any origin") {
		t.Fatalf("banner:\n%s", text)
	}
}

func TestTheBannerOfGivenKeysNeverShowsThem(t *testing.T) {
	var out bytes.Buffer
	printBanner(io.Writer(&out), "127.0.0.1:8000", "", map[string]string{"k-secret": "o2", "k-other-secret": "o1", "k-third": "o1"},
		[]string{"https://app.example.com", "*.example.com"})
	text := out.String()
	if strings.Contains(text, "k-secret") || strings.Contains(text, "k-other") || strings.Contains(text, "k-third") {
		t.Fatalf("a given key was printed:\n%s", text)
	}
	for _, want := range []string{"API keys for: o1, o2\n", "?token=<API key>\n", "Fire an event at o1's connections:", `\"ownerId\":\"o1\"`,
		"Origins:  https://app.example.com, *.example.com, and clients that send no Origin"} {
		if !strings.Contains(text, want) {
			t.Errorf("banner lacks %q:\n%s", want, text)
		}
	}
}

func TestShellQuoteMakesOneWord(t *testing.T) {
	for _, s := range []string{"", "plain", "it's", `a "b" $HOME \n 'x'`} {
		out, err := exec.Command("sh", "-c", `printf '%s' `+shellQuote(s)).Output()
		if err != nil || string(out) != s {
			t.Errorf("sh read %s as %q (%v), want %q", shellQuote(s), out, err, s)
		}
	}
}
