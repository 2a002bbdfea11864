package main

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/wsnotify/wsnotify/infra/gendoc"
	"github.com/wsnotify/wsnotify/infra/template"
)

// markers enclose the table in docs/cost.md.
var markers = gendoc.Markers{Begin: "<!-- cost:begin -->", End: "<!-- cost:end -->"}

// intParam is the default of one of template.yaml's numeric parameters
// (FanoutMemorySize, PublishMemorySize, HandoffAbove).
func intParam(tpl *template.Template, name string) (int, error) {
	switch v := tpl.Parameters[name]["Default"].(type) {
	case int:
		return v, nil
	case string:
		return strconv.Atoi(v)
	}
	return 0, fmt.Errorf("template.yaml: no default %s", name)
}

// ways are the ways an event comes in, for the table: its column, and what
// it costs at n connections as priced from the runs measured.
type way struct {
	name  string
	batch bool
	cost  func(n int) (bill, bool)
}

// render writes the cost section of docs/cost.md from the measurements,
// the price table and the template.
func render(m Measurements, pt PriceTable, tpl *template.Template, a Assumptions) (string, error) {
	mem, err := intParam(tpl, "FanoutMemorySize")
	if err != nil {
		return "", err
	}
	pubMem, err := intParam(tpl, "PublishMemorySize")
	if err != nil {
		return "", err
	}
	level, _ := tpl.Parameters["SystemLogLevel"]["Default"].(string)
	a.PlatformLogs = level != "WARN"
	conns, _ := sizesOf(m.Fanout)
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	p("Written by `make cost` on %s with the prices of `infra/cost/prices.json` (%s, %s; read %s). ", m.Date, pt.Region, pt.Terms, pt.Read)
	p("Counted on %s; the Management API's stand-in answers each post in %.0f ms. ", m.Machine, m.PostLatencyMs)
	p("Lambda's own START and REPORT lines are %s (the template's SystemLogLevel, %s).\n\n", map[bool]string{true: "counted", false: "not written, and not counted"}[a.PlatformLogs], level)

	// Per published event, by the way it comes in and by owner size.
	busy := a
	busy.ProducerBatch = 10
	ways := []way{
		{"function URL, one a request", false, func(n int) (bill, bool) {
			f, ok := m.publish(n, pubMem)
			return pt.publishCost(f, pubMem, mem, a), ok
		}},
		{"HTTP API, one a request", false, func(n int) (bill, bool) {
			f, ok := m.publish(n, pubMem)
			return pt.publishCost(f, pubMem, mem, a).plus(pt.httpAPI(1)), ok
		}},
		{"queue, one an invocation", false, func(n int) (bill, bool) {
			f, ok := m.fanout(n, mem)
			return pt.cost(f.Counts, mem, 1, a), ok
		}},
		{"function URL, 10 a request", true, func(n int) (bill, bool) {
			f, ok := m.publish(n, pubMem)
			return pt.cost(f.Batch10, pubMem, 0, a).scale(0.1), ok && f.Batch10.Invocations > 0
		}},
		{"queue, 10 a request and an invocation", true, func(n int) (bill, bool) {
			f, ok := m.fanout(n, mem)
			return pt.cost(f.Batch10, mem, 10, busy).scale(0.1), ok && f.Batch10.Invocations > 0
		}},
	}
	p("**One event published to an owner's connections, by the way it comes in**: $ per million delivered (one event's cost over the connections it reaches), and its ratio to AppSync Events. *One a request*: an event alone, what a quiet app sends; *10 a request*: a producer's batch of 10 events of 10 jobs, what both publishers send when they have more than one (PublishFunction at %s MB, the template's PublishMemorySize; JobEventsFunction at %s MB, its FanoutMemorySize):\n\n",
		thousands(float64(pubMem)), thousands(float64(mem)))
	p("| connections |")
	for _, w := range ways {
		p(" %s |", w.name)
	}
	p(" AppSync Events | chat-sample shape |\n|---|")
	for range ways {
		p("---|")
	}
	p("---|---|\n")
	ratios := make([]map[int]float64, len(ways))
	for _, n := range conns {
		appsync := pt.appSyncPublish(n) * 1e6 / float64(n)
		p("| %s |", thousands(float64(n)))
		for i, w := range ways {
			c, ok := w.cost(n)
			if !ok {
				p(" — |")
				continue
			}
			perM := c.scale(1e6 / float64(n)).total()
			if ratios[i] == nil {
				ratios[i] = map[int]float64{}
			}
			ratios[i][n] = perM / appsync
			p(" %s (%.2f×) |", usd(perM), ratios[i][n])
		}
		f, _ := m.fanout(n, mem)
		p(" %s | %s |\n", usd(appsync), usd(pt.chatSample(f.Counts, n, mem)*1e6/float64(n)))
	}

	// The cheapest way for an event alone, by service, and a month of it.
	p("\n**An event alone through the function URL, by service** (PublishFunction at %s MB; above %d connections it hands the fan-out to FanoutFunction at %s MB, the template's HandoffAbove and FanoutMemorySize, and both are counted; a month: %s events published, each connection open %.0f h a day, pinging every %.0f minutes):\n\n",
		thousands(float64(pubMem)), m.HandoffAbove, thousands(float64(mem)), thousands(a.PublishedPerMonth), a.HoursPerDay, a.PingMinutes)
	p("| connections | DynamoDB requests (read, write units) | billed ms | log bytes: metrics, other, Lambda's | $ per million delivered: Lambda, DynamoDB, API Gateway, logs | $ a month | AppSync Events a month |\n")
	p("|---|---|---|---|---|---|---|\n")
	connOurs, connAppSync := pt.connectionMonth(m, a)
	for _, n := range conns {
		f, ok := m.publish(n, pubMem)
		if !ok {
			continue
		}
		ours := pt.publishCost(f, pubMem, mem, a)
		perM := ours.scale(1e6 / float64(n))
		month := ours.scale(a.PublishedPerMonth).plus(connOurs.scale(float64(n))).total()
		appsyncMonth := pt.appSyncPublish(n)*a.PublishedPerMonth + connAppSync.scale(float64(n)).total()
		billed := thousands(billedMs(f.Counts, pubMem))
		if f.Handoff.Invocations > 0 {
			billed = fmt.Sprintf("%s + %s handed off", thousands(billedMs(callerOf(f, mem), pubMem)), thousands(billedMs(f.Handoff, mem)))
		}
		platform := fmt.Sprint(f.PlatformBytes)
		if !a.PlatformLogs {
			platform = "(" + platform + ", not written)"
		}
		p("| %s | %d (%s, %s) | %s | %d, %d, %s | %s: %s, %s, %s, %s | %s | %s |\n",
			thousands(float64(n)), f.Dynamo.total(), fmt.Sprint(f.Dynamo.RRU), fmt.Sprint(f.Dynamo.WRU), billed,
			f.EMFBytes+f.Handoff.EMFBytes, f.LogBytes+f.Handoff.LogBytes, platform,
			usd(perM.total()), usd(perM.Lambda), usd(perM.DynamoDB), usd(perM.APIGateway), usd(perM.Logs), usd(month), usd(appsyncMonth))
	}

	// The DynamoDB writes of each event type.
	p("\n**DynamoDB requests of one event, by type** (owner of one connection):\n\n")
	p("| event | requests | of which writes | read units | write units |\n|---|---|---|---|---|\n")
	for _, typ := range slices.Sorted(maps.Keys(m.Events)) {
		c := m.Events[typ]
		p("| `%s` | %s | %d | %s | %s |\n", typ, opsString(c.Dynamo.Requests), c.Dynamo.writes(), fmt.Sprint(c.Dynamo.RRU), fmt.Sprint(c.Dynamo.WRU))
	}

	// Right-sizing.
	memoryTable(p, pt, fmt.Sprintf("PublishFunction, through its function URL; above %d connections it hands the fan-out to FanoutFunction at %s MB, whose Lambda cost the figures include", m.HandoffAbove, thousands(float64(mem))), m.Publish,
		func(f FanoutRun) (Counts, float64) { return callerOf(f, mem), pt.lambdaUSD(f.Handoff, mem) })
	memoryTable(p, pt, "JobEventsFunction, from the queue", m.Fanout, nil)

	// Scenarios.
	p("\n**Scenarios** (functions at the template's sizes: JobEventsFunction %s MB, the others %d MB):\n\n", thousands(float64(mem)), m.FunctionMemoryMB)
	p("| scenario | counted | ours | AppSync Events |\n|---|---|---|---|\n")
	files := float64(m.Job.Files)
	for _, job := range []struct {
		name string
		c    Counts
	}{{"raw: one message per invocation", m.Job.Raw}, {"coalesced: SQS batches of 10", m.Job.Coalesced}} {
		ours := pt.cost(job.c, mem, files+1, a)
		p("| a %s-file job to 1 connection, %s | %d invocations, %d posts, %s | %s a job (%s per million jobs' events) | %s a job |\n",
			thousands(files), job.name, job.c.Invocations, job.c.Posts, dynamoString(job.c.Dynamo), usd(ours.total()),
			usd(ours.total()/(files+1)*1e6), usd(pt.appSyncPublish(1)*(files+1)))
	}
	reconnect := pt.cost(m.Connect, m.FunctionMemoryMB, 0, a).plus(pt.cost(m.Resume, m.FunctionMemoryMB, 0, a))
	p("| a reconnect and resume after missing that job | connect %s; resume %s, %d replay messages | %s (%s per million reconnects) | not offered (no replay) |\n",
		dynamoString(m.Connect.Dynamo), dynamoString(m.Resume.Dynamo), m.Resume.Posts, usd(reconnect.total()), usd(reconnect.total()*1e6))
	ours, appsync := pt.connectionMonth(m, a)
	p("| 1,000 users connected %.0f h a day, idle | %s connection minutes, %s pings, a connect and a disconnect a day, each | %s a month | %s a month |\n",
		a.HoursPerDay, thousands(a.HoursPerDay*60*a.DaysPerMonth*1000), thousands(a.HoursPerDay*60*a.DaysPerMonth/a.PingMinutes*1000),
		usd(ours.total()*1000), usd(appsync.total()*1000))
	if sc := m.SignedConnects; sc.Invocations > 0 {
		perConnect := pt.cost(sc, m.FunctionMemoryMB, 0, a).total() / float64(sc.Invocations)
		p("| connects with signed tokens (`TokenSecretName`) | %d connects to one container: %d Secrets Manager read (the secret is cached for the container's life), %s each | %s per million connects, plus %s per cold start and %s a month for the secret | %s per million connects and subscribes |\n",
			sc.Invocations, sc.SecretsCalls, dynamoString(scaleDynamo(sc.Dynamo, 1/float64(sc.Invocations))), usd(perConnect*1e6),
			usd(pt.usd("secrets_api_call")), usd(pt.usd("secrets_secret_month")), usd(2*pt.usd("appsync_events_operation")*1e6))
	}
	p("| custom metrics of a stack in use every hour | the %d metrics (name and dimensions) the measured invocations wrote to; refusal reasons and S3UploadFunction's add more | %s a month | none: built-in metrics |\n",
		len(m.MetricSeries), usd(float64(len(m.MetricSeries))*pt.usd("cloudwatch_metric_month")))
	items := pt.fixedCost(tpl, a)
	fixed := 0.0
	for _, it := range items {
		fixed += it.USD
	}
	p("| an idle stack | the template's fixed parts, below | %s a month | $0 |\n", usd(fixed))

	p("\n**An idle stack's month** (template.yaml's default parameters):\n\n| part | $ a month | note |\n|---|---|---|\n")
	for _, it := range items {
		p("| %s | %s | %s |\n", it.What, usd(it.USD), it.Note)
	}
	p("| total | %s | |\n", usd(fixed))

	// Goals.
	p("\n**Goals**: per delivered event at 1 connection within 1.5× of AppSync Events, and at 10 and more within 1.1×:\n\n")
	for i, w := range ways {
		p("- %s: at 1, %s; at 10 and more, %s.\n", w.name, goal(ratios[i], func(n int) bool { return n == 1 }, 1.5), goal(ratios[i], func(n int) bool { return n >= 10 }, 1.1))
	}
	p("- an idle stack at most $5 a month: %s (%s).\n", metOrNot(fixed <= 5), usd(fixed))
	return b.String(), nil
}

