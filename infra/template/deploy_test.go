package template_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/wsnotify/wsnotify/infra/template"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// These checks hold template.yaml to what a first deploy (and a later
// delete) needs: data kept, logs that expire, access logs without tokens,
// concurrency for the publishers, and a failed job event retried soon.

func TestStatefulResourcesAreRetained(t *testing.T) {
	tpl := repoTemplate(t)
	for _, id := range []string{"ConnectionsTable", "JobEventsQueue", "JobEventsDeadLetterQueue", "S3UploadDeadLetterQueue", "UploadBucket"} {
		r := tpl.Resources[id]
		if r.DeletionPolicy != "Retain" || r.UpdateReplacePolicy != "Retain" {
			t.Errorf("%s: DeletionPolicy %q, UpdateReplacePolicy %q; want Retain for both (a stack delete or a replacement must not take its data)", id, r.DeletionPolicy, r.UpdateReplacePolicy)
		}
	}
}

func TestTheTableHasPointInTimeRecoveryUnlessTurnedOff(t *testing.T) {
	tpl := repoTemplate(t)
	p := props(t, tpl, "ConnectionsTable", "AWS::DynamoDB::Table")
	if got := describe(dig(p, "PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled")); got != `{"Fn::If":["WithPointInTimeRecovery",true,false]}` {
		t.Errorf("PointInTimeRecoveryEnabled = %s, want it on under WithPointInTimeRecovery", got)
	}
	if got := describe(tpl.Conditions["WithPointInTimeRecovery"]); got != `{"Fn::Equals":[{"Ref":"PointInTimeRecovery"},"true"]}` {
		t.Errorf("WithPointInTimeRecovery = %s", got)
	}
	if d := tpl.Parameters["PointInTimeRecovery"]["Default"]; d != "true" {
		t.Errorf("PointInTimeRecovery defaults to %v, want true", d)
	}
}

func TestDeadLetterQueuesKeepMessagesFourteenDays(t *testing.T) {
	tpl := repoTemplate(t)
	for _, id := range []string{"JobEventsDeadLetterQueue", "S3UploadDeadLetterQueue"} {
		if got := props(t, tpl, id, "AWS::SQS::Queue")["MessageRetentionPeriod"]; got != 14*24*3600 {
			t.Errorf("%s keeps messages %v s, want 14 days (SQS's default, 4, can expire a failed event before anyone looks)", id, got)
		}
	}
}

// TestAFailedJobRecordIsRetriedWithinAMinute: a record the function reports
// failed becomes visible again when the queue's visibility timeout ends, and
// holds its job's message group until then. The timeout is 6 times the
// function's (Lambda's advice), and the worst a job can wait before its
// record reaches the dead-letter queue is maxReceiveCount of them.
func TestAFailedJobRecordIsRetriedWithinAMinute(t *testing.T) {
	tpl := repoTemplate(t)
	q := props(t, tpl, "JobEventsQueue", "AWS::SQS::Queue")
	vt, _ := q["VisibilityTimeout"].(int)
	timeout, _ := functionProps(t, tpl, "JobEventsFunction")["Timeout"].(int)
	receives, _ := dig(q, "RedrivePolicy", "maxReceiveCount").(int)
	if vt != 6*timeout || vt > 60 {
		t.Errorf("JobEventsQueue: VisibilityTimeout %d s with the function's Timeout %d s; want 6 x the timeout, at most 60 s", vt, timeout)
	}
	if receives < 1 || receives*vt > 5*60 {
		t.Errorf("a failing record holds its job %d x %d s before the dead-letter queue, want at most 5 minutes", receives, vt)
	}
}

