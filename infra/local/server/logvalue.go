package server

import (
	"strconv"

	"github.com/wsnotify/wsnotify/shared/text"
)

// maxLogValue bounds every value a log line takes from a request (path, user
// agent, client id, origin, host, function name, connection id) or from a
// function endpoint's answer: a client chooses them, and a 1 MB path logged
// as is would let anyone fill the disk.
const maxLogValue = 256

// clip returns s as a log attribute: whole if it is short, else its first
// maxLogValue bytes (cut at a character boundary) marked as cut, with the
// length it had.
func clip(s string) string {
	if len(s) <= maxLogValue {
		return s
	}
	return text.Prefix(s, maxLogValue) + "…[cut, " + strconv.Itoa(len(s)) + " bytes]"
}
