package template

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

const intrinsics = `
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
    Default: prod
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Globals:
  Function:
    Timeout: 10
Resources:
  Fn:
    Type: AWS::Serverless::Function
    DependsOn: Table
    Properties:
      Environment:
        Variables:
          TABLE: !Ref Table
          ARN: !GetAtt Table.Arn
          STREAM: !GetAtt [Table, StreamArn]
          URL: !Sub "https://${Api}.execute-api.${AWS::Region}.amazonaws.com/${Stage}"
          MODE: !If [IsProd, fast, !Ref AWS::NoValue]
          JOINED: !Join ["", [a, !Ref Stage]]
          SUBLIST: !Sub
            - "${A}-x"
            - A: !Ref Stage
  Table:
    Type: AWS::DynamoDB::Table
    Condition: IsProd
    Properties:
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      ProvisionedThroughput: {ReadCapacityUnits: 5, WriteCapacityUnits: 1}
`

func TestLoad(t *testing.T) {
	tpl, err := Load([]byte(intrinsics))
	if err != nil {
		t.Fatal(err)
	}
	fn, err := tpl.Resource("Fn", "AWS::Serverless::Function")
	if err != nil {
		t.Fatal(err)
	}
	var props struct {
		Environment struct {
			Variables map[string]any `yaml:"Variables"`
		} `yaml:"Environment"`
	}
	if err := fn.DecodeProperties(&props); err != nil {
		t.Fatal(err)
	}
	vars := props.Environment.Variables
	for name, want := range map[string]any{
		"TABLE":  map[string]any{"Ref": "Table"},
		"ARN":    map[string]any{"Fn::GetAtt": []any{"Table", "Arn"}},
		"STREAM": map[string]any{"Fn::GetAtt": []any{"Table", "StreamArn"}},
		"URL":    map[string]any{"Fn::Sub": "https://${Api}.execute-api.${AWS::Region}.amazonaws.com/${Stage}"},
		"MODE":   map[string]any{"Fn::If": []any{"IsProd", "fast", map[string]any{"Ref": "AWS::NoValue"}}},
		"JOINED": map[string]any{"Fn::Join": []any{"", []any{"a", map[string]any{"Ref": "Stage"}}}},
		"SUBLIST": map[string]any{"Fn::Sub": []any{"${A}-x", map[string]any{
			"A": map[string]any{"Ref": "Stage"},
		}}},
	} {
		t.Run(name+" reads in long form", func(t *testing.T) {
			if !reflect.DeepEqual(vars[name], want) {
				t.Fatalf("%s = %#v, want %#v", name, vars[name], want)
			}
		})
	}
	t.Run("the generic Properties map holds the same long forms", func(t *testing.T) {
		env := fn.Properties["Environment"].(map[string]any)["Variables"].(map[string]any)
		if !reflect.DeepEqual(env, vars) {
			t.Fatalf("Properties = %#v, want %#v", env, vars)
		}
	})
	t.Run("conditions, globals and resource attributes are kept", func(t *testing.T) {
		if got := tpl.Conditions["IsProd"]; !reflect.DeepEqual(got, map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "Stage"}, "prod"}}) {
			t.Errorf("Conditions.IsProd = %#v", got)
		}
		if tpl.Globals["Function"]["Timeout"] != 10 {
			t.Errorf("Globals = %#v", tpl.Globals)
		}
		if !reflect.DeepEqual(fn.DependsOn, []string{"Table"}) || tpl.Resources["Table"].Condition != "IsProd" {
			t.Errorf("DependsOn = %v, Condition = %q", fn.DependsOn, tpl.Resources["Table"].Condition)
		}
	})
	t.Run("a provisioned table keeps its throughput", func(t *testing.T) {
		in, err := tpl.CreateTableInput("Table", "t")
		if err != nil {
			t.Fatal(err)
		}
		if in.ProvisionedThroughput == nil || aws.ToInt64(in.ProvisionedThroughput.ReadCapacityUnits) != 5 {
			t.Fatalf("ProvisionedThroughput = %+v", in.ProvisionedThroughput)
		}
	})
}

