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

	"github.com/wsnotify/wsnotify/shared/testenv"
)

// These checks read template.yaml for what the linter cannot see: that each
// function has its main and the variables its main reads, that IAM grants
// are narrow, that each route can invoke its function and no more, and that
// the queue, bucket and table are set up as the code assumes.

const modulePath = "github.com/wsnotify/wsnotify"

// functionDirs maps each function's logical id to its main, functions/<dir>.
var functionDirs = testenv.Functions

// functionEnv is the contract between the template and the mains: the
// variables the template sets for each function.
var functionEnv = map[string][]string{
	"ConnectFunction":    {"LOG_LEVEL", "MANAGEMENT_API_ENDPOINT", "TABLE_NAME", "TOKEN_MAX_TTL", "TOKEN_SECRET_ID"},
	"DisconnectFunction": {"LOG_LEVEL", "MANAGEMENT_API_ENDPOINT", "TABLE_NAME"},
	"DefaultFunction":    {"LOG_LEVEL", "MANAGEMENT_API_ENDPOINT", "TABLE_NAME"},
	"JobEventsFunction":  {"FANOUT_CONCURRENCY", "LOG_LEVEL", "MANAGEMENT_API_ENDPOINT", "TABLE_NAME"},
	"S3UploadFunction":   {"FANOUT_CONCURRENCY", "LOG_LEVEL", "MANAGEMENT_API_ENDPOINT", "TABLE_NAME", "UPLOAD_PREFIX"},
}

// optionalEnv are variables a main may read that the template leaves unset,
// except for the functions listed in requiredFor. The mains share one config
// loader, so every main reads every variable; these are the ones whose
// absence means "default" rather than a broken function.
var optionalEnv = map[string]struct {
	requiredFor []string
	why         string
}{
	"DYNAMODB_ENDPOINT":  {why: "points the store at a local DynamoDB (dynalite) in tests; the cloud uses the regional endpoint"},
	"UPLOAD_PREFIX":      {requiredFor: []string{"S3UploadFunction"}, why: "only S3UploadFunction handles uploads"},
	"FANOUT_CONCURRENCY": {requiredFor: []string{"JobEventsFunction", "S3UploadFunction"}, why: "only the publishing functions fan out"},
	"TOKEN_SECRET_ID":    {requiredFor: []string{"ConnectFunction"}, why: "only $connect checks signed tokens"},
	"TOKEN_MAX_TTL":      {requiredFor: []string{"ConnectFunction"}, why: "only $connect checks signed tokens"},
}

// lambdaEnv are the variables the Lambda runtime sets itself.
var lambdaEnv = []string{
	"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME",
	"AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
	"AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_RUNTIME_API",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "LAMBDA_TASK_ROOT",
	"LAMBDA_RUNTIME_DIR", "_HANDLER", "_X_AMZN_TRACE_ID", "TZ",
}

// ARNs as the template writes them, for the expected grants below.
const (
	tableARN      = "GetAtt(ConnectionsTable.Arn)"
	indexARN      = "Sub(${ConnectionsTable.Arn}/index/byConnection)"
	queueARN      = "GetAtt(JobEventsQueue.Arn)"
	connectionsOf = "Sub(arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/${StageName}/%s/@connections/*)"
)

// functionGrants is each function's IAM policy, as "action on resource":
// the calls its code makes, on this stack's resources only.
var functionGrants = map[string][]string{
	"ConnectFunction": {
		"dynamodb:GetItem on " + tableARN,                                       // API key records, a client id's record
		"dynamodb:PutItem on " + tableARN,                                       // conditional register and take-over
		"dynamodb:Query on " + tableARN,                                         // the owner's live connections, for the per-owner cap
		"execute-api:ManageConnections on " + fmt.Sprintf(connectionsOf, "GET"), // is a stale record's connection gone?
		// the signed-token secrets (-??????: the random suffix of a secret's ARN)
		"secretsmanager:GetSecretValue on Sub(arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${TokenSecretName}-??????)",
	},
	"DisconnectFunction": {
		"dynamodb:Query on " + indexARN, // the record of a connection id
		"dynamodb:DeleteItem on " + tableARN,
	},
	"DefaultFunction": nil, // answers through the route response
	"JobEventsFunction": {
		"dynamodb:Query on " + tableARN,      // an owner's connections
		"dynamodb:DeleteItem on " + tableARN, // a gone connection's record
		"execute-api:ManageConnections on " + fmt.Sprintf(connectionsOf, "POST"),
		"sqs:ReceiveMessage on " + queueARN,
		"sqs:DeleteMessage on " + queueARN,
		"sqs:GetQueueAttributes on " + queueARN,
	},
	"S3UploadFunction": {
		"dynamodb:Query on " + tableARN,
		"dynamodb:DeleteItem on " + tableARN,
		"execute-api:ManageConnections on " + fmt.Sprintf(connectionsOf, "POST"),
	},
}

