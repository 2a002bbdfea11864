package main

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/wsnotify/wsnotify/infra/template"
)

// Price is one dated price of prices.json.
type Price struct {
	USD     float64 `json:"usd"`
	Unit    string  `json:"unit"`
	Page    string  `json:"page"`
	Product string  `json:"product"`
	Found   bool    `json:"found"`
	Note    string  `json:"note"`
}

// PriceTable is prices.json: where and when the prices were read.
type PriceTable struct {
	Region  string           `json:"region"`
	Terms   string           `json:"terms"`
	Read    string           `json:"read"`
	HowRead string           `json:"howRead"`
	Prices  map[string]Price `json:"prices"`
}

// priceNames are the prices the model uses; LoadPrices refuses a table
// without one of them.
var priceNames = []string{
	"lambda_request", "lambda_gb_second_arm64", "apigw_ws_message", "apigw_ws_connection_minute",
	"apigw_http_request", "dynamodb_wru", "dynamodb_rru", "dynamodb_storage_gb_month", "dynamodb_pitr_gb_month",
	"sqs_fifo_request", "secrets_secret_month", "secrets_api_call", "cloudwatch_metric_month",
	"cloudwatch_alarm_metric_month", "cloudwatch_dashboard_month", "cloudwatch_logs_gb",
	"appsync_events_operation", "appsync_events_connection_minute",
}

// LoadPrices reads the price table at path.
func LoadPrices(path string) (PriceTable, error) {
	pt, err := readJSON[PriceTable](path)
	if err != nil {
		return pt, err
	}
	if pt.Read == "" || pt.Region == "" {
		return pt, fmt.Errorf("%s: the table says neither when nor where its prices were read", path)
	}
	for _, name := range priceNames {
		p, ok := pt.Prices[name]
		if !ok || p.USD <= 0 || p.Page == "" || p.Unit == "" {
			return pt, fmt.Errorf("%s: price %s missing, or without its figure, unit or page", path, name)
		}
	}
	return pt, nil
}

func (pt PriceTable) usd(name string) float64 {
	p, ok := pt.Prices[name]
	if !ok {
		panic("no price " + name)
	}
	return p.USD
}

// Assumptions are the traffic figures the prices are multiplied by that
// no code path decides; docs/cost.md says how to change them.
type Assumptions struct {
	// PublishedPerMonth is the events an owner scenario publishes a month.
	PublishedPerMonth float64
	// HoursPerDay a connection is open, DaysPerMonth.
	HoursPerDay, DaysPerMonth float64
	// PingMinutes is the client module's ping interval.
	PingMinutes float64
	// ProducerBatch is the job events a producer sends per SQS request.
	ProducerBatch float64
	// IdleReceivesPerMonth is the ReceiveMessage requests the queue's event
	// source mapping makes on an idle queue (its long polls): an estimate,
	// the emulator has no event source mapping to count.
	IdleReceivesPerMonth float64
	// TableGB is an idle stack's table size (API keys, a little history).
	TableGB float64
	// PlatformLogs: Lambda writes its START, END and REPORT lines (the
	// template's SystemLogLevel at INFO or DEBUG; WARN leaves them out).
	PlatformLogs bool
}

// DefaultAssumptions are the table's.
var DefaultAssumptions = Assumptions{
	PublishedPerMonth: 100_000, HoursPerDay: 8, DaysPerMonth: 30, PingMinutes: 5, ProducerBatch: 1,
	IdleReceivesPerMonth: 5 * 3 * 60 * 24 * 30, TableGB: 0.01,
}

// oneVCPU is the memory at which Lambda gives a function one full vCPU.
const oneVCPU = 1769

// billedMs is the billed duration of c's invocations at memMB: each
// invocation's wall time, or its CPU time stretched by the share of a vCPU
// memMB buys, whichever is longer, rounded up to the millisecond.
func billedMs(c Counts, memMB int) float64 {
	if c.Invocations == 0 {
		return 0
	}
	inv := float64(c.Invocations)
	wall, cpu := c.WallMs/inv, c.CPUMs/inv
	d := wall
	if memMB < oneVCPU {
		d = max(wall, cpu*oneVCPU/float64(memMB))
	}
	return math.Ceil(d) * inv
}

// lambdaUSD is what Lambda charges for c's invocations at memMB.
func (pt PriceTable) lambdaUSD(c Counts, memMB int) float64 {
	gbs := billedMs(c, memMB) / 1000 * float64(memMB) / 1024
	return float64(c.Invocations)*pt.usd("lambda_request") + gbs*pt.usd("lambda_gb_second_arm64")
}

// bill is a cost split by service.
type bill struct {
	Lambda, DynamoDB, APIGateway, SQS, Logs, AppSync float64
}

func (b bill) total() float64 {
	return b.Lambda + b.DynamoDB + b.APIGateway + b.SQS + b.Logs + b.AppSync
}

func (b bill) scale(f float64) bill {
	return bill{b.Lambda * f, b.DynamoDB * f, b.APIGateway * f, b.SQS * f, b.Logs * f, b.AppSync * f}
}

