package template_test

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wsnotify/wsnotify/shared/testenv"
)

// These checks hold the CloudFront part of template.yaml (the seed's URL
// in front of the WebSocket API) and the signed-token secret to what the
// code and the README assume; the linter cannot see either.

// The managed policies the distribution uses, by id as CloudFront lists them.
const (
	cachingDisabled           = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
	allViewerExceptHostHeader = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
)

// seedPathFunctionFile is the CloudFront Function's own file, which
// template.yaml carries inline.
const seedPathFunctionFile = "infra/cloudfront/seed-path.js"

func TestSeedPathDistributionIsOptional(t *testing.T) {
	tpl := repoTemplate(t)
	p := tpl.Parameters["SeedPathCloudFront"]
	if p["Default"] != "false" || !reflect.DeepEqual(p["AllowedValues"], []any{"true", "false"}) {
		t.Errorf("parameter SeedPathCloudFront = %v, want true/false defaulting to false", p)
	}
	want := map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "SeedPathCloudFront"}, "true"}}
	if got := tpl.Conditions["WithSeedPath"]; !reflect.DeepEqual(got, want) {
		t.Errorf("condition WithSeedPath = %v, want %v", got, want)
	}
	// With the parameter off, a resource or output that refers to a
	// conditional one would fail the stack: each must carry the condition.
	conditional := map[string]bool{}
	for id, r := range tpl.Resources {
		if strings.HasPrefix(r.Type, "AWS::CloudFront::") {
			if r.Condition != "WithSeedPath" {
				t.Errorf("%s (%s) has condition %q, want WithSeedPath", id, r.Type, r.Condition)
			}
			conditional[id] = true
		}
	}
	if len(conditional) != 2 {
		t.Errorf("CloudFront resources %v, want the distribution and its function", conditional)
	}
	for id, r := range tpl.Resources {
		for ref := range conditional {
			if mentions(r.Properties, ref) && r.Condition != "WithSeedPath" {
				t.Errorf("%s refers to %s without condition WithSeedPath", id, ref)
			}
		}
	}
	for name, o := range tpl.Outputs {
		for ref := range conditional {
			if mentions(o["Value"], ref) && o["Condition"] != "WithSeedPath" {
				t.Errorf("output %s refers to %s without condition WithSeedPath", name, ref)
			}
		}
	}
	wantURL := map[string]any{"Fn::Sub": "wss://${SeedPathDistribution.DomainName}/api/v1/ws/"}
	if got := tpl.Outputs["SeedWebSocketURL"]["Value"]; !reflect.DeepEqual(got, wantURL) {
		t.Errorf("output SeedWebSocketURL = %v, want %v", got, wantURL)
	}
}

// mentions reports whether v refers to the logical id through Ref, GetAtt or
// a Fn::Sub placeholder.
func mentions(v any, id string) bool {
	return anyNode(v, func(n any) bool {
		switch x := n.(type) {
		case map[string]any:
			ga, _ := x["Fn::GetAtt"].([]any)
			return x["Ref"] == id || len(ga) > 0 && ga[0] == id
		case string:
			return strings.Contains(x, "${"+id+"}") || strings.Contains(x, "${"+id+".")
		}
		return false
	})
}

// anyNode reports whether match holds for v or any map value or list item
// inside it.
func anyNode(v any, match func(any) bool) bool {
	if match(v) {
		return true
	}
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			if anyNode(e, match) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if anyNode(e, match) {
				return true
			}
		}
	}
	return false
}