// memoryTable writes the table of one function's publish by memory size.
func memoryTable(p func(string, ...any), pt PriceTable, name string, runs []FanoutRun, handoff func(FanoutRun) (Counts, float64)) {
	conns, mems := sizesOf(runs)
	if len(mems) == 0 {
		return
	}
	p("\n**One publish by memory size** (%s; billed duration = the longer of the duration measured (the median at every size) and the CPU time measured at that size over the share of a vCPU the memory buys; $ per million publishes, Lambda only; peak resident memory at that size):\n\n", name)
	p("| connections | duration, CPU at 1,769 MB (one processor) |")
	for _, mm := range mems {
		p(" %s MB |", thousands(float64(mm)))
	}
	p(" peak memory |\n|---|---|")
	for range mems {
		p("---|")
	}
	p("---|\n")
	for _, n := range conns {
		ref, _ := runAt(runs, n, mems[len(mems)-1])
		p("| %s | %s ms, %s ms |", thousands(float64(n)), decimal(ref.WallMs), decimal(ref.CPUMs))
		var peaks []string
		for _, mm := range mems {
			f, ok := runAt(runs, n, mm)
			if !ok {
				p(" — |")
				continue
			}
			peaks = append(peaks, fmt.Sprintf("%.0f", f.PeakRSSMB))
			c, usdM := f.Counts, 0.0
			if handoff != nil && f.Handoff.Invocations > 0 {
				c, usdM = handoff(f)
			}
			usdM += pt.lambdaUSD(c, mm)
			p(" %s ms, %s |", thousands(billedMs(c, mm)), usd(usdM*1e6))
		}
		p(" %s MB |\n", strings.Join(peaks, " / "))
	}
}

