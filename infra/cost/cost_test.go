package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsnotify/wsnotify/infra/template"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

func repoFile(t *testing.T, parts ...string) string {
	t.Helper()
	return filepath.Join(append([]string{testenv.RepoRoot(t)}, parts...)...)
}

func repoInputs(t *testing.T) (Measurements, PriceTable, *template.Template) {
	t.Helper()
	pt, err := LoadPrices(repoFile(t, "infra", "cost", "prices.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := loadMeasurements(repoFile(t, "infra", "cost", "measured.json"))
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := template.Repo()
	if err != nil {
		t.Fatal(err)
	}
	return m, pt, tpl
}

// TestTheDocIsTheToolsOutput holds docs/cost.md's table to what the tool
// writes from the kept counts, the prices and the template: a price or a
// template change without `go run ./infra/cost -render` (or make cost)
// fails here.
func TestTheDocIsTheToolsOutput(t *testing.T) {
	m, pt, tpl := repoInputs(t)
	table, err := render(m, pt, tpl, DefaultAssumptions)
	if err != nil {
		t.Fatal(err)
	}
	got, err := markers.Generated(repoFile(t, "docs", "cost.md"))
	if err != nil {
		t.Fatal(err)
	}
	if got != table {
		t.Errorf("docs/cost.md's cost section is not the tool's output: run `go run ./infra/cost -render` (prices or template changed) or `make cost`.\n--- doc\n%s\n--- tool\n%s", got, table)
	}
}

// TestThePriceTableIsDated checks every price says its page, product and
// unit, and the table when and where it was read; a table without a price
// the model needs is refused.
func TestThePriceTableIsDated(t *testing.T) {
	path := repoFile(t, "infra", "cost", "prices.json")
	pt, err := LoadPrices(path)
	if err != nil {
		t.Fatal(err)
	}
	if pt.Region != "us-east-1" || !strings.Contains(pt.Terms, "arm64") || !strings.Contains(pt.Terms, "on-demand") {
		t.Errorf("prices for %q, %q; want us-east-1, on-demand, arm64", pt.Region, pt.Terms)
	}
	for name, p := range pt.Prices {
		if !strings.Contains(p.Page, "aws.amazon.com/") || p.Product == "" || p.Note == "" {
			t.Errorf("price %s: page %q, product %q, note %q; want the AWS pricing page, the product and how it was read", name, p.Page, p.Product, p.Note)
		}
	}
	var raw map[string]any
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	delete(raw["prices"].(map[string]any), "dynamodb_wru")
	broken := filepath.Join(t.TempDir(), "prices.json")
	data, _ = json.Marshal(raw)
	if err := os.WriteFile(broken, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPrices(broken); err == nil || !strings.Contains(err.Error(), "dynamodb_wru") {
		t.Errorf("a table without dynamodb_wru: err = %v, want one naming it", err)
	}
}

// TestBilledDuration checks the duration model: below 1,769 MB a function
// has that share of a vCPU, so CPU time stretches; the longer of it and the
// wall time is billed, rounded up to the millisecond.
func TestBilledDuration(t *testing.T) {
	for _, tc := range []struct {
		wall, cpu float64
		mem       int
		want      float64
	}{
		{wall: 40, cpu: 4, mem: 1769, want: 40},
		{wall: 40, cpu: 4, mem: 512, want: 40},          // 4 × 3.46 = 13.8 < 40
		{wall: 40, cpu: 4, mem: 128, want: 56},          // 4 × 13.8 = 55.3
		{wall: 1600, cpu: 800, mem: 512, want: 2765},    // 800 × 3.455 = 2764.1
		{wall: 20.2, cpu: 0.1, mem: 128, want: 21},      // rounded up
		{wall: 1600, cpu: 800, mem: 3538, want: 1600},   // more than a vCPU: the wall time
		{wall: 2 * 40, cpu: 2 * 4, mem: 128, want: 112}, // two invocations, each rounded
	} {
		invocations := 1
		if tc.want == 112 {
			invocations = 2
		}
		got := billedMs(Counts{Invocations: invocations, WallMs: tc.wall, CPUMs: tc.cpu}, tc.mem)
		if got != tc.want {
			t.Errorf("billedMs(wall %v, CPU %v, %d MB) = %v, want %v", tc.wall, tc.cpu, tc.mem, got, tc.want)
		}
	}
}

// TestPricing checks a publish's bill from its counts, by hand.
func TestPricing(t *testing.T) {
	_, pt, _ := repoInputs(t)
	c := Counts{Invocations: 1, WallMs: 100, CPUMs: 10, MessageUnits: 10,
		Dynamo: dynamoCounts{RRU: 2, WRU: 4}, EMFBytes: 1 << 20}
	a := DefaultAssumptions
	b := pt.cost(c, 1024, 1, a)
	want := bill{
		Lambda:     0.0000002 + 0.1*1*0.0000133334,
		DynamoDB:   2*0.000000125 + 4*0.000000625,
		APIGateway: 10 * 0.000001,
		SQS:        3 * 0.0000005, // the producer's send, the receive, the delete
		Logs:       0.50 / 1024,
	}
	for _, f := range []struct {
		name      string
		got, want float64
	}{{"Lambda", b.Lambda, want.Lambda}, {"DynamoDB", b.DynamoDB, want.DynamoDB}, {"API Gateway", b.APIGateway, want.APIGateway}, {"SQS", b.SQS, want.SQS}, {"logs", b.Logs, want.Logs}} {
		if math.Abs(f.got-f.want) > 1e-12 {
			t.Errorf("%s: $%g, want $%g", f.name, f.got, f.want)
		}
	}
	if got := pt.appSyncPublish(10); math.Abs(got-11e-6) > 1e-15 {
		t.Errorf("AppSync Events, one event to 10: $%g, want 11 operations", got)
	}
	if got, want := messageUnits(1), 1; got != want {
		t.Errorf("messageUnits(1) = %d", got)
	}
	if got, want := messageUnits(32*1024+1), 2; got != want {
		t.Errorf("messageUnits(32 KB + 1) = %d, want %d", got, want)
	}
}

// TestTheIdleStackIsCountedFromTheTemplate checks the fixed costs follow
// template.yaml: another alarm adds its metric, the dashboard's price goes
// with the dashboard.
func TestTheIdleStackIsCountedFromTheTemplate(t *testing.T) {
	_, pt, tpl := repoInputs(t)
	total := func(tpl *template.Template) float64 {
		sum := 0.0
		for _, it := range pt.fixedCost(tpl, DefaultAssumptions) {
			sum += it.USD
		}
		return sum
	}
	before := total(tpl)
	tpl.Resources["ExtraAlarm"] = template.Resource{Type: "AWS::CloudWatch::Alarm", Properties: map[string]any{"MetricName": "X"}}
	if got := total(tpl) - before; math.Abs(got-pt.usd("cloudwatch_alarm_metric_month")) > 1e-9 {
		t.Errorf("an alarm more adds $%g a month, want one alarm metric's price", got)
	}
	for _, id := range tpl.OfType("AWS::CloudWatch::Dashboard") {
		delete(tpl.Resources, id)
	}
	if got := before + pt.usd("cloudwatch_alarm_metric_month") - total(tpl); math.Abs(got-pt.usd("cloudwatch_dashboard_month")) > 1e-9 {
		t.Errorf("without the dashboard the stack saves $%g, want the dashboard's price", got)
	}
}