func TestEveryFunctionLogsToItsOwnLogGroupWithRetention(t *testing.T) {
	tpl := repoTemplate(t)
	if d := tpl.Parameters["LogRetentionDays"]["Default"]; d != 30 {
		t.Errorf("LogRetentionDays defaults to %v, want 30", d)
	}
	groups := map[string]bool{}
	for _, id := range tpl.OfType(template.FunctionType) {
		ref := describe(dig(functionProps(t, tpl, id), "LoggingConfig", "LogGroup"))
		group := strings.TrimSuffix(strings.TrimPrefix(ref, "Ref("), ")")
		if group == ref || groups[group] {
			t.Errorf("%s: LoggingConfig.LogGroup = %s, want Ref of a log group of its own", id, ref)
			continue
		}
		groups[group] = true
		checkLogGroup(t, tpl, group)
		// JSON, so that Lambda filters by level: its own START and REPORT
		// lines (INFO) are left out at the default SystemLogLevel, WARN.
		// The functions' lines are JSON already (shared/app's Logger), and
		// Lambda keeps a JSON line as it is. Their metric lines carry no
		// level, which Lambda takes for INFO: the application level is
		// never above INFO, or it would drop the metrics.
		lc := dig(functionProps(t, tpl, id), "LoggingConfig").(map[string]any)
		if lc["LogFormat"] != "JSON" || describe(lc["SystemLogLevel"]) != "Ref(SystemLogLevel)" || describe(lc["ApplicationLogLevel"]) != `{"Fn::If":["DebugLogs","DEBUG","INFO"]}` {
			t.Errorf("%s: LoggingConfig %s; want LogFormat JSON, SystemLogLevel Ref(SystemLogLevel), ApplicationLogLevel DEBUG or INFO by LogLevel", id, describe(lc))
		}
	}
	if d := tpl.Parameters["SystemLogLevel"]["Default"]; d != "WARN" {
		t.Errorf("SystemLogLevel defaults to %v, want WARN", d)
	}
}

// checkLogGroup checks that id is a log group whose logs expire after
// LogRetentionDays.
func checkLogGroup(t *testing.T, tpl *template.Template, id string) {
	t.Helper()
	p := props(t, tpl, id, "AWS::Logs::LogGroup")
	if got := describe(p["RetentionInDays"]); got != "Ref(LogRetentionDays)" {
		t.Errorf("%s: RetentionInDays %s, want Ref(LogRetentionDays)", id, got)
	}
}

// accessLogFields are the stage's access log fields and the $context
// variable each holds: none of them holds the query string (and token).
var accessLogFields = map[string]string{
	"requestId":         "$context.requestId",
	"connectionId":      "$context.connectionId",
	"eventType":         "$context.eventType",
	"routeKey":          "$context.routeKey",
	"status":            "$context.status",
	"integrationStatus": "$context.integration.status",
	"integrationError":  "$context.integration.error",
	"error":             "$context.error.message",
	"latency":           "$context.integration.latency",
	"requestTimeEpoch":  "$context.requestTimeEpoch",
}