// routeFunctions maps each WebSocket route to the function it invokes.
var routeFunctions = map[string]string{
	"$connect":    "ConnectFunction",
	"$disconnect": "DisconnectFunction",
	"$default":    "DefaultFunction",
}

func loadRepoTemplate(t *testing.T) *samTemplate {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := parseSAM(data)
	if err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	return tpl
}

func TestTemplateIsASAMTemplate(t *testing.T) {
	tpl := loadRepoTemplate(t)
	if tpl.Transform != "AWS::Serverless-2016-10-31" {
		t.Errorf("Transform = %v, want AWS::Serverless-2016-10-31", tpl.Transform)
	}
	if c := tpl.dependencyCycle(); c != nil {
		t.Errorf("circular dependency: %s", strings.Join(c, " -> "))
	}
	for id, r := range tpl.Resources {
		for _, ref := range references(r.Properties) {
			_, isResource := tpl.Resources[ref]
			_, isParameter := tpl.Parameters[ref]
			if !isResource && !isParameter {
				t.Errorf("%s refers to %s, which is neither a resource nor a parameter", id, ref)
			}
		}
	}
}

func TestDependencyCycleFindsTheS3NotificationLoop(t *testing.T) {
	// The classic mistake: the function names the bucket whose notification
	// invokes it.
	tpl, err := parseSAM([]byte(`
Resources:
  Bucket:
    Type: AWS::S3::Bucket
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          BUCKET: !Ref Bucket
      Events:
        Put:
          Type: S3
          Properties:
            Bucket: !Ref Bucket
            Events: s3:ObjectCreated:*
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tpl.dependencyCycle(), " -> "); got != "Bucket -> Fn -> Bucket" {
		t.Errorf("cycle = %q, want Bucket -> Fn -> Bucket", got)
	}
	delete(tpl.Resources["Fn"].Properties, "Environment")
	if c := tpl.dependencyCycle(); c != nil {
		t.Errorf("cycle %v without the variable", c)
	}
}

func TestEveryFunctionHasItsMainAndEveryMainAFunction(t *testing.T) {
	tpl := loadRepoTemplate(t)
	root := testenv.RepoRoot(t)
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range tpl.ofType("AWS::Serverless::Function") {
		dir, ok := functionDirs[id]
		if !ok {
			t.Errorf("function %s has no entry in functionDirs (functions/<dir> of its main)", id)
			continue
		}
		if _, err := os.Stat(filepath.Join(root, "functions", dir, "main.go")); err != nil {
			t.Errorf("function %s: its main functions/%s/main.go is missing", id, dir)
		}
		// sam build runs build-<LogicalId> of the Makefile where CodeUri points.
		target := regexp.MustCompile(`(?m)^build-` + id + `:.*\./functions/` + dir + `\s*$`)
		if !target.Match(makefile) {
			t.Errorf("function %s: the Makefile has no build-%s target building ./functions/%s", id, id, dir)
		}
	}
	entries, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "testdata" || strings.HasPrefix(e.Name(), "_") || strings.HasPrefix(e.Name(), ".") {
			continue // not a package the go tool builds
		}
		found := false
		for id, dir := range functionDirs {
			if dir == e.Name() && tpl.Resources[id].Type == "AWS::Serverless::Function" {
				found = true
			}
		}
		if !found {
			t.Errorf("functions/%s has no AWS::Serverless::Function in template.yaml", e.Name())
		}
	}
}

func TestFunctionsAreBuiltForProvidedAL2023OnArm64(t *testing.T) {
	tpl := loadRepoTemplate(t)
	ids := tpl.ofType("AWS::Serverless::Function")
	if len(ids) != len(functionDirs) {
		t.Errorf("functions %v, want %d", ids, len(functionDirs))
	}
	for _, id := range ids {
		p := tpl.functionProps(id)
		for prop, want := range map[string]any{"Runtime": "provided.al2023", "Handler": "bootstrap", "CodeUri": "."} {
			if p[prop] != want {
				t.Errorf("%s: %s = %v, want %v", id, prop, p[prop], want)
			}
		}
		if got := stringList(p["Architectures"]); !slices.Equal(got, []string{"arm64"}) {
			t.Errorf("%s: Architectures = %v, want [arm64] (the Makefile builds GOARCH=arm64)", id, got)
		}
		if got := dig(tpl.Resources[id].Metadata, "BuildMethod"); got != "makefile" {
			t.Errorf("%s: Metadata.BuildMethod = %v, want makefile", id, got)
		}
	}
}

func TestTemplateSetsTheEnvironmentContract(t *testing.T) {
	tpl := loadRepoTemplate(t)
	for id, want := range functionEnv {
		env := tpl.functionEnv(id)
		var got []string
		for k := range env {
			got = append(got, k)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s sets %v, want %v", id, got, want)
		}
		// The stage URL from the API id, never the request's domainName.
		const endpoint = "Sub(https://${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${StageName})"
		if got := describe(env["MANAGEMENT_API_ENDPOINT"]); got != endpoint {
			t.Errorf("%s: MANAGEMENT_API_ENDPOINT = %s, want %s", id, got, endpoint)
		}
		if got := describe(env["TABLE_NAME"]); got != "Ref(ConnectionsTable)" {
			t.Errorf("%s: TABLE_NAME = %s, want Ref(ConnectionsTable)", id, got)
		}
	}
	if got := describe(tpl.functionEnv("S3UploadFunction")["UPLOAD_PREFIX"]); got != "Ref(UploadPrefix)" {
		t.Errorf("S3UploadFunction: UPLOAD_PREFIX = %s, want Ref(UploadPrefix), the prefix the S3 event filters on", got)
	}
}

func TestEveryVariableAMainReadsIsSetForItsFunction(t *testing.T) {
	tpl := loadRepoTemplate(t)
	root := testenv.RepoRoot(t)
	for id, dir := range functionDirs {
		t.Run(id, func(t *testing.T) {
			scan, err := scanEnv(root, modulePath, modulePath+"/functions/"+dir)
			if err != nil {
				t.Fatalf("scan functions/%s: %v", dir, err)
			}
			for _, u := range scan.Unresolved {
				t.Errorf("cannot tell which environment variable this reads (use a string constant): %s", u)
			}
			env := tpl.functionEnv(id)
			for _, r := range scan.Reads {
				if _, set := env[r.Name]; set || slices.Contains(lambdaEnv, r.Name) {
					continue
				}
				if opt, ok := optionalEnv[r.Name]; ok && !slices.Contains(opt.requiredFor, id) {
					continue
				}
				t.Errorf("%s reads %s (%s), which template.yaml does not set for %s", dir, r.Name, r.Pos, id)
			}
			t.Logf("functions/%s reads %v", dir, scan.Names())
		})
	}
}

func TestEnvScanFollowsAccessorsThroughTheModule(t *testing.T) {
	root := filepath.Join("testdata", "template_checks", "envscan")
	scan, err := scanEnv(root, "example.com/envscan", "example.com/envscan/main")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"APP_JOINED", "DIRECT", "FIELD", "LISTED_A", "LISTED_B", "REGION", "TABLE", "WRAPPED"}
	if got := scan.Names(); !slices.Equal(got, want) {
		t.Errorf("reads %v, want %v", got, want)
	}
	if len(scan.Unresolved) != 2 ||
		!strings.Contains(scan.Unresolved[0], "main/main.go:24: reads a variable named by name") ||
		!strings.Contains(scan.Unresolved[1], "main/main.go:25: passes an environment accessor to elsewhere.Configure") {
		t.Errorf("unresolved = %q, want the non-constant name (line 24) and the accessor passed outside (line 25)", scan.Unresolved)
	}
	if _, err := scanEnv(root, "example.com/envscan", "example.com/envscan/config"); err == nil {
		t.Error("scanning a non-main package succeeded")
	}
}

// policyStatements returns the statements of function id's Policies,
// failing the test for policy forms the checks cannot read.
func policyStatements(t *testing.T, tpl *samTemplate, id string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for i, p := range asList(tpl.functionProps(id)["Policies"]) {
		stmts, ok := dig(p, "Statement").([]any)
		if !ok {
			// A managed policy name or a SAM policy template grants what its
			// definition says, which this check cannot see.
			t.Errorf("%s: Policies[%d] = %s: write an inline policy document (Statement)", id, i, describe(p))
			continue
		}
		for _, s := range stmts {
			if m, ok := s.(map[string]any); ok {
				out = append(out, m)
			}
		}
	}
	return out
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

func TestFunctionsAreGrantedOnlyWhatTheyCall(t *testing.T) {
	tpl := loadRepoTemplate(t)
	for id, want := range functionGrants {
		var got []string
		for _, s := range policyStatements(t, tpl, id) {
			if s["Effect"] != "Allow" {
				continue
			}
			for _, a := range asList(s["Action"]) {
				for _, r := range asList(s["Resource"]) {
					got = append(got, describe(a)+" on "+describe(r))
				}
			}
		}
		slices.Sort(got)
		want = slices.Sorted(slices.Values(want))
		if !slices.Equal(got, want) {
			t.Errorf("%s is granted\n\t%s\nwant\n\t%s", id, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
		}
	}
}

// wildARNScope reports whether an ARN's partition, service, region or
// account holds a wildcard (arn:aws:dynamodb:*:*:table/x): a grant on every
// account's or region's resource of that name.
func wildARNScope(arn string) bool {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 || parts[0] != "arn" {
		return false
	}
	for _, p := range parts[1:5] {
		if strings.Contains(p, "*") {
			return true
		}
	}
	return false
}

func TestNoPolicyStatementAllowsAWildcard(t *testing.T) {
	tpl := loadRepoTemplate(t)
	checked := 0
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch x := v.(type) {
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", where, i), e)
			}
		case map[string]any:
			if stmts, ok := x["Statement"].([]any); ok {
				for i, s := range stmts {
					checkStatement(t, fmt.Sprintf("%s.Statement[%d]", where, i), s)
					checked++
				}
				return
			}
			for k, e := range x {
				walk(where+"."+k, e)
			}
		}
	}
	for id, r := range tpl.Resources {
		walk(id, r.Properties)
	}
	walk("Globals", tpl.Globals)
	if checked == 0 {
		t.Error("no policy statement found")
	}
}

func checkStatement(t *testing.T, where string, v any) {
	t.Helper()
	s, ok := v.(map[string]any)
	if !ok {
		t.Errorf("%s is not a statement: %s", where, describe(v))
		return
	}
	if s["Effect"] != "Allow" {
		return // a Deny only narrows
	}
	for _, k := range []string{"NotAction", "NotResource"} {
		if _, ok := s[k]; ok {
			t.Errorf("%s: Allow with %s grants everything else", where, k)
		}
	}
	if _, ok := s["Resource"]; !ok {
		t.Errorf("%s: no Resource", where)
	}
	for _, a := range asList(s["Action"]) {
		if strings.Contains(describe(a), "*") {
			t.Errorf("%s: wildcard action %s", where, describe(a))
		}
	}
	for _, r := range asList(s["Resource"]) {
		str, ok := r.(string)
		if !ok {
			str, ok = subOf(r)
		}
		if ok && (str == "*" || wildARNScope(str)) {
			t.Errorf("%s: wildcard resource %s", where, describe(r))
		}
	}
}

func TestConnectionsTableHasTheIndexAndTTLTheStoreUses(t *testing.T) {
	tpl := loadRepoTemplate(t)
	table, ok := tpl.Resources["ConnectionsTable"]
	if !ok || table.Type != "AWS::DynamoDB::Table" {
		t.Fatalf("no AWS::DynamoDB::Table ConnectionsTable")
	}
	var gsi any
	for _, ix := range asList(table.Properties["GlobalSecondaryIndexes"]) {
		if dig(ix, "IndexName") == "byConnection" {
			gsi = ix
		}
	}
	if gsi == nil {
		t.Fatal("no global secondary index byConnection")
	}
	keys := asList(dig(gsi, "KeySchema"))
	if len(keys) != 1 || dig(keys[0], "AttributeName") != "connectionId" || dig(keys[0], "KeyType") != "HASH" {
		t.Errorf("byConnection KeySchema = %s, want connectionId HASH", describe(keys))
	}
	if dig(gsi, "Projection", "ProjectionType") != "ALL" {
		t.Errorf("byConnection projects %v, want ALL: $disconnect needs the owner and client id", dig(gsi, "Projection"))
	}
	ttl := table.Properties["TimeToLiveSpecification"]
	if dig(ttl, "AttributeName") != "expiresAt" || dig(ttl, "Enabled") != true {
		t.Errorf("TimeToLiveSpecification = %s, want expiresAt enabled", describe(ttl))
	}
}

func TestEachRouteInvokesItsFunctionWithAScopedPermission(t *testing.T) {
	tpl := loadRepoTemplate(t)
	apis := tpl.ofType("AWS::ApiGatewayV2::Api")
	if len(apis) != 1 {
		t.Fatalf("WebSocket APIs %v, want one", apis)
	}
	api := apis[0]
	ap := tpl.Resources[api].Properties
	if ap["ProtocolType"] != "WEBSOCKET" || ap["RouteSelectionExpression"] != "$request.body.action" {
		t.Errorf("%s: ProtocolType %v, RouteSelectionExpression %v; want WEBSOCKET, $request.body.action",
			api, ap["ProtocolType"], ap["RouteSelectionExpression"])
	}
	routes := map[string]string{} // route key -> route id
	for _, id := range tpl.ofType("AWS::ApiGatewayV2::Route") {
		key, _ := tpl.Resources[id].Properties["RouteKey"].(string)
		routes[key] = id
	}
	if len(routes) != len(routeFunctions) {
		t.Errorf("routes %v, want exactly %v", routes, slices.Sorted(maps.Keys(routeFunctions)))
	}
	for key, fn := range routeFunctions {
		id, ok := routes[key]
		if !ok {
			t.Errorf("no route %s", key)
			continue
		}
		rp := tpl.Resources[id].Properties
		if r, _ := refOf(rp["ApiId"]); r != api {
			t.Errorf("route %s: ApiId %s, want Ref(%s)", key, describe(rp["ApiId"]), api)
		}
		target, _ := subOf(rp["Target"])
		integration := strings.TrimSuffix(strings.TrimPrefix(target, "integrations/${"), "}")
		ip := tpl.Resources[integration].Properties
		if tpl.Resources[integration].Type != "AWS::ApiGatewayV2::Integration" {
			t.Errorf("route %s: Target %s is not integrations/${<an AWS::ApiGatewayV2::Integration>}", key, describe(rp["Target"]))
		} else {
			uri, _ := subOf(ip["IntegrationUri"])
			if ip["IntegrationType"] != "AWS_PROXY" || !strings.Contains(uri, ":lambda:path/2015-03-31/functions/${"+fn+".Arn}/invocations") {
				t.Errorf("route %s: integration %s is %v to %s, want AWS_PROXY to %s's invocation ARN", key, integration, ip["IntegrationType"], describe(ip["IntegrationUri"]), fn)
			}
		}
		// The permission lets this API's stage invoke the function for this
		// route only.
		sourceARN := regexp.MustCompile(`^arn:\$\{AWS::Partition\}:execute-api:\$\{AWS::Region\}:\$\{AWS::AccountId\}:\$\{` + api + `\}/\$\{StageName\}/` + regexp.QuoteMeta(key) + `$`)
		found := false
		for _, pid := range tpl.ofType("AWS::Lambda::Permission") {
			pp := tpl.Resources[pid].Properties
			if f, _ := refOf(pp["FunctionName"]); f != fn {
				continue
			}
			src, _ := subOf(pp["SourceArn"])
			if pp["Principal"] == "apigateway.amazonaws.com" && pp["Action"] == "lambda:InvokeFunction" && sourceARN.MatchString(src) {
				found = true
			}
		}
		if !found {
			t.Errorf("route %s: no AWS::Lambda::Permission for apigateway.amazonaws.com to invoke %s with SourceArn %s", key, fn, sourceARN)
		}
	}

	// $default answers the sender: two-way, through a $default route response.
	if id, ok := routes["$default"]; ok {
		if got := tpl.Resources[id].Properties["RouteResponseSelectionExpression"]; got != "$default" {
			t.Errorf("$default route: RouteResponseSelectionExpression = %v, want $default", got)
		}
		found := false
		for _, rr := range tpl.ofType("AWS::ApiGatewayV2::RouteResponse") {
			p := tpl.Resources[rr].Properties
			if r, _ := refOf(p["RouteId"]); r == id && p["RouteResponseKey"] == "$default" {
				found = true
			}
		}
		if !found {
			t.Error("$default route has no AWS::ApiGatewayV2::RouteResponse with RouteResponseKey $default")
		}
	}

	for _, pid := range tpl.ofType("AWS::Lambda::Permission") {
		if _, ok := tpl.Resources[pid].Properties["SourceArn"]; !ok {
			t.Errorf("%s: an AWS::Lambda::Permission without SourceArn lets any API or account invoke the function", pid)
		}
	}
}

func TestStageIsDeployedAndThrottled(t *testing.T) {
	tpl := loadRepoTemplate(t)
	stages := tpl.ofType("AWS::ApiGatewayV2::Stage")
	if len(stages) != 1 {
		t.Fatalf("stages %v, want one", stages)
	}
	p := tpl.Resources[stages[0]].Properties
	if r, _ := refOf(p["StageName"]); r != "StageName" {
		t.Errorf("StageName = %s, want Ref(StageName): MANAGEMENT_API_ENDPOINT and the permissions use the parameter", describe(p["StageName"]))
	}
	if dig(tpl.Parameters, "StageName", "Default") != "prod" {
		t.Errorf("parameter StageName defaults to %v, want prod", dig(tpl.Parameters, "StageName", "Default"))
	}
	// Without either, the stage serves no deployment and every connect fails.
	if p["AutoDeploy"] != true && p["DeploymentId"] == nil {
		t.Error("the stage has neither AutoDeploy: true nor a DeploymentId")
	}
	for _, k := range []string{"ThrottlingBurstLimit", "ThrottlingRateLimit"} {
		if dig(p, "DefaultRouteSettings", k) == nil {
			t.Errorf("DefaultRouteSettings.%s is not set", k)
		}
	}
}

func TestJobEventsQueueFeedsJobEventsFunctionInOrder(t *testing.T) {
	tpl := loadRepoTemplate(t)
	const fn = "JobEventsFunction"
	// The event source: a raw mapping or the function's SAM SQS event.
	var queue string
	var source map[string]any
	for _, id := range tpl.ofType("AWS::Lambda::EventSourceMapping") {
		p := tpl.Resources[id].Properties
		if f, _ := refOf(p["FunctionName"]); f == fn {
			queue, _, _ = getAttOf(p["EventSourceArn"])
			source = p
		}
	}
	for _, ev := range mapValues(tpl.functionProps(fn)["Events"]) {
		if dig(ev, "Type") == "SQS" {
			queue, _, _ = getAttOf(dig(ev, "Properties", "Queue"))
			source, _ = dig(ev, "Properties").(map[string]any)
		}
	}
	if source == nil {
		t.Fatalf("no SQS event source for %s", fn)
	}
	if !slices.Contains(stringList(source["FunctionResponseTypes"]), "ReportBatchItemFailures") {
		t.Errorf("event source FunctionResponseTypes = %v, want ReportBatchItemFailures: the handler reports failed records", source["FunctionResponseTypes"])
	}
	if source["BatchSize"] == nil {
		t.Error("event source has no BatchSize")
	}
	if r, ok := refOf(source["BatchSize"]); ok {
		if max, _ := dig(tpl.Parameters, r, "MaxValue").(float64); max == 0 || max > 10 {
			t.Errorf("BatchSize parameter %s allows %v, more than a FIFO queue's 10", r, dig(tpl.Parameters, r, "MaxValue"))
		}
	}

	q, ok := tpl.Resources[queue]
	if !ok || q.Type != "AWS::SQS::Queue" {
		t.Fatalf("event source queue %q is not an AWS::SQS::Queue of the template", queue)
	}
	if q.Properties["FifoQueue"] != true {
		t.Errorf("%s is not FIFO: one job's events would overtake each other", queue)
	}
	timeout, _ := tpl.functionProps(fn)["Timeout"].(float64)
	if timeout == 0 {
		timeout = 3 // Lambda's default
	}
	if vt, _ := q.Properties["VisibilityTimeout"].(float64); vt < 6*timeout {
		t.Errorf("%s VisibilityTimeout = %v, want at least 6 x %s's timeout (%v)", queue, q.Properties["VisibilityTimeout"], fn, 6*timeout)
	}
	dlq, _, _ := getAttOf(dig(q.Properties, "RedrivePolicy", "deadLetterTargetArn"))
	if d, ok := tpl.Resources[dlq]; !ok || d.Type != "AWS::SQS::Queue" || d.Properties["FifoQueue"] != true {
		t.Errorf("%s RedrivePolicy.deadLetterTargetArn = %s, want a FIFO queue of the template", queue, describe(dig(q.Properties, "RedrivePolicy", "deadLetterTargetArn")))
	}
	if n, _ := dig(q.Properties, "RedrivePolicy", "maxReceiveCount").(float64); n < 1 {
		t.Errorf("%s RedrivePolicy.maxReceiveCount = %v", queue, dig(q.Properties, "RedrivePolicy", "maxReceiveCount"))
	}
}

func TestUploadsUnderThePrefixInvokeS3UploadFunction(t *testing.T) {
	tpl := loadRepoTemplate(t)
	const fn = "S3UploadFunction"
	var bucket string
	for _, ev := range mapValues(tpl.functionProps(fn)["Events"]) {
		if dig(ev, "Type") != "S3" {
			continue
		}
		bucket, _ = refOf(dig(ev, "Properties", "Bucket"))
		if got := stringList(dig(ev, "Properties", "Events")); !slices.Equal(got, []string{"s3:ObjectCreated:*"}) {
			t.Errorf("S3 event Events = %v, want s3:ObjectCreated:*", got)
		}
		rules := asList(dig(ev, "Properties", "Filter", "S3Key", "Rules"))
		if len(rules) != 1 || dig(rules[0], "Name") != "prefix" || describe(dig(rules[0], "Value")) != "Ref(UploadPrefix)" {
			t.Errorf("S3 event filter = %s, want prefix Ref(UploadPrefix)", describe(rules))
		}
	}
	if dig(tpl.Parameters, "UploadPrefix", "Default") != "uploads/" {
		t.Errorf("parameter UploadPrefix defaults to %v, want uploads/", dig(tpl.Parameters, "UploadPrefix", "Default"))
	}
	b, ok := tpl.Resources[bucket]
	if !ok || b.Type != "AWS::S3::Bucket" {
		t.Fatalf("%s has no S3 event on a bucket of the template (got %q)", fn, bucket)
	}
	for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
		if dig(b.Properties, "PublicAccessBlockConfiguration", k) != true {
			t.Errorf("%s: PublicAccessBlockConfiguration.%s is not true", bucket, k)
		}
	}
	rules := asList(dig(b.Properties, "BucketEncryption", "ServerSideEncryptionConfiguration"))
	if len(rules) == 0 || dig(rules[0], "ServerSideEncryptionByDefault", "SSEAlgorithm") == nil {
		t.Errorf("%s has no default encryption", bucket)
	}
}

func TestOutputsNameWhatClientsAndProducersUse(t *testing.T) {
	tpl := loadRepoTemplate(t)
	want := map[string]string{
		"WebSocketURL":          "Sub(wss://${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${WebSocketStage})",
		"ManagementApiEndpoint": "Sub(https://${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${WebSocketStage})",
		"JobEventsQueueURL":     "Ref(JobEventsQueue)",
		"UploadBucketName":      "Ref(UploadBucket)",
		"ConnectionsTableName":  "Ref(ConnectionsTable)",
	}
	for name, value := range want {
		if got := describe(dig(tpl.Outputs, name, "Value")); got != value {
			t.Errorf("output %s = %s, want %s", name, got, value)
		}
	}
}

// cfnLintFalsePositive is a message cfn-lint 1.9.7 reports for a valid
// template: its resource specification (2.29.0) predates the property, or
// its own handling is wrong. Each is matched by path and message, and each
// hides only what another check in this file verifies.
type cfnLintFalsePositive struct {
	path, message *regexp.Regexp
	why           string
}

var cfnLintFalsePositives = []cfnLintFalsePositive{
	{
		regexp.MustCompile(`^Globals > Function$`),
		regexp.MustCompile(`^Invalid or unsupported SAM Globals property name: (Architectures|LoggingConfig)$`),
		"Lambda properties newer than its SAM spec (checked by TestFunctionsAreBuiltForProvidedAL2023OnArm64)",
	},
	{
		regexp.MustCompile(`^Resources > \w+ > Properties > (Architectures|LoggingConfig)$`),
		regexp.MustCompile(`^(Architectures|LoggingConfig) is not a valid property of AWS::Serverless::Function$`),
		"Lambda properties newer than its SAM spec",
	},
	{
		regexp.MustCompile(`^Resources > \w+ > Properties > AutoDeploy$`),
		regexp.MustCompile(`^AutoDeploy is not a valid property of AWS::ApiGatewayV2::Stage$`),
		"Stage AutoDeploy is newer than its spec",
	},
	{
		regexp.MustCompile(`^Resources > \w+ > Properties$`),
		regexp.MustCompile(`^Required property DeploymentId missing for type AWS::ApiGatewayV2::Stage$`),
		"with AutoDeploy the stage needs no DeploymentId (TestStageIsDeployedAndThrottled requires one of the two)",
	},
	{
		regexp.MustCompile(`^Resources > \w+ > Properties > FunctionResponseTypes$`),
		regexp.MustCompile(`^FunctionResponseTypes is not a valid property of AWS::Lambda::EventSourceMapping$`),
		"partial batch responses are newer than its spec (checked by TestJobEventsQueueFeedsJobEventsFunctionInOrder)",
	},
	{
		regexp.MustCompile(`^Resources > \w+ > Properties > SourceArn$`),
		regexp.MustCompile(`^Expecting an ARN, got 'arn:\$\{aws\}:execute-api:`),
		"its Fn::Sub leaves ${} around each substituted value, so an ARN built with ${AWS::Partition} fails its arn:aws prefix test (the SourceArns are checked by TestEachRouteInvokesItsFunctionWithAScopedPermission)",
	},
	{
		regexp.MustCompile(`^Resources > \w+ > Properties > Events > \w+ > Properties > Filter > S3Key > Rules$`),
		regexp.MustCompile(`^Expecting a JSON object, got \[`),
		"it checks the list inside a SAM S3 event's Json-typed S3Key as if it were the object itself (checked by TestUploadsUnderThePrefixInvokeS3UploadFunction)",
	},
	{
		regexp.MustCompile(`^Resources > \w+$`),
		regexp.MustCompile(`^Resource \w+ has an invalid Type of AWS::CloudFront::Function\.$`),
		"CloudFront Functions are newer than its spec (checked by cloudfront_test.go)",
	},
	{
		regexp.MustCompile(`^Resources > \w+ > Properties > DistributionConfig > DefaultCacheBehavior > (CachePolicyId|OriginRequestPolicyId|FunctionAssociations)$`),
		regexp.MustCompile(`^(CachePolicyId|OriginRequestPolicyId|FunctionAssociations) is not a valid property of AWS::CloudFront::Distribution\.DefaultCacheBehavior$`),
		"cache and origin request policies and function associations are newer than its spec (checked by cloudfront_test.go)",
	},
	{
		regexp.MustCompile(`^Resources > \w+ > Properties > DistributionConfig > DefaultCacheBehavior$`),
		regexp.MustCompile(`^Required property ForwardedValues missing for type AWS::CloudFront::Distribution\.DefaultCacheBehavior$`),
		"ForwardedValues is the legacy alternative to a cache policy, and must be absent beside one",
	},
}

// cfnLintScript runs cfn-lint's validator on a file and prints its result as
// JSON. The validator is what `cfn-lint validate <file>` runs; its API gives
// each message's path and text without the CLI's colours and layout.
const cfnLintScript = `
const [pkg, file] = process.argv.slice(1);
const result = require(pkg).validateFile(file);
process.stdout.write(JSON.stringify(result));
`

type cfnLintResult struct {
	TemplateValid bool `json:"templateValid"`
	Errors        map[string][]struct {
		Message  string `json:"message"`
		Resource string `json:"resource"`
	} `json:"errors"`
}

func TestTemplatePassesCfnLint(t *testing.T) {
	node := testenv.Node(t)
	pkg := filepath.Join(testenv.NodeModules(t), "cfn-lint")
	manifest, err := os.ReadFile(filepath.Join(pkg, "package.json"))
	if err != nil {
		t.Fatalf("cfn-lint is not installed in %s: run `make test` (it runs `npm ci` in infra/node)", pkg)
	}
	var meta struct{ Version string }
	if err := json.Unmarshal(manifest, &meta); err != nil || meta.Version != "1.9.7" {
		t.Fatalf("cfn-lint %q installed, want 1.9.7: the known false positives below are that version's", meta.Version)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "-e", cfnLintScript, pkg, filepath.Join(testenv.RepoRoot(t), "template.yaml"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("cfn-lint failed (%v):\n%s%s", err, stdout.String(), stderr.String())
	}
	var res cfnLintResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("cfn-lint output is not its JSON result (%v):\n%s%s", err, stdout.String(), stderr.String())
	}
	if res.Errors == nil {
		t.Fatalf("cfn-lint result has no errors section:\n%s", stdout.String())
	}
	for _, level := range []string{"crit", "warn", "info"} {
		for _, e := range res.Errors[level] {
			if fp := matchFalsePositive(e.Resource, e.Message); fp != nil {
				t.Logf("known false positive (%s): %s: %s", fp.why, e.Resource, e.Message)
				continue
			}
			if level == "info" {
				t.Logf("cfn-lint info: %s: %s", e.Resource, e.Message)
				continue
			}
			t.Errorf("cfn-lint %s: %s: %s", level, e.Resource, e.Message)
		}
	}
}

func matchFalsePositive(path, message string) *cfnLintFalsePositive {
	for i, fp := range cfnLintFalsePositives {
		if fp.path.MatchString(path) && fp.message.MatchString(message) {
			return &cfnLintFalsePositives[i]
		}
	}
	return nil
}

func TestWildARNScope(t *testing.T) {
	for arn, want := range map[string]bool{
		"arn:aws:dynamodb:*:*:table/x":       true,
		"arn:*:sqs:eu-west-1:123456789012:q": true,
		"arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/${StageName}/POST/@connections/*": false,
		"arn:aws:s3:::bucket/*":                      false,
		"${ConnectionsTable.Arn}/index/byConnection": false,
	} {
		if got := wildARNScope(arn); got != want {
			t.Errorf("wildARNScope(%q) = %v, want %v", arn, got, want)
		}
	}
}
