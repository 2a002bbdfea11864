package template_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wsnotify/wsnotify/infra/template"
	"github.com/wsnotify/wsnotify/shared/event"
	"github.com/wsnotify/wsnotify/shared/metrics"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// These checks hold the alarms, their topic and the dashboard to what the
// service needs watched: cfn-lint checks their references and property names,
// not which metric an alarm watches or how it decides.

const alarmType = "AWS::CloudWatch::Alarm"

// alarm renders a single-metric alarm as one line: what it watches, how it
// decides, and what it does with no data.
func alarm(p map[string]any) string {
	var dims []string
	for _, d := range asList(p["Dimensions"]) {
		dims = append(dims, fmt.Sprintf("%s=%s", describe(dig(d, "Name")), describe(dig(d, "Value"))))
	}
	evals := describe(p["EvaluationPeriods"])
	if p["DatapointsToAlarm"] != nil {
		evals = describe(p["DatapointsToAlarm"]) + " of " + evals
	}
	return fmt.Sprintf("%s %s{%s} %s/%vs %s %s in %s, missing %s", describe(p["Namespace"]), describe(p["MetricName"]),
		strings.Join(dims, ","), describe(p["Statistic"]), describe(p["Period"]), describe(p["ComparisonOperator"]),
		describe(p["Threshold"]), evals, describe(p["TreatMissingData"]))
}

// singleMetricAlarms is every alarm on one metric, as alarm renders it.
var singleMetricAlarms = map[string]string{
	// Any message in either dead-letter queue: an event someone never got.
	"JobEventsDeadLetterAlarm": "AWS/SQS ApproximateNumberOfMessagesVisible{QueueName=GetAtt(JobEventsDeadLetterQueue.QueueName)} Maximum/300s GreaterThanThreshold 0 in 1, missing notBreaching",
	"S3UploadDeadLetterAlarm":  "AWS/SQS ApproximateNumberOfMessagesVisible{QueueName=GetAtt(S3UploadDeadLetterQueue.QueueName)} Maximum/300s GreaterThanThreshold 0 in 1, missing notBreaching",
	// Any error or throttle of the two publishing functions.
	"JobEventsErrorsAlarm":    "AWS/Lambda Errors{FunctionName=Ref(JobEventsFunction)} Sum/300s GreaterThanThreshold 0 in 1, missing notBreaching",
	"JobEventsThrottlesAlarm": "AWS/Lambda Throttles{FunctionName=Ref(JobEventsFunction)} Sum/300s GreaterThanThreshold 0 in 1, missing notBreaching",
	"S3UploadErrorsAlarm":     "AWS/Lambda Errors{FunctionName=Ref(S3UploadFunction)} Sum/300s GreaterThanThreshold 0 in 1, missing notBreaching",
	"S3UploadThrottlesAlarm":  "AWS/Lambda Throttles{FunctionName=Ref(S3UploadFunction)} Sum/300s GreaterThanThreshold 0 in 1, missing notBreaching",
	// The publish API's function: its callers get 500 for either.
	"PublishErrorsAlarm":    "AWS/Lambda Errors{FunctionName=Ref(PublishFunction)} Sum/300s GreaterThanThreshold 0 in 1, missing notBreaching",
	"PublishThrottlesAlarm": "AWS/Lambda Throttles{FunctionName=Ref(PublishFunction)} Sum/300s GreaterThanThreshold 0 in 1, missing notBreaching",
	// API Gateway failing to call a route's function; connects near the
	// account's quota of new connections.
	"WebSocketExecutionErrorAlarm": "AWS/ApiGateway ExecutionError{ApiId=Ref(WebSocketApi),Stage=Ref(StageName)} Sum/300s GreaterThanThreshold 0 in 1, missing notBreaching",
	"WebSocketConnectRateAlarm":    "AWS/ApiGateway ConnectCount{ApiId=Ref(WebSocketApi),Stage=Ref(StageName)} Sum/60s GreaterThanThreshold Ref(ConnectsPerMinuteAlarm) in 2 of 3, missing notBreaching",
}