func TestTheStageWritesAccessLogsWithoutTheQueryString(t *testing.T) {
	tpl := repoTemplate(t)
	stage := props(t, tpl, "WebSocketStage", "AWS::ApiGatewayV2::Stage")
	format, _ := dig(stage, "AccessLogSettings", "Format").(string)
	var fields map[string]string
	if err := json.Unmarshal([]byte(format), &fields); err != nil {
		t.Fatalf("access log format is not one JSON object of strings: %v\n%s", err, format)
	}
	if !maps.Equal(fields, accessLogFields) {
		t.Errorf("access log fields %v, want %v", fields, accessLogFields)
	}
	if strings.Contains(strings.ToLower(format), "querystring") || strings.Contains(format, "$input") {
		t.Errorf("the access log format can log the query string, which carries tokens: %s", format)
	}
	// API Gateway refuses a destination ARN ending in ":*", which is what
	// GetAtt Arn gives for a log group.
	if got := describe(dig(stage, "AccessLogSettings", "DestinationArn")); got != "Sub(arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${WebSocketAccessLogGroup})" {
		t.Errorf("access log destination %s, want WebSocketAccessLogGroup's ARN without :*", got)
	}
	checkLogGroup(t, tpl, "WebSocketAccessLogGroup")

	// The region's API Gateway CloudWatch role, unless the account has one.
	role := tpl.Resources["ApiGatewayCloudWatchRole"]
	if role.Condition != "CreateApiGatewayLogRole" || role.DeletionPolicy != "Retain" {
		t.Errorf("ApiGatewayCloudWatchRole: Condition %q, DeletionPolicy %q; want CreateApiGatewayLogRole and Retain (the account setting outlives the stack)", role.Condition, role.DeletionPolicy)
	}
	if got := describe(role.Properties); got != `{"AssumeRolePolicyDocument":{"Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":"apigateway.amazonaws.com"}}],"Version":"2012-10-17"},"ManagedPolicyArns":[{"Fn::Sub":"arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"}]}` {
		t.Errorf("ApiGatewayCloudWatchRole = %s, want API Gateway's logging role and nothing more", got)
	}
	account := tpl.Resources["ApiGatewayAccount"]
	if account.Condition != "CreateApiGatewayLogRole" || describe(account.Properties["CloudWatchRoleArn"]) != "GetAtt(ApiGatewayCloudWatchRole.Arn)" {
		t.Errorf("ApiGatewayAccount: %+v, want the role set under CreateApiGatewayLogRole", account)
	}
	// The stage is created after the setting: its tag refers to it.
	if got := describe(dig(stage, "Tags")); !strings.Contains(got, `{"Fn::If":["CreateApiGatewayLogRole",{"Ref":"ApiGatewayAccount"}`) {
		t.Errorf("WebSocketStage's tags %s do not order it after ApiGatewayAccount", got)
	}
}

func TestThePublishingFunctionsHaveReservedConcurrency(t *testing.T) {
	tpl := repoTemplate(t)
	for _, id := range tpl.OfType(template.FunctionType) {
		got := describe(functionProps(t, tpl, id)["ReservedConcurrentExecutions"])
		want := "null"
		if id == "JobEventsFunction" || id == "PublishFunction" || id == "S3UploadFunction" {
			want = `{"Fn::If":["WithPublisherReservation",{"Ref":"PublisherReservedConcurrency"},{"Ref":"AWS::NoValue"}]}`
		}
		if got != want {
			t.Errorf("%s: ReservedConcurrentExecutions %s, want %s", id, got, want)
		}
	}
	if got := describe(tpl.Conditions["WithPublisherReservation"]); got != `{"Fn::Not":[{"Fn::Equals":[{"Ref":"PublisherReservedConcurrency"},0]}]}` {
		t.Errorf("WithPublisherReservation = %s, want PublisherReservedConcurrency not 0", got)
	}
}

// TestTemplatePassesCfnLintWithInformationalChecks runs AWS's cfn-lint
// (Python) on template.yaml with its informational checks too (I3011: a
// stateful resource without DeletionPolicy; I3013: a queue without its
// retention said), and fails on anything it reports.
func TestTemplatePassesCfnLintWithInformationalChecks(t *testing.T) {
	t.Parallel() // Python's cfn-lint runs the SAM transform: seconds of its own process
	bin, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Fatal("cfn-lint is not on PATH: install AWS's cfn-lint 1.x for Python 3 (`pip install cfn-lint`)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--include-checks", "I", "--format", "parseable", "--", filepath.Join(testenv.RepoRoot(t), "template.yaml"))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil && len(strings.TrimSpace(string(out))) == 0:
		return
	case err == nil || errors.As(err, &exit):
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		t.Errorf("cfn-lint reports %d findings:\n%s", len(lines), out)
	default:
		t.Fatalf("cfn-lint did not run: %v\n%s", err, out)
	}
}

