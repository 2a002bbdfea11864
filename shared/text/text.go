// Package text bounds strings a client chooses (names, origins, keys,
// reasons) before they are logged, echoed or sent on, without cutting a
// character in two: the result stays valid UTF-8 when the input was.
package text

import "unicode/utf8"

// Prefix returns s if it is at most max bytes long, and otherwise its
// longest prefix of at most max bytes that ends at a character boundary.
func Prefix(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// Clip is Prefix marked with "…" when it cut something.
func Clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return Prefix(s, max) + "…"
}