func TestSeedPathFunctionIsTheFileWithTheStageFilledIn(t *testing.T) {
	tpl := repoTemplate(t)
	p := props(t, tpl, "SeedPathFunction", "AWS::CloudFront::Function")
	if runtime := dig(p, "FunctionConfig", "Runtime"); runtime != "cloudfront-js-2.0" || p["AutoPublish"] != true {
		t.Errorf("runtime %v, AutoPublish %v; want cloudfront-js-2.0, true (a distribution takes only a published function)", runtime, p["AutoPublish"])
	}
	file, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), seedPathFunctionFile))
	if err != nil {
		t.Fatal(err)
	}
	code, _ := dig(p, "FunctionCode", "Fn::Sub").(string)
	if code != string(file) {
		t.Errorf("template.yaml's SeedPathFunction code differs from %s: paste the file into FunctionCode (under `!Sub |`, indented)\n%s",
			seedPathFunctionFile, firstDifference(code, string(file)))
	}
	// Fn::Sub fills in every ${…}: the file must hold the stage's and no other.
	placeholders := regexp.MustCompile(`\$\{[^}]*\}`).FindAllString(string(file), -1)
	if !slices.Equal(placeholders, []string{"${StageName}"}) || !strings.Contains(string(file), "var STAGE_PATH = '/${StageName}';") {
		t.Errorf("%s has placeholders %v, want exactly STAGE_PATH = '/${StageName}'", seedPathFunctionFile, placeholders)
	}
	if len(file) > 10*1024 {
		t.Errorf("%s is %d bytes, over CloudFront Functions' 10 KB", seedPathFunctionFile, len(file))
	}
	// The stage in the function is the stage the API serves: the stage's
	// StageName is the parameter (TestTheStageDeploysEveryChangeWithThrottling).
	// Names are account-wide, 1-64 of [A-Za-z0-9_-]; the stack id part is 36.
	sub, _ := dig(p, "Name", "Fn::Sub").([]any)
	if len(sub) != 2 {
		t.Fatalf("Name = %s, want !Sub [name, {Id: the stack id}]", describe(p["Name"]))
	}
	name := strings.ReplaceAll(sub[0].(string), "${Id}", strings.Repeat("x", 36))
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`).MatchString(name) {
		t.Errorf("function name %q is not 1-64 of A-Z a-z 0-9 _ -", name)
	}
}

// firstDifference shows where two texts part.
func firstDifference(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return "line " + strconv.Itoa(i+1) + ":\n\ttemplate: " + x + "\n\tfile:     " + y
		}
	}
	return "(they differ in line endings)"
}

func TestSeedPathDistributionPassesWebSocketsThroughUncached(t *testing.T) {
	d := dig(props(t, repoTemplate(t), "SeedPathDistribution", "AWS::CloudFront::Distribution"), "DistributionConfig")
	if dig(d, "Enabled") != true {
		t.Error("the distribution is not enabled")
	}
	// Standard logs record every request's query string, where the token
	// travels.
	if logging := dig(d, "Logging"); logging != nil {
		t.Errorf("Logging = %s: standard logs would record tokens", describe(logging))
	}
	origins := asList(dig(d, "Origins"))
	if len(origins) != 1 {
		t.Fatalf("origins %d, want the WebSocket API alone", len(origins))
	}
	o := origins[0]
	const wantDomain = "Sub(${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix})"
	if domain, path := describe(dig(o, "DomainName")), dig(o, "OriginPath"); domain != wantDomain || path != nil && path != "" {
		t.Errorf("origin %s%v, want %s with no origin path (the function sets /{stage})", domain, path, wantDomain)
	}
	if got := dig(o, "CustomOriginConfig", "OriginProtocolPolicy"); got != "https-only" {
		t.Errorf("OriginProtocolPolicy = %v, want https-only", got)
	}
	b := dig(d, "DefaultCacheBehavior")
	if got := dig(b, "TargetOriginId"); got != dig(o, "Id") {
		t.Errorf("default behaviour targets %v, want the origin %v", got, dig(o, "Id"))
	}
	if got := dig(b, "ViewerProtocolPolicy"); got != "https-only" {
		t.Errorf("ViewerProtocolPolicy = %v, want https-only (wss://; a WebSocket client follows no redirect)", got)
	}
	if got := dig(b, "CachePolicyId"); got != cachingDisabled {
		t.Errorf("CachePolicyId = %v, want managed CachingDisabled %s", got, cachingDisabled)
	}
	// All viewer headers (Sec-WebSocket-*) and the query string (client_id,
	// token), but Host: API Gateway answers only to its own name.
	if got := dig(b, "OriginRequestPolicyId"); got != allViewerExceptHostHeader {
		t.Errorf("OriginRequestPolicyId = %v, want managed AllViewerExceptHostHeader %s", got, allViewerExceptHostHeader)
	}
	if fv, lfa := dig(b, "ForwardedValues"), dig(b, "LambdaFunctionAssociations"); fv != nil || lfa != nil {
		t.Errorf("ForwardedValues %s, LambdaFunctionAssociations %s: want neither", describe(fv), describe(lfa))
	}
	wantARN := []string{"Ref(SeedPathFunction)", "GetAtt(SeedPathFunction.FunctionMetadata.FunctionARN)"}
	if assocs := asList(dig(b, "FunctionAssociations")); len(assocs) != 1 || dig(assocs[0], "EventType") != "viewer-request" ||
		!slices.Contains(wantARN, describe(dig(assocs[0], "FunctionARN"))) {
		t.Errorf("FunctionAssociations = %s, want SeedPathFunction on viewer-request", describe(assocs))
	}
	// Every path goes through the function, which answers 404 to the ones
	// that are not the seed's.
	if cb := dig(d, "CacheBehaviors"); cb != nil {
		t.Errorf("CacheBehaviors = %s: a path that skips the function would reach the API unchecked", describe(cb))
	}
}

func TestTokenSecretIsNamedNeverHeld(t *testing.T) {
	tpl := repoTemplate(t)
	p := tpl.Parameters["TokenSecretName"]
	if p["Default"] != "" {
		t.Errorf("TokenSecretName defaults to %v, want empty: signed tokens off until a secret is named", p["Default"])
	}
	pattern, _ := p["AllowedPattern"].(string)
	re, err := regexp.Compile(pattern)
	if err != nil {
		t.Fatalf("AllowedPattern %q: %v", pattern, err)
	}
	for name, want := range map[string]bool{"": true, "wsnotify/token-secrets": true, "prod_tokens+v2=a.b@c": true,
		"arn:aws:secretsmanager:eu-west-1:123456789012:secret:x": false, "two words": false} {
		if re.MatchString(name) != want {
			t.Errorf("AllowedPattern %s on %q: %v, want %v (Secrets Manager names: A-Z a-z 0-9 / _ + = . @ -)", pattern, name, !want, want)
		}
	}
	for id, r := range tpl.Resources {
		if strings.HasPrefix(r.Type, "AWS::SecretsManager::") {
			t.Errorf("%s is a %s: secrets live outside the stack, named by TokenSecretName", id, r.Type)
		}
	}
	// ConnectFunction's grant and variables are held exactly by
	// TestFunctionsAreGrantedExactlyWhatTheyCall and TestEachFunctionIsSetExactlyWhatItsMainReads.
	if got := tpl.Parameters["TokenMaxTTL"]["Default"]; got != "24h" {
		t.Errorf("TokenMaxTTL defaults to %v, want 24h", got)
	}
}