func TestLoadErrors(t *testing.T) {
	for name, src := range map[string]string{
		"an empty file":                "",
		"a template with no resources": "Description: nothing\n",
		"a malformed !GetAtt":          "Resources:\n  A:\n    Type: X\n    Properties:\n      B: !GetAtt NoDot\n",
		"broken YAML":                  "Resources: [\n",
	} {
		t.Run(name+" is refused", func(t *testing.T) {
			if _, err := Load([]byte(src)); err == nil || !strings.HasPrefix(err.Error(), "parse template: ") {
				t.Fatalf("Load = %v, want a parse error", err)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(path, []byte(intrinsics), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(path); err != nil {
		t.Fatalf("LoadFile: %v", err)
	}
	if _, err := LoadFile(path + ".missing"); err == nil {
		t.Fatal("LoadFile of a missing file succeeded")
	}
}

func TestConnectionsTableInput(t *testing.T) {
	tpl, err := Repo()
	if err != nil {
		t.Fatal(err)
	}
	in, err := tpl.CreateTableInput(ConnectionsTable, "conns")
	if err != nil {
		t.Fatal(err)
	}
	want := &dynamodb.CreateTableInput{
		TableName:   aws.String("conns"),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange},
		},
	}
	if !reflect.DeepEqual(in, want) {
		t.Fatalf("CreateTableInput =\n%s\nwant\n%s", dump(in), dump(want))
	}
	if attr, err := tpl.TimeToLiveAttribute(ConnectionsTable); err != nil || attr != "expiresAt" {
		t.Fatalf("TimeToLiveAttribute = %q, %v", attr, err)
	}
}

func dump(in *dynamodb.CreateTableInput) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name=%s billing=%s\n", aws.ToString(in.TableName), in.BillingMode)
	for _, a := range in.AttributeDefinitions {
		fmt.Fprintf(&b, "attr %s %s\n", aws.ToString(a.AttributeName), a.AttributeType)
	}
	for _, k := range in.KeySchema {
		fmt.Fprintf(&b, "key %s %s\n", aws.ToString(k.AttributeName), k.KeyType)
	}
	for _, ix := range in.GlobalSecondaryIndexes {
		fmt.Fprintf(&b, "gsi %s %v %+v\n", aws.ToString(ix.IndexName), ix.KeySchema, ix.Projection)
	}
	return b.String()
}

func TestTableErrors(t *testing.T) {
	tpl, err := Load([]byte(intrinsics))
	if err != nil {
		t.Fatal(err)
	}
	tpl.Resources["Table"].Properties["StreamSpecification"] = map[string]any{"StreamViewType": "NEW_IMAGE"}
	for _, tc := range []struct{ name, id, want string }{
		{"an unknown resource", "Nope", "template has no resource Nope"},
		{"a resource of another type", "Fn", "resource Fn is a AWS::Serverless::Function, not a AWS::DynamoDB::Table"},
		{"a property that would change the table", "Table", "table Table: unsupported properties [StreamSpecification]"},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			if _, err := tpl.CreateTableInput(tc.id, "t"); err == nil || err.Error() != tc.want {
				t.Fatalf("CreateTableInput = %v, want %q", err, tc.want)
			}
		})
	}
}

const withGlobals = `
Globals:
  Function:
    Runtime: provided.al2023
    Timeout: 10
    Layers: [!Ref Shared]
    Tags: {team: core}
    Environment:
      Variables:
        TABLE: !Ref Table
        LEVEL: info
Resources:
  Plain:
    Type: AWS::Serverless::Function
  Own:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 120
      Layers: [!Ref Extra]
      Tags: !Ref AWS::NoValue
      Environment:
        Variables:
          LEVEL: debug
          PREFIX: !Ref Prefix
  Table:
    Type: AWS::DynamoDB::Table
`

