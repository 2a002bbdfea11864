package template_test

import (
	"slices"
	"testing"

	"github.com/wsnotify/wsnotify/shared/publishapi"
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