func TestEachAlarmWatchesItsMetricWithItsThreshold(t *testing.T) {
	tpl := repoTemplate(t)
	want := slices.Sorted(maps.Keys(singleMetricAlarms))
	want = append(want, "PushFailureRatioAlarm")
	slices.Sort(want)
	if got := tpl.OfType(alarmType); !slices.Equal(got, want) {
		t.Errorf("alarms %v, want %v", got, want)
	}
	for id, wantAlarm := range singleMetricAlarms {
		p := props(t, tpl, id, alarmType)
		if got := alarm(p); got != wantAlarm {
			t.Errorf("%s watches\n\t%s\nwant\n\t%s", id, got, wantAlarm)
		}
		if p["AlarmDescription"] == nil {
			t.Errorf("%s has no description: the message says nothing of what to do", id)
		}
	}
}

func TestEveryDeadLetterQueueHasAnAlarm(t *testing.T) {
	tpl := repoTemplate(t)
	// Dead-letter queues: a queue's redrive target, a function's DeadLetterQueue.
	var dlqs []string
	target := regexp.MustCompile(`^GetAtt\((\w+)\.Arn\)$`)
	for _, id := range tpl.OfType("AWS::SQS::Queue") {
		if m := target.FindStringSubmatch(describe(dig(tpl.Resources[id].Properties, "RedrivePolicy", "deadLetterTargetArn"))); m != nil {
			dlqs = append(dlqs, m[1])
		}
	}
	for _, id := range tpl.OfType(template.FunctionType) {
		if m := target.FindStringSubmatch(describe(dig(functionProps(t, tpl, id), "DeadLetterQueue", "TargetArn"))); m != nil {
			dlqs = append(dlqs, m[1])
		}
	}
	slices.Sort(dlqs)
	if want := []string{"JobEventsDeadLetterQueue", "S3UploadDeadLetterQueue"}; !slices.Equal(dlqs, want) {
		t.Fatalf("dead-letter queues %v, want %v", dlqs, want)
	}
	for _, q := range dlqs {
		watched := "AWS/SQS ApproximateNumberOfMessagesVisible{QueueName=GetAtt(" + q + ".QueueName)} Maximum/300s GreaterThanThreshold 0 in 1"
		if !slices.ContainsFunc(tpl.OfType(alarmType), func(id string) bool { return strings.HasPrefix(alarm(tpl.Resources[id].Properties), watched) }) {
			t.Errorf("no alarm fires on the first message in %s", q)
		}
	}
}