func (b bill) plus(o bill) bill {
	return bill{b.Lambda + o.Lambda, b.DynamoDB + o.DynamoDB, b.APIGateway + o.APIGateway, b.SQS + o.SQS, b.Logs + o.Logs, b.AppSync + o.AppSync}
}

// cost prices c's invocations at memMB; messages is the job events they
// took from the queue (0 for a function API Gateway calls).
func (pt PriceTable) cost(c Counts, memMB int, messages float64, a Assumptions) bill {
	b := bill{
		Lambda:     pt.lambdaUSD(c, memMB),
		DynamoDB:   c.Dynamo.RRU*pt.usd("dynamodb_rru") + c.Dynamo.WRU*pt.usd("dynamodb_wru"),
		APIGateway: float64(c.MessageUnits) * pt.usd("apigw_ws_message"),
		Logs:       float64(c.EMFBytes+c.LogBytes) / (1 << 30) * pt.usd("cloudwatch_logs_gb"),
	}
	if a.PlatformLogs {
		b.Logs += float64(c.PlatformBytes) / (1 << 30) * pt.usd("cloudwatch_logs_gb")
	}
	if messages > 0 {
		// The producer's sends, and per invocation the event source
		// mapping's ReceiveMessage and DeleteMessageBatch.
		b.SQS = (messages/a.ProducerBatch + 2*float64(c.Invocations)) * pt.usd("sqs_fifo_request")
	}
	return b
}

// publishCost prices a run of PublishFunction at pubMem: its invocation,
// and FanoutFunction's at fanMem when it handed the fan-out off (whose
// DynamoDB requests and posts the run counts already).
func (pt PriceTable) publishCost(f FanoutRun, pubMem, fanMem int, a Assumptions) bill {
	if f.Handoff.Invocations == 0 {
		return pt.cost(f.Counts, pubMem, 0, a)
	}
	return pt.cost(callerOf(f, fanMem), pubMem, 0, a).plus(pt.cost(f.Handoff, fanMem, 0, a))
}

// callerOf is the run's PublishFunction invocation with its wait on
// FanoutFunction stretched to FanoutFunction's billed duration at fanMem:
// the emulator gives the fan-out the whole CPU, Lambda its share, and the
// caller waits for it either way.
func callerOf(f FanoutRun, fanMem int) Counts {
	c := f.Counts
	c.WallMs = max(c.WallMs, c.WallMs-f.Handoff.WallMs+billedMs(f.Handoff, fanMem))
	return c
}

// httpAPI is what the publish API's HTTP API charges for n requests (our
// requests are under its 512 KB metering unit).
func (pt PriceTable) httpAPI(n float64) bill {
	return bill{APIGateway: n * pt.usd("apigw_http_request")}
}

// appSyncPublish is what AppSync Events charges for one event published to
// n subscribers of a channel: the publish received and n deliveries (our
// events are well under its 5 KB unit).
func (pt PriceTable) appSyncPublish(n int) float64 {
	return float64(1+n) * pt.usd("appsync_events_operation")
}

// chatSample is the bare API Gateway shape of AWS's WebSocket chat sample
// for one message to n connections: the message received from a client, a
// function invocation (our measured fan-out's duration at memMB), a Scan
// of the connections table (eventually consistent, some 100 bytes a
// connection) and n posts; no queue, history, count or metrics.
func (pt PriceTable) chatSample(fan Counts, n, memMB int) float64 {
	scanRRU := math.Max(0.5, math.Ceil(float64(n)*100/4096)*0.5)
	lambda := pt.lambdaUSD(Counts{Invocations: 1, WallMs: fan.WallMs, CPUMs: fan.CPUMs}, memMB)
	return pt.usd("apigw_ws_message")*float64(1+n) + lambda + scanRRU*pt.usd("dynamodb_rru")
}

// connectionMonth is one connection's month: minutes, pings, a connect and
// a disconnect a day. It returns our cost and AppSync Events'.
func (pt PriceTable) connectionMonth(m Measurements, a Assumptions) (ours, appsync bill) {
	minutes := a.HoursPerDay * 60 * a.DaysPerMonth
	pings := minutes / a.PingMinutes
	days := a.DaysPerMonth
	mem := m.FunctionMemoryMB
	ours = bill{APIGateway: minutes * pt.usd("apigw_ws_connection_minute")}
	// A ping is a message received and its answer, the route response, sent.
	ours = ours.plus(pt.cost(m.Ping, mem, 0, a).plus(bill{APIGateway: 2 * pt.usd("apigw_ws_message")}).scale(pings))
	ours = ours.plus(pt.cost(m.Connect, mem, 0, a).plus(pt.cost(m.Disconnect, mem, 0, a)).scale(days))
	// AppSync Events: the connection minutes, a connect and a subscribe a
	// day; its keep-alives are the service's own and not operations.
	appsync = bill{AppSync: minutes*pt.usd("appsync_events_connection_minute") + days*2*pt.usd("appsync_events_operation")}
	return ours, appsync
}

// fixedItem is one line of an idle stack's monthly cost.
type fixedItem struct {
	What string
	USD  float64
	Note string
}

