package text_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/wsnotify/wsnotify/shared/text"
)

func TestPrefixAndClipCutAtACharacterBoundary(t *testing.T) {
	cases := []struct {
		s            string
		max          int
		prefix, clip string
	}{
		{"short", 10, "short", "short"},
		{"exactly10!", 10, "exactly10!", "exactly10!"},
		{"abcdefghijkl", 5, "abcde", "abcde…"},
		{"ab€cd", 3, "ab", "ab…"},   // € is 3 bytes: a cut inside it backs off
		{"ab€cd", 5, "ab€", "ab€…"}, // a cut right after it keeps it
		{"€€", 1, "", "…"},
	}
	for _, tc := range cases {
		if got := text.Prefix(tc.s, tc.max); got != tc.prefix {
			t.Errorf("Prefix(%q, %d) = %q, want %q", tc.s, tc.max, got, tc.prefix)
		}
		if got := text.Clip(tc.s, tc.max); got != tc.clip {
			t.Errorf("Clip(%q, %d) = %q, want %q", tc.s, tc.max, got, tc.clip)
		}
	}
	long := strings.Repeat("é", 200)
	for max := range 40 {
		if p := text.Prefix(long, max); !utf8.ValidString(p) || len(p) > max {
			t.Fatalf("Prefix(é×200, %d) = %q: not valid UTF-8 within %d bytes", max, p, max)
		}
	}
}