func TestThePushFailureRatioAlarmDividesFailedByAttemptedPushes(t *testing.T) {
	tpl := repoTemplate(t)
	p := props(t, tpl, "PushFailureRatioAlarm", alarmType)
	if got := fmt.Sprintf("%s %s in %s of %s, missing %s", describe(p["ComparisonOperator"]), describe(p["Threshold"]),
		describe(p["DatapointsToAlarm"]), describe(p["EvaluationPeriods"]), describe(p["TreatMissingData"])); got != "GreaterThanThreshold Ref(PushFailurePercent) in 2 of 3, missing notBreaching" {
		t.Errorf("decides %s", got)
	}
	stats := map[string]string{} // id -> "Figure of Function/Stat/Period"
	expressions := map[string]string{}
	var returned []string
	for _, q := range asList(p["Metrics"]) {
		id := describe(dig(q, "Id"))
		if dig(q, "ReturnData") == true {
			returned = append(returned, id)
		}
		if e := dig(q, "Expression"); e != nil {
			expressions[id] = describe(e)
			continue
		}
		m := dig(q, "MetricStat", "Metric")
		if ns := describe(dig(m, "Namespace")); ns != "Ref(MetricsNamespace)" {
			t.Errorf("%s: namespace %s, want the functions' Ref(MetricsNamespace)", id, ns)
		}
		dims := asList(dig(m, "Dimensions"))
		if len(dims) != 1 || describe(dig(dims[0], "Name")) != metrics.DimFunction {
			t.Errorf("%s: dimensions %s, want FunctionName alone, as the functions write it", id, describe(dims))
			continue
		}
		stats[id] = fmt.Sprintf("%s of %s/%s/%s", describe(dig(m, "MetricName")), describe(dig(dims[0], "Value")),
			describe(dig(q, "MetricStat", "Stat")), describe(dig(q, "MetricStat", "Period")))
	}
	wantStats := map[string]string{
		"failedJobs":       metrics.PushesFailed.Name + " of Ref(JobEventsFunction)/Sum/300",
		"failedUploads":    metrics.PushesFailed.Name + " of Ref(S3UploadFunction)/Sum/300",
		"deliveredJobs":    metrics.Deliveries.Name + " of Ref(JobEventsFunction)/Sum/300",
		"deliveredUploads": metrics.Deliveries.Name + " of Ref(S3UploadFunction)/Sum/300",
		"goneJobs":         metrics.PushesGone.Name + " of Ref(JobEventsFunction)/Sum/300",
		"goneUploads":      metrics.PushesGone.Name + " of Ref(S3UploadFunction)/Sum/300",
	}
	if !maps.Equal(stats, wantStats) {
		t.Errorf("metrics %v, want %v", stats, wantStats)
	}
	wantExpressions := map[string]string{
		"failed":        "FILL(failedJobs, 0) + FILL(failedUploads, 0)",
		"attempted":     "failed + FILL(deliveredJobs, 0) + FILL(deliveredUploads, 0) + FILL(goneJobs, 0) + FILL(goneUploads, 0)",
		"failedPercent": "IF(attempted >= 20, 100 * failed / attempted, 0)",
	}
	if !maps.Equal(expressions, wantExpressions) || !slices.Equal(returned, []string{"failedPercent"}) {
		t.Errorf("expressions %v returning %v, want %v returning failedPercent", expressions, returned, wantExpressions)
	}
}

func TestEveryAlarmTellsTheTopicAndTheTopicMailsTheGivenAddress(t *testing.T) {
	tpl := repoTemplate(t)
	for _, id := range tpl.OfType(alarmType) {
		p := tpl.Resources[id].Properties
		for _, k := range []string{"AlarmActions", "OKActions"} {
			if got := describe(p[k]); got != `[{"Ref":"AlarmTopic"}]` {
				t.Errorf("%s: %s = %s, want the alarm topic", id, k, got)
			}
		}
	}
	props(t, tpl, "AlarmTopic", "AWS::SNS::Topic")
	subs := tpl.OfType("AWS::SNS::Subscription")
	if len(subs) != 1 {
		t.Fatalf("subscriptions %v, want one", subs)
	}
	sub := tpl.Resources[subs[0]]
	if got := fmt.Sprintf("%s %s to %s", describe(sub.Properties["TopicArn"]), describe(sub.Properties["Protocol"]), describe(sub.Properties["Endpoint"])); got != "Ref(AlarmTopic) email to Ref(AlarmEmail)" {
		t.Errorf("subscription: %s", got)
	}
	// Optional: only with an address.
	if cond := describe(tpl.Conditions[sub.Condition]); sub.Condition == "" || cond != `{"Fn::Not":[{"Fn::Equals":[{"Ref":"AlarmEmail"},""]}]}` {
		t.Errorf("subscription condition %q = %s, want AlarmEmail not empty", sub.Condition, cond)
	}
	if def := tpl.Parameters["AlarmEmail"]["Default"]; def != "" {
		t.Errorf("AlarmEmail defaults to %v, want empty: the address is optional", def)
	}
}

