package template_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsnotify/wsnotify/infra/template"
	"github.com/wsnotify/wsnotify/shared/app"
	"github.com/wsnotify/wsnotify/shared/notify"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// These checks read template.yaml, through this package's parser, for what
// cfn-lint cannot see: each function's main, build and environment (against
// shared/app's table of the variables each main reads), its IAM
// grants, the routes and their permissions, and the queue, stage and bucket
// settings the code relies on. Values are compared in the forms describe
// gives them: Ref(X), GetAtt(R.A), Sub(S) or the literal.

func repoTemplate(t *testing.T) *template.Template {
	t.Helper()
	tpl, err := template.Repo()
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func functionProps(t *testing.T, tpl *template.Template, id string) map[string]any {
	t.Helper()
	p, err := tpl.FunctionProperties(id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// props returns the properties of resource id, failing unless it is a typ.
func props(t *testing.T, tpl *template.Template, id, typ string) map[string]any {
	t.Helper()
	r, err := tpl.Resource(id, typ)
	if err != nil {
		t.Fatal(err)
	}
	return r.Properties
}

// dig walks maps by key; nil when a step is missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

// asList returns v as a list: nil is empty, a single value a list of one.
func asList(v any) []any {
	if l, ok := v.([]any); ok || v == nil {
		return l
	}
	return []any{v}
}

// describe renders an intrinsic as Ref(X), GetAtt(R.A) or Sub(S), a string
// as itself and anything else as JSON.
func describe(v any) string {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		if r, ok := m["Ref"].(string); ok {
			return "Ref(" + r + ")"
		}
		if a, ok := m["Fn::GetAtt"].([]any); ok && len(a) == 2 {
			return fmt.Sprintf("GetAtt(%v.%v)", a[0], a[1])
		}
		if s, ok := m["Fn::Sub"].(string); ok {
			return "Sub(" + s + ")"
		}
	}
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// connectionsOf is a Management API ARN as the template writes it.
const connectionsOf = "Sub(arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/${StageName}/%s/@connections/*)"

// managementGrants is every function's Management API grant, as "action on
// resource". The other grants (DynamoDB, SQS, Secrets Manager) are held to
// the calls each binary makes by running them with IAM enforced
// (infra/iamcheck, in infra/local's tests); the Management API calls go to
// local mode there, so these are checked here, by hand.
var managementGrants = map[string][]string{
	"ConnectFunction": {
		"execute-api:ManageConnections on " + fmt.Sprintf(connectionsOf, "GET"),    // is a stale record's connection gone?
		"execute-api:ManageConnections on " + fmt.Sprintf(connectionsOf, "POST"),   // why an expired token's connection is closed
		"execute-api:ManageConnections on " + fmt.Sprintf(connectionsOf, "DELETE"), // closing it to make room at the cap
	},
	"DisconnectFunction": nil,
	"DefaultFunction": {
		"execute-api:ManageConnections on " + fmt.Sprintf(connectionsOf, "POST"),   // a resume's replay
		"execute-api:ManageConnections on " + fmt.Sprintf(connectionsOf, "DELETE"), // closing a sender of junk
	},
	"JobEventsFunction": {"execute-api:ManageConnections on " + fmt.Sprintf(connectionsOf, "POST")},
	"PublishFunction":   {"execute-api:ManageConnections on " + fmt.Sprintf(connectionsOf, "POST")},
	"S3UploadFunction":  {"execute-api:ManageConnections on " + fmt.Sprintf(connectionsOf, "POST")},
	"FanoutFunction":    {"execute-api:ManageConnections on " + fmt.Sprintf(connectionsOf, "POST")},
}

func TestFunctionsAreGrantedExactlyTheirManagementAPICalls(t *testing.T) {
	tpl := repoTemplate(t)
	if got, want := tpl.OfType(template.FunctionType), slices.Sorted(maps.Keys(managementGrants)); !slices.Equal(got, want) {
		t.Errorf("functions %v, want grants for exactly %v", got, want)
	}
	for _, typ := range []string{"AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"} {
		ids := tpl.OfType(typ)
		if typ == "AWS::IAM::Role" && slices.Equal(ids, []string{"ApiGatewayCloudWatchRole"}) {
			continue // API Gateway's own logging role, checked by TestTheStageWritesAccessLogsWithoutTheQueryString
		}
		if len(ids) > 0 {
			t.Errorf("%v: grants outside the functions' Policies escape this check", ids)
		}
	}
	for id, want := range managementGrants {
		p := functionProps(t, tpl, id)
		if p["Role"] != nil {
			t.Errorf("%s: a Role replaces the Policies checked here", id)
		}
		var got []string
		for i, policy := range asList(p["Policies"]) {
			statements, ok := dig(policy, "Statement").([]any)
			if !ok {
				// A managed policy or a SAM policy template grants what its
				// definition says, which this check cannot see.
				t.Errorf("%s: Policies[%d] = %s: write an inline policy document", id, i, describe(policy))
			}
			for j, s := range statements {
				m, _ := s.(map[string]any)
				for k := range m {
					if !slices.Contains([]string{"Sid", "Effect", "Action", "Resource"}, k) {
						t.Errorf("%s: Policies[%d].Statement[%d] has %s: only Allow, Action and Resource are read here", id, i, j, k)
					}
				}
				if dig(s, "Effect") != "Allow" {
					t.Errorf("%s: Policies[%d].Statement[%d] Effect = %v, want Allow", id, i, j, dig(s, "Effect"))
				}
				for _, a := range asList(dig(s, "Action")) {
					if !strings.HasPrefix(describe(a), "execute-api:") {
						continue
					}
					for _, r := range asList(dig(s, "Resource")) {
						got = append(got, describe(a)+" on "+describe(r))
					}
				}
			}
		}
		slices.Sort(got)
		if want = slices.Sorted(slices.Values(want)); !slices.Equal(got, want) {
			t.Errorf("%s is granted\n\t%s\nwant\n\t%s", id, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
		}
	}
}

func TestEveryFunctionHasItsMainAndEveryMainItsFunction(t *testing.T) {
	tpl := repoTemplate(t)
	root := testenv.RepoRoot(t)
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	fns, err := tpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]bool{}
	for _, f := range fns {
		id, dir := f.LogicalID, f.Dir
		dirs[dir] = true
		if _, err := os.Stat(filepath.Join(root, "functions", dir, "main.go")); err != nil {
			t.Errorf("function %s: functions/%s/main.go is missing", id, dir)
		}
		// sam build runs build-<LogicalId> of the Makefile where CodeUri points.
		if !regexp.MustCompile(`(?m)^build-` + id + `:.*\./functions/` + dir + `\s*$`).Match(makefile) {
			t.Errorf("function %s: the Makefile has no build-%s target building ./functions/%s", id, id, dir)
		}
		p := functionProps(t, tpl, id)
		for prop, want := range map[string]string{"Runtime": "provided.al2023", "Handler": "bootstrap", "CodeUri": ".", "Architectures": `["arm64"]`} {
			if got := describe(p[prop]); got != want {
				t.Errorf("%s: %s = %s, want %s (the Makefile builds a linux/arm64 bootstrap)", id, prop, got, want)
			}
		}
		if got := dig(tpl.Resources[id].Metadata, "BuildMethod"); got != "makefile" {
			t.Errorf("%s: Metadata.BuildMethod = %v, want makefile", id, got)
		}
	}
	entries, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && !dirs[e.Name()] {
			t.Errorf("functions/%s has no AWS::Serverless::Function in template.yaml", e.Name())
		}
	}
}

// envValues is what template.yaml sets each variable to, for every function
// it sets it for.
var envValues = map[string]string{
	app.EnvTableName: "Ref(ConnectionsTable)",
	// The stage URL from the API id, never the request's domainName.
	app.EnvManagementEndpoint:    "Sub(https://${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${StageName})",
	app.EnvUploadPrefix:          "Ref(UploadPrefix)", // the prefix the S3 event filters on
	app.EnvFanoutConcurrency:     "Ref(FanoutConcurrency)",
	app.EnvLogLevel:              "Ref(LogLevel)",
	app.EnvAllowedOrigins:        "Ref(AllowedOrigins)",
	app.EnvJobDeadLetterQueueURL: "Ref(JobEventsDeadLetterQueue)",
	app.EnvTokenSecretID:         "Ref(TokenSecretName)",
	app.EnvTokenMaxTTL:           "Ref(TokenMaxTTL)",
	app.EnvTokenAudience:         "Ref(TokenAudience)",
	app.EnvTokenIssuer:           "Ref(TokenIssuer)",
	app.EnvHistoryTTL:            "Ref(HistoryTTL)",
	app.EnvHistoryMaxEvents:      "Ref(HistoryMaxEvents)",
	app.EnvMetricsNamespace:      "Ref(MetricsNamespace)",
	app.EnvFanoutFunction:        "Ref(FanoutFunction)",
	app.EnvHandoffAbove:          "Ref(HandoffAbove)",
}

// TestEachFunctionIsSetExactlyWhatItsMainReads compares the template with
// shared/app's table, which is what each main's loader reads: every
// variable a main reads is set (unless the table calls it an override the
// cloud leaves unset), and every variable set is read.
func TestEachFunctionIsSetExactlyWhatItsMainReads(t *testing.T) {
	tpl := repoTemplate(t)
	var table []string
	for _, f := range app.Functions() {
		table = append(table, string(f))
	}
	if got := tpl.OfType(template.FunctionType); !slices.Equal(got, table) {
		t.Errorf("template functions %v, shared/app's table %v", got, table)
	}
	for _, f := range app.Functions() {
		env, _ := dig(functionProps(t, tpl, string(f)), "Environment", "Variables").(map[string]any)
		var want []string
		for _, v := range f.Vars() {
			if v.Template {
				want = append(want, v.Name)
			}
		}
		slices.Sort(want)
		if got := slices.Sorted(maps.Keys(env)); !slices.Equal(got, want) {
			t.Errorf("%s: template.yaml sets %v, its main reads %v (shared/app's table)", f, got, want)
		}
		for name, value := range env {
			if got := describe(value); got != envValues[name] {
				t.Errorf("%s: %s = %s, want %s", f, name, got, envValues[name])
			}
		}
	}
}

// routeFunctions maps each WebSocket route to the function it invokes.
var routeFunctions = map[string]string{
	"$connect":    "ConnectFunction",
	"$disconnect": "DisconnectFunction",
	"$default":    "DefaultFunction",
}

func TestEachRouteInvokesItsFunctionWithAScopedPermission(t *testing.T) {
	tpl := repoTemplate(t)
	apis := slices.DeleteFunc(tpl.OfType("AWS::ApiGatewayV2::Api"), func(id string) bool { return id == publishAPI })
	if len(apis) != 1 {
		t.Fatalf("WebSocket APIs %v, want one", apis)
	}
	api := apis[0]
	if ap := props(t, tpl, api, "AWS::ApiGatewayV2::Api"); ap["ProtocolType"] != "WEBSOCKET" || ap["RouteSelectionExpression"] != "$request.body.action" {
		t.Errorf("%s: ProtocolType %v, RouteSelectionExpression %v; want WEBSOCKET, $request.body.action", api, ap["ProtocolType"], ap["RouteSelectionExpression"])
	}
	routes := map[string]string{} // route key -> logical id
	for _, id := range tpl.OfType("AWS::ApiGatewayV2::Route") {
		if describe(tpl.Resources[id].Properties["ApiId"]) == "Ref("+api+")" {
			routes[describe(tpl.Resources[id].Properties["RouteKey"])] = id
		}
	}
	if got, want := slices.Sorted(maps.Keys(routes)), slices.Sorted(maps.Keys(routeFunctions)); !slices.Equal(got, want) {
		t.Errorf("routes %v, want %v", got, want)
	}
	// Each permission lets this API's stage invoke one function for one
	// route; there are no others.
	var permissions, wantPermissions []string
	for _, id := range tpl.OfType("AWS::Lambda::Permission") {
		p := tpl.Resources[id].Properties
		permissions = append(permissions, fmt.Sprintf("%s may %s %s from %s", p["Principal"], p["Action"], describe(p["FunctionName"]), describe(p["SourceArn"])))
	}
	for key, fn := range routeFunctions {
		wantPermissions = append(wantPermissions, fmt.Sprintf("apigateway.amazonaws.com may lambda:InvokeFunction Ref(%s) from Sub(arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${%s}/${StageName}/%s)", fn, api, key))
		rp := tpl.Resources[routes[key]].Properties
		if got := describe(rp["ApiId"]); got != "Ref("+api+")" {
			t.Errorf("route %s: ApiId %s, want Ref(%s)", key, got, api)
		}
		integration := strings.TrimSuffix(strings.TrimPrefix(describe(rp["Target"]), "Sub(integrations/${"), "})")
		ip := props(t, tpl, integration, "AWS::ApiGatewayV2::Integration")
		uri := "Sub(arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${" + fn + ".Arn}/invocations)"
		if ip["IntegrationType"] != "AWS_PROXY" || describe(ip["IntegrationUri"]) != uri || describe(ip["ApiId"]) != "Ref("+api+")" {
			t.Errorf("route %s: integration %s is %v to %s, want AWS_PROXY to %s", key, integration, ip["IntegrationType"], describe(ip["IntegrationUri"]), uri)
		}
	}
	// The publish API may invoke PublishFunction for its two routes only
	// (TestThePublishAPIIsIAMAuthorized).
	for _, route := range publishRoutes {
		wantPermissions = append(wantPermissions, fmt.Sprintf("apigateway.amazonaws.com may lambda:InvokeFunction Ref(PublishFunction) from Sub(arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${%s}/*/%s)", publishAPI, route.arnPath))
	}
	// And S3 may invoke S3UploadFunction for the upload bucket only.
	wantPermissions = append(wantPermissions, `s3.amazonaws.com may lambda:InvokeFunction Ref(S3UploadFunction) from {"Fn::Sub":["arn:${AWS::Partition}:s3:::${Name}",{"Name":`+describe(uploadBucketName)+`}]}`)
	slices.Sort(permissions)
	slices.Sort(wantPermissions)
	if !slices.Equal(permissions, wantPermissions) {
		t.Errorf("Lambda permissions\n\t%s\nwant\n\t%s", strings.Join(permissions, "\n\t"), strings.Join(wantPermissions, "\n\t"))
	}
	// $default answers the sender: a two-way route with a $default route response.
	if got := tpl.Resources[routes["$default"]].Properties["RouteResponseSelectionExpression"]; got != "$default" {
		t.Errorf("$default route: RouteResponseSelectionExpression = %v, want $default", got)
	}
	if !slices.ContainsFunc(tpl.OfType("AWS::ApiGatewayV2::RouteResponse"), func(id string) bool {
		p := tpl.Resources[id].Properties
		return describe(p["RouteId"]) == "Ref("+routes["$default"]+")" && p["RouteResponseKey"] == "$default"
	}) {
		t.Error("the $default route has no route response with RouteResponseKey $default")
	}
}

func TestTheStageDeploysEveryChangeWithThrottling(t *testing.T) {
	tpl := repoTemplate(t)
	stages := slices.DeleteFunc(tpl.OfType("AWS::ApiGatewayV2::Stage"), func(id string) bool { return id == "PublishApiStage" })
	if len(stages) != 1 {
		t.Fatalf("stages %v, want one", stages)
	}
	p := tpl.Resources[stages[0]].Properties
	// MANAGEMENT_API_ENDPOINT and the permissions name the stage by the parameter.
	if describe(p["StageName"]) != "Ref(StageName)" || p["AutoDeploy"] != true {
		t.Errorf("StageName %s, AutoDeploy %v; want Ref(StageName), true (a Deployment resource never redeploys)", describe(p["StageName"]), p["AutoDeploy"])
	}
	for _, k := range []string{"ThrottlingBurstLimit", "ThrottlingRateLimit"} {
		if dig(p, "DefaultRouteSettings", k) == nil {
			t.Errorf("DefaultRouteSettings.%s is not set", k)
		}
	}
}

func TestTheFanOutConcurrencyDefaultsToTheMeasuredOne(t *testing.T) {
	// The benchmarked default (notify.DefaultConcurrency, from
	// BenchmarkFanOut's curve) is what a deployment gets unless told.
	p := repoTemplate(t).Parameters["FanoutConcurrency"]
	if p["Default"] != notify.DefaultConcurrency || !strings.Contains(fmt.Sprint(p["Description"]), fmt.Sprint(notify.DefaultConcurrency)) {
		t.Errorf("FanoutConcurrency defaults to %v (%q), want notify.DefaultConcurrency, %d, and says so", p["Default"], p["Description"], notify.DefaultConcurrency)
	}
}

func TestJobEventsQueueFeedsJobEventsFunctionInOrder(t *testing.T) {
	tpl := repoTemplate(t)
	const queueARN = "GetAtt(JobEventsQueue.Arn)"
	var source map[string]any
	for _, id := range tpl.OfType("AWS::Lambda::EventSourceMapping") {
		if p := tpl.Resources[id].Properties; describe(p["FunctionName"]) == "Ref(JobEventsFunction)" {
			source = p
		}
	}
	if describe(source["EventSourceArn"]) != queueARN || describe(source["FunctionResponseTypes"]) != `["ReportBatchItemFailures"]` {
		t.Errorf("JobEventsFunction's event source %s with %s, want %s reporting batch item failures (the handler does)",
			describe(source["EventSourceArn"]), describe(source["FunctionResponseTypes"]), queueARN)
	}
	if max := tpl.Parameters["JobEventsBatchSize"]["MaxValue"]; describe(source["BatchSize"]) != "Ref(JobEventsBatchSize)" || max != 10 {
		t.Errorf("BatchSize %s (MaxValue %v), want Ref(JobEventsBatchSize) of at most a FIFO queue's 10", describe(source["BatchSize"]), max)
	}
	q := props(t, tpl, "JobEventsQueue", "AWS::SQS::Queue")
	timeout, _ := functionProps(t, tpl, "JobEventsFunction")["Timeout"].(int)
	if vt, _ := q["VisibilityTimeout"].(int); q["FifoQueue"] != true || vt < 6*timeout {
		t.Errorf("JobEventsQueue: FifoQueue %v, VisibilityTimeout %v; want FIFO (one job's events in order) and at least 6 x the function's %d s", q["FifoQueue"], q["VisibilityTimeout"], timeout)
	}
	dlq := strings.TrimSuffix(strings.TrimPrefix(describe(dig(q, "RedrivePolicy", "deadLetterTargetArn")), "GetAtt("), ".Arn)")
	if props(t, tpl, dlq, "AWS::SQS::Queue")["FifoQueue"] != true || dig(q, "RedrivePolicy", "maxReceiveCount") == nil {
		t.Errorf("JobEventsQueue's dead-letter queue %s is not FIFO, or maxReceiveCount is unset", dlq)
	}
}

// uploadBucketName is the upload bucket's name as the template writes it
// both in the bucket and in S3's invoke permission: the parameter, or one
// made of the stack's id (lower case, as bucket names must be).
var uploadBucketName = map[string]any{"Fn::If": []any{"WithUploadBucketName", map[string]any{"Ref": "UploadBucketName"},
	map[string]any{"Fn::Join": []any{"-", []any{"wsnotify-uploads", map[string]any{"Fn::Select": []any{2, map[string]any{"Fn::Split": []any{"/", map[string]any{"Ref": "AWS::StackId"}}}}}}}}}}

func TestUploadsUnderThePrefixInvokeS3UploadFunction(t *testing.T) {
	tpl := repoTemplate(t)
	if ev := dig(functionProps(t, tpl, "S3UploadFunction"), "Events"); ev != nil {
		t.Errorf("S3UploadFunction has SAM events %s: its S3 event's permission names no bucket (SourceAccount only)", describe(ev))
	}
	b := props(t, tpl, "UploadBucket", "AWS::S3::Bucket")
	if got := describe(dig(b, "NotificationConfiguration")); got != `{"LambdaConfigurations":[{"Event":"s3:ObjectCreated:*","Filter":{"S3Key":{"Rules":[{"Name":"prefix","Value":{"Ref":"UploadPrefix"}}]}},"Function":{"Fn::GetAtt":["S3UploadFunction","Arn"]}}]}` {
		t.Errorf("UploadBucket's notification = %s, want objects created under UploadPrefix to invoke S3UploadFunction", got)
	}
	if describe(b["BucketName"]) != describe(uploadBucketName) {
		t.Errorf("UploadBucket's name %s, want %s, the name S3UploadPermission allows", describe(b["BucketName"]), describe(uploadBucketName))
	}
	// S3 checks the permission when the notification is set.
	if got := describe(tpl.Resources["UploadBucket"].DependsOn); got != "S3UploadPermission" && got != `["S3UploadPermission"]` {
		t.Errorf("UploadBucket depends on %s, want S3UploadPermission", got)
	}
	perm := props(t, tpl, "S3UploadPermission", "AWS::Lambda::Permission")
	if describe(perm["SourceAccount"]) != "Ref(AWS::AccountId)" || perm["SourceArn"] == nil {
		t.Errorf("S3UploadPermission: SourceAccount %s, SourceArn %s; want this account and the upload bucket", describe(perm["SourceAccount"]), describe(perm["SourceArn"]))
	}
	for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
		if dig(b, "PublicAccessBlockConfiguration", k) != true {
			t.Errorf("UploadBucket: PublicAccessBlockConfiguration.%s is not true", k)
		}
	}
}

// cfnLintFalsePositive is a message cfn-lint 1.9.7 reports for a valid
// template: its resource specification (2.29.0) predates the property, or
// its own handling is wrong. Each is matched by path and message, and each
// hides only what a check in this file verifies.
type cfnLintFalsePositive struct{ path, message, why string }

var cfnLintFalsePositives = []cfnLintFalsePositive{
	{`^Globals > Function$`, `^Invalid or unsupported SAM Globals property name: (Architectures|LoggingConfig)$`,
		"Lambda properties newer than its SAM spec (TestEveryFunctionHasItsMainAndEveryMainItsFunction checks Architectures)"},
	{`^Resources > \w+ > Properties > (Architectures|LoggingConfig)$`, `^(Architectures|LoggingConfig) is not a valid property of AWS::Serverless::Function$`,
		"Lambda properties newer than its SAM spec"},
	{`^Resources > PublishFunction > Properties > FunctionUrlConfig$`, `^FunctionUrlConfig is not a valid property of AWS::Serverless::Function$`,
		"function URLs are newer than its SAM spec (TestThePublishFunctionURLIsIAMAuthorized runs the SAM transform)"},
	{`^Outputs > PublishFunctionUrl > Value$`, `^No resource with logical name of PublishFunctionUrl!$`,
		"the SAM transform makes PublishFunctionUrl of FunctionUrlConfig; it does not transform (TestThePublishFunctionURLIsIAMAuthorized)"},
	{`^Resources > \w+ > Properties > AutoDeploy$`, `^AutoDeploy is not a valid property of AWS::ApiGatewayV2::Stage$`,
		"Stage AutoDeploy is newer than its spec (TestTheStageDeploysEveryChangeWithThrottling)"},
	{`^Resources > \w+ > Properties$`, `^Required property DeploymentId missing for type AWS::ApiGatewayV2::Stage$`,
		"with AutoDeploy the stage needs no DeploymentId"},
	{`^Resources > PublishApi > Properties$`, `^Required property RouteSelectionExpression missing for type AWS::ApiGatewayV2::Api$`,
		"its spec predates HTTP APIs, which have no route selection; Python cfn-lint 1.51 passes it (TestThePublishAPIIsIAMAuthorized)"},
	{`^Resources > PublishIntegration > Properties > PayloadFormatVersion$`, `^PayloadFormatVersion is not a valid property of AWS::ApiGatewayV2::Integration$`,
		"its spec predates HTTP APIs' payload formats (TestThePublishAPIIsIAMAuthorized)"},
	{`^Resources > \w+ > Properties > FunctionResponseTypes$`, `^FunctionResponseTypes is not a valid property of AWS::Lambda::EventSourceMapping$`,
		"partial batch responses are newer than its spec (TestJobEventsQueueFeedsJobEventsFunctionInOrder)"},
	{`^Resources > \w+ > Properties > SourceArn$`, `^Expecting an ARN, got 'arn:\$\{aws\}:(execute-api|s3):`,
		"its Fn::Sub leaves ${} around substituted values, so ${AWS::Partition} fails its arn:aws test (TestEachRouteInvokesItsFunctionWithAScopedPermission)"},
	{`^Resources > WebSocketStage > Properties > AccessLogSettings > DestinationArn$`, `^Expecting an ARN, got 'arn:\$\{aws\}:logs:`,
		"the same Fn::Sub mock (TestTheStageWritesAccessLogsWithoutTheQueryString)"},
	{`^Resources > UploadBucket > Properties > BucketName$`, `^First element of Fn::Select exceeds the length of the list\.$`,
		"its mock of AWS::StackId has no slashes to split; Python cfn-lint 1.51 passes it (TestTemplatePassesCfnLintWithInformationalChecks)"},
	{`^Resources > WebSocketStage > Properties > Tags$`, `^Tags is not a valid property of AWS::ApiGatewayV2::Stage$`,
		"stage tags are newer than its spec; Python cfn-lint 1.51 knows them"},
	{`^Resources > \w+ > Properties > Events > \w+ > Properties > Filter > S3Key > Rules$`, `^Expecting a JSON object, got \[`,
		"it checks the list inside a SAM S3 event's Json-typed S3Key as the object itself (TestUploadsUnderThePrefixInvokeS3UploadFunction)"},
	{`^Resources > \w+$`, `^Resource \w+ has an invalid Type of AWS::CloudFront::Function\.$`,
		"CloudFront Functions are newer than its spec (checked by cloudfront_test.go)"},
	{`^Resources > \w+ > Properties > DistributionConfig > DefaultCacheBehavior > (CachePolicyId|OriginRequestPolicyId|FunctionAssociations)$`,
		`^(CachePolicyId|OriginRequestPolicyId|FunctionAssociations) is not a valid property of AWS::CloudFront::Distribution\.DefaultCacheBehavior$`,
		"cache and origin request policies and function associations are newer than its spec (checked by cloudfront_test.go)"},
	{`^Resources > \w+ > Properties > DistributionConfig > DefaultCacheBehavior$`,
		`^Required property ForwardedValues missing for type AWS::CloudFront::Distribution\.DefaultCacheBehavior$`,
		"ForwardedValues is the legacy alternative to a cache policy, and must be absent beside one"},
}

// cfnLintScript runs cfn-lint's validator, what `cfn-lint validate <file>`
// runs, and prints its result as JSON: each message's path and text without
// the CLI's colours and layout.
const cfnLintScript = `
const [pkg, file] = process.argv.slice(1);
process.stdout.write(JSON.stringify(require(pkg).validateFile(file)));
`

func TestTemplatePassesCfnLint(t *testing.T) {
	pkg := filepath.Join(testenv.NodeModules(t), "cfn-lint")
	manifest, err := os.ReadFile(filepath.Join(pkg, "package.json"))
	if err != nil {
		t.Fatalf("cfn-lint is not installed in %s: run `make test` (it runs `npm ci` in infra/node)", pkg)
	}
	var meta struct{ Version string }
	if err := json.Unmarshal(manifest, &meta); err != nil || meta.Version != "1.9.7" {
		t.Fatalf("cfn-lint %q installed, want 1.9.7: the known false positives are that version's", meta.Version)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.Node(t), "-e", cfnLintScript, pkg, filepath.Join(testenv.RepoRoot(t), "template.yaml"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("cfn-lint failed (%v):\n%s%s", err, stdout.String(), stderr.String())
	}
	var res struct {
		Errors map[string][]struct{ Message, Resource string } `json:"errors"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || res.Errors == nil {
		t.Fatalf("cfn-lint output is not its JSON result (%v):\n%s%s", err, stdout.String(), stderr.String())
	}
	for _, level := range []string{"crit", "warn", "info"} {
		for _, e := range res.Errors[level] {
			if i := slices.IndexFunc(cfnLintFalsePositives, func(fp cfnLintFalsePositive) bool {
				return regexp.MustCompile(fp.path).MatchString(e.Resource) && regexp.MustCompile(fp.message).MatchString(e.Message)
			}); i >= 0 {
				t.Logf("known false positive (%s): %s: %s", cfnLintFalsePositives[i].why, e.Resource, e.Message)
			} else if level == "info" {
				t.Logf("cfn-lint info: %s: %s", e.Resource, e.Message)
			} else {
				t.Errorf("cfn-lint %s: %s: %s", level, e.Resource, e.Message)
			}
		}
	}
}

// TestAHandOffCallerOutlivesTheFanoutFunctionAndMayInvokeOnlyIt: a function
// that hands fan-outs off (FANOUT_FUNCTION_NAME) has a longer Timeout than
// the function it invokes and waits for, so it gets the answer (or the
// failure) in time to report it, and its one Lambda grant is the invoke of
// that function.
func TestAHandOffCallerOutlivesTheFanoutFunctionAndMayInvokeOnlyIt(t *testing.T) {
	tpl := repoTemplate(t)
	fns, err := tpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	timeouts := map[string]time.Duration{}
	for _, f := range fns {
		timeouts[f.LogicalID] = f.Timeout
	}
	callers := 0
	for _, f := range fns {
		p := functionProps(t, tpl, f.LogicalID)
		target := describe(dig(p, "Environment", "Variables", app.EnvFanoutFunction))
		var grants []string
		for _, policy := range asList(p["Policies"]) {
			statements, _ := dig(policy, "Statement").([]any)
			for _, s := range statements {
				for _, a := range asList(dig(s, "Action")) {
					if strings.HasPrefix(describe(a), "lambda:") {
						for _, r := range asList(dig(s, "Resource")) {
							grants = append(grants, describe(a)+" on "+describe(r))
						}
					}
				}
			}
		}
		if target == "null" {
			if len(grants) > 0 {
				t.Errorf("%s hands nothing off, but is granted %v", f.LogicalID, grants)
			}
			continue
		}
		callers++
		callee := strings.TrimSuffix(strings.TrimPrefix(target, "Ref("), ")")
		if timeouts[callee] == 0 || timeouts[callee] >= f.Timeout {
			t.Errorf("%s (Timeout %v) hands off to %s (Timeout %v): want the callee's below the caller's", f.LogicalID, f.Timeout, target, timeouts[callee])
		}
		if want := []string{"lambda:InvokeFunction on GetAtt(" + callee + ".Arn)"}; !slices.Equal(grants, want) {
			t.Errorf("%s is granted %v, want %v", f.LogicalID, grants, want)
		}
	}
	if callers == 0 {
		t.Error("no function hands its fan-outs off (FANOUT_FUNCTION_NAME)")
	}
}