// goal says whether every ratio of the owners sizes pick selects is at
// most limit, with the largest.
func goal(ratios map[int]float64, pick func(int) bool, limit float64) string {
	worst := 0.0
	for n, r := range ratios {
		if pick(n) {
			worst = max(worst, r)
		}
	}
	return fmt.Sprintf("%s (%.2f×)", metOrNot(worst <= limit), worst)
}

func metOrNot(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

// decimal formats a figure of milliseconds.
func decimal(v float64) string {
	if v >= 100 {
		return thousands(v)
	}
	return fmt.Sprintf("%.1f", v)
}

// opsString lists requests by operation, sorted: "GetItem 1, Query 1".
func opsString(ops map[string]int) string {
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(ops)) {
		parts = append(parts, fmt.Sprintf("%s %d", op, ops[op]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// scaleDynamo scales a count's units and requests by f (a per-invocation share).
func scaleDynamo(c dynamoCounts, f float64) dynamoCounts {
	s := dynamoCounts{Requests: map[string]int{}, RRU: c.RRU * f, WRU: c.WRU * f}
	for op, n := range c.Requests {
		s.Requests[op] = int(float64(n)*f + 0.5)
	}
	return s
}

// dynamoString is a count's requests and units in short.
func dynamoString(c dynamoCounts) string {
	return fmt.Sprintf("%d DynamoDB requests (%s RRU, %s WRU)", c.total(), fmt.Sprint(c.RRU), fmt.Sprint(c.WRU))
}
