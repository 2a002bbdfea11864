package metrics_test

import (
	"regexp"
	"slices"
	"testing"

	"github.com/wsnotify/wsnotify/shared/metrics"
	"github.com/wsnotify/wsnotify/shared/notify"
)

var (
	cloudWatchName = regexp.MustCompile(`^[A-Z][A-Za-z]{1,254}$`)
	promName       = regexp.MustCompile(`^wsnotify_[a-z_]+$`)
)

func TestEveryFigureHasTwoUsableNamesAUnitAndHelp(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range metrics.Figures() {
		if !cloudWatchName.MatchString(f.Name) || !promName.MatchString(f.Prom) || seen[f.Name] || seen[f.Prom] {
			t.Errorf("%+v: names must be unique, CloudWatch's CamelCase, Prometheus's wsnotify_snake_case", f)
		}
		seen[f.Name], seen[f.Prom] = true, true
		if !slices.Contains([]metrics.Unit{metrics.Count, metrics.Bytes, metrics.Milliseconds}, f.Unit) || f.Help == "" {
			t.Errorf("%s: unit %q, help %q", f.Name, f.Unit, f.Help)
		}
		// Prometheus's conventions: counters end in _total, a duration
		// is in seconds, a size in bytes.
		switch {
		case f.Unit == metrics.Milliseconds && !regexp.MustCompile(`_seconds$`).MatchString(f.Prom),
			f.Unit == metrics.Bytes && !regexp.MustCompile(`_bytes_total$`).MatchString(f.Prom),
			!f.Distribution && f.Name != metrics.LiveConnections.Name && !regexp.MustCompile(`_total$`).MatchString(f.Prom):
			t.Errorf("%s: Prometheus name %s breaks its naming conventions", f.Name, f.Prom)
		}
		if f.Dimension != "" && f.Dimension != metrics.DimReason && f.Dimension != metrics.DimType {
			t.Errorf("%s is split by %s: only reasons and event types, fixed lists, may split a figure", f.Name, f.Dimension)
		}
	}
}

func TestEveryErrorCodeHasItsReason(t *testing.T) {
	want := map[notify.Code]string{
		notify.CodeUnauthorized: "unauthorized", notify.CodeConflict: "conflict", notify.CodeRateLimited: "rate_limited",
		notify.CodeForbidden: "forbidden", notify.CodeInvalid: "invalid", notify.CodeInternal: "internal",
		"SOMETHING_NEW": "internal",
	}
	for code, reason := range want {
		if got := metrics.Reason(code); got != reason {
			t.Errorf("Reason(%s) = %s, want %s", code, got, reason)
		}
	}
	if got := metrics.Reasons(); len(got) != 6 || !slices.Contains(got, "rate_limited") {
		t.Errorf("Reasons() = %v", got)
	}
}

func TestEveryPublishPathHasItsName(t *testing.T) {
	want := map[notify.Path]string{notify.PathAPI: "api", notify.PathQueue: "queue", notify.PathS3: "s3",
		"": metrics.PathOther, "acct_42": metrics.PathOther}
	for p, name := range want {
		if got := metrics.PathName(p); got != name {
			t.Errorf("PathName(%q) = %s, want %s", p, got, name)
		}
	}
	if got := metrics.PathNames(); !slices.Equal(got, []string{"api", "queue", "s3"}) {
		t.Errorf("PathNames() = %v", got)
	}
	if !metrics.EventsPublished.ByPath {
		t.Error("EventsPublished is not split by path")
	}
}