// widget is what these checks read of a dashboard widget.
type widget struct {
	Type       string `json:"type"`
	X          int    `json:"x"`
	Y          int    `json:"y"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	Properties struct {
		Title   string   `json:"title"`
		Metrics [][]any  `json:"metrics"`
		Alarms  []string `json:"alarms"`
	} `json:"properties"`
}

// publisherOf is the function that publishes by each path, as the
// dashboard names it.
var publisherOf = map[string]string{"api": "<PublishFunction>", "queue": "<JobEventsFunction>", "s3": "<S3UploadFunction>"}

// pushFigures are the figures of what a publish did, which every publishing
// function moves.
var pushFigures = []string{metrics.Deliveries.Name, metrics.PushesGone.Name, metrics.PushesFailed.Name,
	metrics.PushesThrottled.Name, metrics.PushRetries.Name, metrics.FanoutDuration.Name, metrics.BytesPushed.Name}

func TestTheDashboardShowsEveryFigureAndAlarm(t *testing.T) {
	tpl := repoTemplate(t)
	body, ok := dig(props(t, tpl, "Dashboard", "AWS::CloudWatch::Dashboard"), "DashboardBody", "Fn::Sub").(string)
	if !ok {
		t.Fatal("DashboardBody is not one !Sub string")
	}
	// Every ${...} is inside a JSON string: replaced by its name, the body
	// must be JSON as it is.
	refs := regexp.MustCompile(`\$\{([^}]+)\}`)
	var doc struct {
		Widgets []widget `json:"widgets"`
	}
	if err := json.Unmarshal([]byte(refs.ReplaceAllString(body, "<$1>")), &doc); err != nil {
		t.Fatalf("the dashboard body is not JSON once substituted: %v", err)
	}
	shown := map[string]bool{} // "Namespace Metric Dim=Value ..."
	var alarms []string
	cells := map[[2]int]string{}
	for _, w := range doc.Widgets {
		for x := w.X; x < w.X+w.Width; x++ {
			for y := w.Y; y < w.Y+w.Height; y++ {
				if other, taken := cells[[2]int{x, y}]; taken || x >= 24 {
					t.Errorf("widget %q overlaps %q or leaves the 24-column grid", w.Properties.Title, other)
				}
				cells[[2]int{x, y}] = w.Properties.Title
			}
		}
		alarms = append(alarms, w.Properties.Alarms...)
		for _, m := range w.Properties.Metrics {
			var parts []string
			for _, v := range m {
				if s, ok := v.(string); ok {
					parts = append(parts, s)
				}
			}
			shown[strings.Join(parts, " ")] = true
		}
	}
	has := func(ns, metric string, dims ...string) bool {
		prefix := strings.Join(append([]string{ns, metric}, dims...), " ")
		for k := range shown {
			if k == prefix || strings.HasPrefix(k, prefix+" ") {
				return true
			}
		}
		return false
	}
	for _, f := range metrics.Figures() {
		switch {
		case f.Local: // no function can count it: see the net connections below
		case f.Dimension == metrics.DimReason:
			for _, r := range metrics.Reasons() {
				if !has("<MetricsNamespace>", f.Name, "FunctionName", "<ConnectFunction>", "Reason", r) {
					t.Errorf("the dashboard lacks %s for reason %s", f.Name, r)
				}
			}
		case f.Dimension == metrics.DimType && f.ByPath:
			// Each path's function, with its path, as it writes the
			// figure: by type (the types that path publishes) and in all.
			for _, path := range metrics.PathNames() {
				publisher := publisherOf[path]
				for _, typ := range metrics.EventTypes() {
					if (path == "queue" && typ == event.TypeFileUploaded) || (path == "s3" && typ != event.TypeFileUploaded) {
						continue // the queue takes job events, S3 makes file_uploaded
					}
					if !has("<MetricsNamespace>", f.Name, "FunctionName", publisher, "Path", path, "Type", string(typ)) {
						t.Errorf("the dashboard lacks %s of type %s by %s from %s", f.Name, typ, path, publisher)
					}
				}
				if !has("<MetricsNamespace>", f.Name, "FunctionName", publisher, "Path", path) {
					t.Errorf("the dashboard lacks %s by %s from %s", f.Name, path, publisher)
				}
			}
		case f.Dimension == metrics.DimType:
			t.Errorf("%s is split by type and not by path: this check knows no such figure", f.Name)
		case slices.Contains(pushFigures, f.Name):
			// What a publish did, from each function that publishes.
			for _, publisher := range publisherOf {
				if !has("<MetricsNamespace>", f.Name, "FunctionName", publisher) {
					t.Errorf("the dashboard lacks the figure %s of %s", f.Name, publisher)
				}
			}
		default:
			if !has("<MetricsNamespace>", f.Name, "FunctionName") {
				t.Errorf("the dashboard lacks the figure %s", f.Name)
			}
		}
	}
	if !strings.Contains(body, `RUNNING_SUM(FILL(accepted, 0) - FILL(disconnects, 0) - FILL(goneJobs, 0) - FILL(goneUploads, 0) - FILL(goneApi, 0))`) {
		t.Error("the dashboard lacks the net connections (accepted less disconnected and gone, summed)")
	}
	for _, want := range [][]string{
		{"AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "<JobEventsDeadLetterQueue.QueueName>"},
		{"AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "<S3UploadDeadLetterQueue.QueueName>"},
		{"AWS/Lambda", "Errors", "FunctionName", "<JobEventsFunction>"},
		{"AWS/Lambda", "Throttles", "FunctionName", "<S3UploadFunction>"},
		{"AWS/Lambda", "Errors", "FunctionName", "<PublishFunction>"},
		{"AWS/Lambda", "Throttles", "FunctionName", "<PublishFunction>"},
		{"AWS/ApiGateway", "Count", "ApiId", "<PublishApi>"},
		{"AWS/ApiGateway", "4xx", "ApiId", "<PublishApi>"},
		{"AWS/ApiGateway", "5xx", "ApiId", "<PublishApi>"},
		{"AWS/ApiGateway", "ConnectCount", "ApiId", "<WebSocketApi>", "Stage", "<StageName>"},
		{"AWS/ApiGateway", "ExecutionError", "ApiId", "<WebSocketApi>", "Stage", "<StageName>"},
	} {
		if !has(want[0], want[1], want[2:]...) {
			t.Errorf("the dashboard lacks %v", want)
		}
	}
	var wantAlarms []string
	for _, id := range tpl.OfType(alarmType) {
		wantAlarms = append(wantAlarms, "<"+id+".Arn>")
	}
	slices.Sort(alarms)
	if !slices.Equal(alarms, wantAlarms) {
		t.Errorf("the alarm widget shows %v, want every alarm %v", alarms, wantAlarms)
	}
}

// TestEveryAlarmHasItsRowAndRunbookInOperations holds docs/operations.md to
// the template: each alarm is in its Alarms table and has a runbook entry
// (a heading under "Runbooks" naming it), which says what to do when it
// fires; the docs name no alarm the template lacks.
func TestEveryAlarmHasItsRowAndRunbookInOperations(t *testing.T) {
	tpl := repoTemplate(t)
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	section := func(heading string) string {
		_, rest, ok := strings.Cut(doc, "\n## "+heading+"\n")
		if !ok {
			t.Fatalf("docs/operations.md has no section %q", heading)
		}
		body, _, _ := strings.Cut(rest, "\n## ")
		return body
	}
	table, runbooks := section("Alarms"), section("Runbooks: when an alarm fires")
	named := regexp.MustCompile("`(\\w+Alarm)`")
	inRows, inHeadings := map[string]bool{}, map[string]bool{}
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, "| `") {
			first, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " |")
			for _, m := range named.FindAllStringSubmatch(first, -1) {
				inRows[m[1]] = true
			}
		}
	}
	for _, line := range strings.Split(runbooks, "\n") {
		if strings.HasPrefix(line, "### ") {
			for _, m := range named.FindAllStringSubmatch(line, -1) {
				inHeadings[m[1]] = true
			}
		}
	}
	alarms := tpl.OfType(alarmType)
	for _, id := range alarms {
		if !inRows[id] {
			t.Errorf("%s has no row in operations.md's Alarms table", id)
		}
		if !inHeadings[id] {
			t.Errorf("%s has no runbook entry (### heading) in operations.md", id)
		}
	}
	for id := range maps.Keys(inRows) {
		if !slices.Contains(alarms, id) {
			t.Errorf("operations.md's Alarms table names %s, which template.yaml does not create", id)
		}
	}
	for id := range maps.Keys(inHeadings) {
		if !slices.Contains(alarms, id) {
			t.Errorf("operations.md has a runbook for %s, which template.yaml does not create", id)
		}
	}
}