// TestAFailedJobRecordWaitsOneVisibilityTimeoutPerAttempt measures what
// TestAFailedJobRecordIsRetriedWithinAMinute reads from the template, on
// moto's SQS at 1/scale of the template's times: a FIFO queue with the job
// queue's redrive, and a consumer that fails every attempt (it never
// deletes). Each retry comes one visibility timeout after the last receive,
// the job's group is held meanwhile, and after maxReceiveCount receives the
// record is in the dead-letter queue. The worst delay a job's events see
// before the dead-letter queue is therefore maxReceiveCount x
// VisibilityTimeout, plus the last attempt's run.
func TestAFailedJobRecordWaitsOneVisibilityTimeoutPerAttempt(t *testing.T) {
	t.Parallel() // it mostly waits out visibility timeouts: the package's other tests run meanwhile
	const scale = 30
	tpl := repoTemplate(t)
	q := props(t, tpl, "JobEventsQueue", "AWS::SQS::Queue")
	vt, _ := q["VisibilityTimeout"].(int)
	receives, _ := dig(q, "RedrivePolicy", "maxReceiveCount").(int)
	if vt%scale != 0 || receives < 1 {
		t.Fatalf("VisibilityTimeout %d s is not a multiple of %d, or maxReceiveCount %d", vt, scale, receives)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	moto := testenv.Moto(t)
	client := testenv.SQSClient(moto)
	fifo := map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true"}
	dlq, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("jobs-dlq.fifo"), Attributes: fifo})
	if err != nil {
		t.Fatal(err)
	}
	redrive, _ := json.Marshal(map[string]any{"deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:jobs-dlq.fifo", "maxReceiveCount": receives})
	attrs := maps.Clone(fifo)
	attrs["VisibilityTimeout"], attrs["RedrivePolicy"] = fmt.Sprint(vt/scale), string(redrive)
	jobs, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("jobs.fifo"), Attributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: jobs.QueueUrl, MessageBody: aws.String("an event that fails"), MessageGroupId: aws.String("job")}); err != nil {
		t.Fatal(err)
	}
	// The record's group-mate, behind it in the job: held until the record
	// is in the dead-letter queue.
	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: jobs.QueueUrl, MessageBody: aws.String("the job's next event"), MessageGroupId: aws.String("job")}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var attempts []time.Duration
	var next string
	for next == "" {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: jobs.QueueUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			if body := aws.ToString(m.Body); body == "the job's next event" {
				next = body
			} else {
				attempts = append(attempts, time.Since(start))
			}
		}
	}
	frozen := time.Since(start)
	dead, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: dlq.QueueUrl, MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(attempts) != receives || len(dead.Messages) != 1 {
		t.Fatalf("%d attempts (want maxReceiveCount, %d), %d records in the dead-letter queue (want 1)", len(attempts), receives, len(dead.Messages))
	}
	step := time.Duration(vt/scale) * time.Second
	// Attempt i+1 comes a visibility timeout after moto received attempt i,
	// which is some time before this consumer saw it (a long poll's answer
	// can lag): so it never comes before i timeouts from the start, and
	// never much more than one timeout after the attempt before it.
	for i := 1; i < len(attempts); i++ {
		if attempts[i] < time.Duration(i)*step {
			t.Errorf("attempt %d came %v after the start, before %d visibility timeouts (%v each)", i+1, attempts[i], i, step)
		}
		if gap := attempts[i] - attempts[i-1]; gap > step+2*time.Second {
			t.Errorf("attempt %d came %v after the last, want one visibility timeout (%v)", i+1, gap, step)
		}
	}
	t.Logf("at 1/%d scale: attempts at %v; the job's next event came after %v; at full scale the job is held %v before the dead-letter queue",
		scale, attempts, frozen.Round(time.Millisecond), time.Duration(receives*vt)*time.Second)
	if frozen < time.Duration(receives)*step || frozen > time.Duration(receives)*step+5*time.Second {
		t.Errorf("the job's next event came after %v, want %d x %v", frozen, receives, step)
	}
}