func TestFunctionPropertiesMergeGlobalsAsSAMDoes(t *testing.T) {
	tpl, err := Load([]byte(withGlobals))
	if err != nil {
		t.Fatal(err)
	}
	ref := func(id string) map[string]any { return map[string]any{"Ref": id} }
	for _, tc := range []struct {
		name, id string
		want     map[string]any
	}{
		{"a function without properties takes every global", "Plain", map[string]any{
			"Runtime": "provided.al2023", "Timeout": 10, "Layers": []any{ref("Shared")}, "Tags": map[string]any{"team": "core"},
			"Environment": map[string]any{"Variables": map[string]any{"TABLE": ref("Table"), "LEVEL": "info"}},
		}},
		{"scalars replace, maps merge key by key, lists append, an intrinsic replaces a map", "Own", map[string]any{
			"Runtime": "provided.al2023", "Timeout": 120, "Layers": []any{ref("Shared"), ref("Extra")}, "Tags": ref("AWS::NoValue"),
			"Environment": map[string]any{"Variables": map[string]any{"TABLE": ref("Table"), "LEVEL": "debug", "PREFIX": ref("Prefix")}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tpl.FunctionProperties(tc.id)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("FunctionProperties(%s) = %#v, %v\nwant %#v", tc.id, got, err, tc.want)
			}
		})
	}
	t.Run("the result shares nothing with the template", func(t *testing.T) {
		got, _ := tpl.FunctionProperties("Plain")
		got["Environment"].(map[string]any)["Variables"].(map[string]any)["TABLE"] = "changed"
		got["Layers"].([]any)[0] = "changed"
		again, _ := tpl.FunctionProperties("Plain")
		if !reflect.DeepEqual(again["Layers"], []any{ref("Shared")}) || again["Environment"].(map[string]any)["Variables"].(map[string]any)["TABLE"] == "changed" {
			t.Fatalf("Globals changed: %#v", again)
		}
	})
	t.Run("a resource that is not a function is refused", func(t *testing.T) {
		if _, err := tpl.FunctionProperties("Table"); err == nil || !strings.Contains(err.Error(), "not a AWS::Serverless::Function") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a template without Globals gives the function's own properties", func(t *testing.T) {
		tpl, err := Load([]byte("Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties: {Timeout: 3}\n"))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := tpl.FunctionProperties("F"); err != nil || !reflect.DeepEqual(got, map[string]any{"Timeout": 3}) {
			t.Fatalf("FunctionProperties = %#v, %v", got, err)
		}
	})
	if got := tpl.OfType(FunctionType); !reflect.DeepEqual(got, []string{"Own", "Plain"}) {
		t.Errorf("OfType = %v, want [Own Plain]", got)
	}
}

// TestFunctionTimeouts holds Functions' Timeout to SAM's rules; the
// repository's own timeouts are pinned by TestTheFunctionTableComesFromTheTemplate.
func TestFunctionTimeouts(t *testing.T) {
	timeouts := func(t *testing.T, tpl *Template) map[string]time.Duration {
		t.Helper()
		fns, err := tpl.Functions()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]time.Duration{}
		for _, f := range fns {
			got[f.LogicalID] = f.Timeout
		}
		return got
	}
	tpl, err := Load([]byte(`
Globals:
  Function:
    Timeout: 10
Resources:
  Own:
    Type: AWS::Serverless::Function
    Properties: {Timeout: 120}
  Inherits:
    Type: AWS::Serverless::Function
  Table:
    Type: AWS::DynamoDB::Table
`))
	if err != nil {
		t.Fatal(err)
	}
	got := timeouts(t, tpl)
	want := map[string]time.Duration{"Own": 120 * time.Second, "Inherits": 10 * time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}

	t.Run("a function without Globals takes Lambda's default", func(t *testing.T) {
		tpl, _ := Load([]byte("Resources:\n  F:\n    Type: AWS::Serverless::Function\n"))
		if got := timeouts(t, tpl); got["F"] != DefaultFunctionTimeout {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("a Timeout out of Lambda's range is refused", func(t *testing.T) {
		for _, v := range []string{"0", "901", "ten", "1.5"} {
			tpl, _ := Load([]byte("Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties: {Timeout: " + v + "}\n"))
			if _, err := tpl.Functions(); err == nil || !strings.Contains(err.Error(), "F.Timeout") {
				t.Errorf("Timeout %s: got %v", v, err)
			}
		}
	})
}

func TestTheFunctionTableComesFromTheTemplate(t *testing.T) {
	tpl, err := Repo()
	if err != nil {
		t.Fatal(err)
	}
	fns, err := tpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fns {
		got = append(got, fmt.Sprintf("%s dir=%s timeout=%v route=%q", f.LogicalID, f.Dir, f.Timeout, f.Route))
	}
	want := []string{
		`ConnectFunction dir=connect timeout=10s route="$connect"`,
		`DefaultFunction dir=default timeout=29s route="$default"`,
		`DisconnectFunction dir=disconnect timeout=10s route="$disconnect"`,
		`FanoutFunction dir=fanout timeout=25s route=""`,
		`JobEventsFunction dir=jobevents timeout=10s route=""`,
		`PublishFunction dir=publish timeout=29s route=""`,
		`S3UploadFunction dir=s3upload timeout=30s route=""`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("functions:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	t.Run("a route to an integration that does not exist is an error", func(t *testing.T) {
		tpl, _ := Load([]byte("Resources:\n  R:\n    Type: AWS::ApiGatewayV2::Route\n    Properties:\n      RouteKey: $connect\n      Target: !Sub \"integrations/${Nope}\"\n"))
		if _, err := tpl.Functions(); err == nil || !strings.Contains(err.Error(), "no integration Nope") {
			t.Fatalf("err = %v", err)
		}
	})
}