// fixedCost is what a deployed stack costs a month with no traffic,
// from the resources template.yaml creates with its default parameters.
func (pt PriceTable) fixedCost(tpl *template.Template, a Assumptions) []fixedItem {
	alarmMetrics := 0
	for _, id := range tpl.OfType("AWS::CloudWatch::Alarm") {
		props := tpl.Resources[id].Properties
		if metrics, ok := props["Metrics"].([]any); ok {
			for _, m := range metrics {
				if mm, ok := m.(map[string]any); ok && mm["MetricStat"] != nil {
					alarmMetrics++
				}
			}
			continue
		}
		alarmMetrics++
	}
	alarms := len(tpl.OfType("AWS::CloudWatch::Alarm"))
	dashboards := len(tpl.OfType("AWS::CloudWatch::Dashboard"))
	keys := len(tpl.OfType("AWS::KMS::Key"))
	pitr := "on"
	if def, _ := tpl.Parameters["PointInTimeRecovery"]["Default"].(string); def != "true" {
		pitr = "off"
	}
	items := []fixedItem{
		{fmt.Sprintf("%d alarms evaluating %d metrics", alarms, alarmMetrics), float64(alarmMetrics) * pt.usd("cloudwatch_alarm_metric_month"), "standard resolution; the first 10 alarm metrics of an account are free"},
		{fmt.Sprintf("%d dashboard", dashboards), float64(dashboards) * pt.usd("cloudwatch_dashboard_month"), "free if the account has no more than 3 dashboards"},
		{"job queue polled while idle", a.IdleReceivesPerMonth * pt.usd("sqs_fifo_request"), fmt.Sprintf("estimate: %s long-poll receives a month (5 pollers, one 20 s poll each)", thousands(a.IdleReceivesPerMonth))},
		{fmt.Sprintf("table storage and point-in-time recovery (%s) at %.2f GB", pitr, a.TableGB), a.TableGB * (pt.usd("dynamodb_storage_gb_month") + boolf(pitr == "on")*pt.usd("dynamodb_pitr_gb_month")), "storage under 25 GB is free"},
		{"custom metrics", 0, "none while idle: a metric is billed by the hour it receives data"},
		{fmt.Sprintf("KMS keys: %d", keys), 0, "the table, queues and logs use AWS-owned keys"},
		{"signed-token secret", 0, fmt.Sprintf("$%.2f a month if you set TokenSecretName (the template creates none)", pt.usd("secrets_secret_month"))},
	}
	return items
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// fanout returns the fan-out run of n connections at memMB, its wall times
// replaced by the median of the runs of n at every size: the emulator does
// not limit the CPU, so the runs at different sizes differ by the shared
// machine's noise only, and the model (billedMs) applies each size's CPU
// share to its own CPU time.
func (m Measurements) fanout(n, memMB int) (FanoutRun, bool) { return runAt(m.Fanout, n, memMB) }

// publish is fanout for the publish API's runs (PublishFunction).
func (m Measurements) publish(n, memMB int) (FanoutRun, bool) { return runAt(m.Publish, n, memMB) }

// runAt is fanout over runs.
func runAt(runs []FanoutRun, n, memMB int) (FanoutRun, bool) {
	var walls, batchWalls []float64
	var run FanoutRun
	found := false
	for _, f := range runs {
		if f.Connections != n {
			continue
		}
		walls = append(walls, f.WallMs/float64(max(1, f.Invocations)))
		if f.Batch10.Invocations > 0 {
			batchWalls = append(batchWalls, f.Batch10.WallMs/float64(f.Batch10.Invocations))
		}
		if f.MemoryMB == memMB {
			run, found = f, true
		}
	}
	if !found {
		return FanoutRun{}, false
	}
	run.WallMs = medianOf(walls) * float64(run.Invocations)
	if run.Batch10.Invocations > 0 {
		run.Batch10.WallMs = medianOf(batchWalls) * float64(run.Batch10.Invocations)
	}
	return run, true
}

// medianOf is the median of vs (the upper one of an even count).
func medianOf(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	return s[len(s)/2]
}

// sizes returns the connection counts and memory sizes runs measured.
func sizesOf(runs []FanoutRun) (conns, mems []int) {
	for _, f := range runs {
		if !slices.Contains(conns, f.Connections) {
			conns = append(conns, f.Connections)
		}
		if !slices.Contains(mems, f.MemoryMB) {
			mems = append(mems, f.MemoryMB)
		}
	}
	slices.Sort(conns)
	slices.Sort(mems)
	return conns, mems
}

// usd formats dollars with enough digits to tell small figures apart.
func usd(v float64) string {
	switch {
	case v == 0:
		return "$0"
	case v >= 100:
		return "$" + thousands(math.Round(v))
	case v >= 0.1:
		return fmt.Sprintf("$%.2f", v)
	case v >= 0.01:
		return fmt.Sprintf("$%.3f", v)
	}
	return fmt.Sprintf("$%.2g", v)
}

// thousands formats a whole number with thousands separators.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}
