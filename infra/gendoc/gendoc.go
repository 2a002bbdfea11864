// Package gendoc keeps the generated part of a document: the table a
// program of the repository writes between two markers (make bench into
// docs/performance.md, make cost into docs/cost.md), and the processor the
// figures were measured on.
package gendoc

import (
	"fmt"
	"os"
	"strings"
)

// Markers are the comments that enclose a document's generated part.
type Markers struct{ Begin, End string }

// Section returns the document at path and where its markers are (the
// index of each), or an error naming them when it has none.
func (m Markers) Section(path string) (doc string, begin, end int, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", 0, 0, err
	}
	doc = string(data)
	begin, end = strings.Index(doc, m.Begin), strings.Index(doc, m.End)
	if begin < 0 || end < begin {
		return "", 0, 0, fmt.Errorf("%s has no %s … %s section", path, m.Begin, m.End)
	}
	return doc, begin, end, nil
}

// Generated returns what is between the markers of the document at path,
// without the newline after the first.
func (m Markers) Generated(path string) (string, error) {
	doc, begin, end, err := m.Section(path)
	if err != nil {
		return "", err
	}
	return strings.TrimPrefix(doc[begin+len(m.Begin):end], "\n"), nil
}

// Rewrite replaces what is between the markers of the document at path
// with content.
func (m Markers) Rewrite(path, content string) error {
	doc, begin, end, err := m.Section(path)
	if err != nil {
		return err
	}
	doc = doc[:begin+len(m.Begin)] + "\n" + content + doc[end:]
	return os.WriteFile(path, []byte(doc), 0o644)
}

// CPU names this machine's processor, as /proc/cpuinfo does.
func CPU() string {
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
				return strings.Join(strings.Fields(value), " ")
			}
		}
	}
	return "an unknown processor"
}
