package chaos

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// The report's sections, in the order the tests added them.
var (
	reportMu       sync.Mutex
	reportSections []string
)

// addReport adds a titled Markdown table to the report -chaos.report
// writes once every test has run.
func addReport(title string, lines []string) {
	reportMu.Lock()
	defer reportMu.Unlock()
	reportSections = append(reportSections, fmt.Sprintf("### %s\n\n%s\n", title, strings.Join(lines, "\n")))
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if *report != "" && len(reportSections) > 0 {
		if err := os.WriteFile(*report, []byte(strings.Join(reportSections, "\n")), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "chaos: write the report:", err)
			code = 1
		}
	}
	os.Exit(code)
}
