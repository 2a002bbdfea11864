// Command cost measures what the service costs on its real code paths and
// prices it (make cost). It runs TestMeasure of this package at full size:
// the built Lambda binaries under the Runtime Interface Emulator, on
// dynalite behind a proxy that counts every DynamoDB request and its
// capacity units, posting to a stand-in Management API that counts the
// messages. It keeps the counts in infra/cost/measured.json, multiplies
// them by the dated prices of infra/cost/prices.json, and writes the table
// into docs/cost.md between the cost markers.
//
//	go run ./infra/cost             measure (under 2 minutes), price, write docs/cost.md
//	go run ./infra/cost -render     price the kept counts again (after a price or template change)
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/wsnotify/wsnotify/infra/template"
)

func main() {
	doc := flag.String("doc", filepath.Join("docs", "cost.md"), "the file whose cost section is rewritten")
	prices := flag.String("prices", filepath.Join("infra", "cost", "prices.json"), "the dated price table")
	measured := flag.String("measured", filepath.Join("infra", "cost", "measured.json"), "where the counts are kept")
	renderOnly := flag.Bool("render", false, "do not measure: price the kept counts")
	flag.Parse()
	if err := run(*doc, *prices, *measured, *renderOnly); err != nil {
		fmt.Fprintln(os.Stderr, "cost:", err)
		os.Exit(1)
	}
}

func run(doc, prices, measured string, renderOnly bool) error {
	pt, err := LoadPrices(prices)
	if err != nil {
		return err
	}
	if _, _, _, err := markers.Section(doc); err != nil { // checked before the measuring
		return err
	}
	if !renderOnly {
		abs, err := filepath.Abs(measured)
		if err != nil {
			return err
		}
		cmd := exec.Command("go", "test", "-count=1", "-run", "^TestMeasure$", "-timeout", "20m", "-v", "./infra/cost/",
			"-args", "-cost.full", "-cost.out", abs)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("measure: %w", err)
		}
	}
	m, err := loadMeasurements(measured)
	if err != nil {
		return err
	}
	tpl, err := template.Repo()
	if err != nil {
		return err
	}
	table, err := render(m, pt, tpl, DefaultAssumptions)
	if err != nil {
		return err
	}
	fmt.Print(table)
	return markers.Rewrite(doc, table)
}

// readJSON decodes the JSON file at path; an error names the file.
func readJSON[T any](path string) (T, error) {
	var v T
	data, err := os.ReadFile(path)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

func loadMeasurements(path string) (Measurements, error) {
	m, err := readJSON[Measurements](path)
	if err != nil {
		return m, err
	}
	if len(m.Fanout) == 0 {
		return m, errors.New(path + ": no fan-out figures")
	}
	return m, nil
}
