package template_test

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wsnotify/wsnotify/shared/publishapi"
	"github.com/wsnotify/wsnotify/shared/testenv"
)

// publishAPI is the HTTP API's logical id.
const publishAPI = "PublishApi"

// publishRoutes are the publish API's routes: their keys, as
// shared/publishapi dispatches on them, and the path of their execute-api
// ARN, a path parameter being any one segment.
var publishRoutes = []struct{ key, arnPath string }{
	{publishapi.RoutePublish, "POST/v1/publish"},
	{publishapi.RouteConnections, "GET/v1/owners/*/connections"},
}

// TestThePublishAPIIsIAMAuthorized: an HTTP API whose two routes take
// AWS_IAM authorization, both integrated with PublishFunction in payload
// format 2.0 (the events the handler decodes), on an auto-deployed,
// throttled $default stage with access logs, and a stack output with its URL.
func TestThePublishAPIIsIAMAuthorized(t *testing.T) {
	tpl := repoTemplate(t)
	api := props(t, tpl, publishAPI, "AWS::ApiGatewayV2::Api")
	if api["ProtocolType"] != "HTTP" {
		t.Errorf("%s: ProtocolType %v, want HTTP", publishAPI, api["ProtocolType"])
	}
	var keys []string
	for _, id := range tpl.OfType("AWS::ApiGatewayV2::Route") {
		p := tpl.Resources[id].Properties
		if describe(p["ApiId"]) != "Ref("+publishAPI+")" {
			continue
		}
		keys = append(keys, describe(p["RouteKey"]))
		if p["AuthorizationType"] != "AWS_IAM" {
			t.Errorf("route %s: AuthorizationType %v, want AWS_IAM", id, p["AuthorizationType"])
		}
		if got := describe(p["Target"]); got != "Sub(integrations/${PublishIntegration})" {
			t.Errorf("route %s: target %s, want PublishIntegration", id, got)
		}
	}
	want := []string{publishRoutes[0].key, publishRoutes[1].key}
	slices.Sort(want)
	slices.Sort(keys)
	if !slices.Equal(keys, want) {
		t.Errorf("routes %v, want %v", keys, want)
	}
	ip := props(t, tpl, "PublishIntegration", "AWS::ApiGatewayV2::Integration")
	uri := "Sub(arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${PublishFunction.Arn}/invocations)"
	if ip["IntegrationType"] != "AWS_PROXY" || describe(ip["IntegrationUri"]) != uri || ip["PayloadFormatVersion"] != "2.0" {
		t.Errorf("PublishIntegration: %v to %s, payload %v; want AWS_PROXY to PublishFunction, 2.0", ip["IntegrationType"], describe(ip["IntegrationUri"]), ip["PayloadFormatVersion"])
	}
	stage := props(t, tpl, "PublishApiStage", "AWS::ApiGatewayV2::Stage")
	if describe(stage["ApiId"]) != "Ref("+publishAPI+")" || stage["StageName"] != "$default" || stage["AutoDeploy"] != true {
		t.Errorf("PublishApiStage: %s %v AutoDeploy %v; want the API's $default stage, auto-deployed", describe(stage["ApiId"]), stage["StageName"], stage["AutoDeploy"])
	}
	for _, k := range []string{"ThrottlingBurstLimit", "ThrottlingRateLimit"} {
		if dig(stage, "DefaultRouteSettings", k) == nil {
			t.Errorf("PublishApiStage: no %s", k)
		}
	}
	if dig(stage, "AccessLogSettings", "Format") == nil {
		t.Error("PublishApiStage writes no access log")
	}
	if got := describe(tpl.Outputs["PublishApiURL"]["Value"]); got != "Sub(https://${PublishApi}.execute-api.${AWS::Region}.${AWS::URLSuffix})" {
		t.Errorf("output PublishApiURL = %s", got)
	}
}

// samFunctionURLs prints, as JSON, every AWS::Lambda::Url the SAM transform
// makes of template.yaml, and every AWS::Lambda::Permission it adds for one
// (what `sam deploy` has CloudFormation create).
const samFunctionURLs = `
import json, os, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse
class NoManagedPolicies:
    def load(self):
        return {}
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
tpl = yaml_parse(open(sys.argv[1], encoding="utf-8").read())
tpl.setdefault("Globals", {}).setdefault("Function", {})["CodeUri"] = "s3://bucket/key"
for res in tpl["Resources"].values():
    if res.get("Type") == "AWS::Serverless::Function":
        res.setdefault("Properties", {}).pop("CodeUri", None)
out = transform(tpl, {}, NoManagedPolicies())["Resources"]
json.dump({k: v for k, v in out.items() if v["Type"] == "AWS::Lambda::Url" or
           (v["Type"] == "AWS::Lambda::Permission" and "FunctionUrlAuthType" in v["Properties"])}, sys.stdout)
`

// TestThePublishFunctionURLIsIAMAuthorized: the SAM transform gives
// PublishFunction one function URL, authorized by IAM and granted to no
// one by a resource policy (a caller's own policy must allow
// lambda:InvokeFunctionUrl), and it is the only function URL of the stack;
// the stack outputs it. Its requests reach the same handler as the HTTP
// API's (shared/publishapi, tested over both event shapes).
func TestThePublishFunctionURLIsIAMAuthorized(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is not on PATH: install Python 3 with aws-sam-translator")
	}
	out, err := exec.Command(python, "-c", samFunctionURLs, filepath.Join(testenv.RepoRoot(t), "template.yaml")).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("the SAM transform: %v\n%s", err, stderr)
	}
	var got map[string]struct {
		Type       string
		Properties map[string]any
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("the transform's output: %v\n%s", err, out)
	}
	if len(got) != 1 {
		t.Fatalf("the transform makes %d function URLs and URL permissions, want PublishFunction's URL alone: %s", len(got), out)
	}
	url, ok := got["PublishFunctionUrl"]
	if !ok || url.Type != "AWS::Lambda::Url" {
		t.Fatalf("no AWS::Lambda::Url PublishFunctionUrl: %s", out)
	}
	if url.Properties["AuthType"] != "AWS_IAM" || describe(url.Properties["TargetFunctionArn"]) != "Ref(PublishFunction)" {
		t.Errorf("PublishFunctionUrl: AuthType %v, target %s; want AWS_IAM on PublishFunction", url.Properties["AuthType"], describe(url.Properties["TargetFunctionArn"]))
	}
	if got := describe(repoTemplate(t).Outputs["PublishFunctionUrl"]["Value"]); got != "GetAtt(PublishFunctionUrl.FunctionUrl)" {
		t.Errorf("output PublishFunctionUrl = %s", got)
	}
}
