package iamcheck

import (
	"slices"
	"strings"
	"testing"

	"github.com/wsnotify/wsnotify/shared/testenv"
)

func TestMatchesIAMWildcards(t *testing.T) {
	for _, tt := range []struct {
		pattern, s string
		fold, want bool
	}{
		{"arn:aws:secretsmanager:r:1:secret:name-??????", "arn:aws:secretsmanager:r:1:secret:name-AbC123", false, true},
		{"arn:aws:secretsmanager:r:1:secret:name-??????", "arn:aws:secretsmanager:r:1:secret:name-AbC12", false, false},
		{"arn:aws:secretsmanager:r:1:secret:name-??????", "arn:aws:secretsmanager:r:1:secret:other-AbC123", false, false},
		{"arn:aws:dynamodb:r:1:table/t", "arn:aws:dynamodb:r:1:table/t/index/byConnection", false, false},
		{"arn:aws:dynamodb:r:1:table/t/*", "arn:aws:dynamodb:r:1:table/t/index/byConnection", false, true},
		{"dynamodb:GetItem", "dynamodb:getitem", true, true},
		{"dynamodb:Get*", "dynamodb:GetItem", true, true},
		{"a.b", "axb", false, false}, // a dot is no wildcard
		{"*", "anything", false, true},
	} {
		if got := Matches(tt.pattern, tt.s, tt.fold); got != tt.want {
			t.Errorf("Matches(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

func TestResolveNamesWhatItLacks(t *testing.T) {
	v := Values{"T.Arn": "arn:t", "AWS::Region": "r"}
	got, err := v.resolve([]any{map[string]any{"Fn::GetAtt": []any{"T", "Arn"}}, map[string]any{"Fn::Sub": "${T.Arn}/index/i-${AWS::Region}"}, "x"})
	if err != nil || !slices.Equal(got, []string{"arn:t", "arn:t/index/i-r", "x"}) {
		t.Errorf("resolve = %v, %v", got, err)
	}
	if _, err := v.resolve(map[string]any{"Fn::Sub": "${Missing}"}); err == nil || !strings.Contains(err.Error(), "Missing") {
		t.Errorf("a missing reference: %v, want an error naming it", err)
	}
	if _, err := v.resolve(map[string]any{"Fn::ImportValue": "x"}); err == nil {
		t.Error("an unsupported intrinsic resolved")
	}
}

// TestLoadRolesReadsTheSAMTransform: the roles are the transform's, with
// what SAM adds (the basic execution policy, the upload function's
// dead-letter policy) and what Lambda uses them for.
func TestLoadRolesReadsTheSAMTransform(t *testing.T) {
	values := Values{
		"AWS::Partition": "aws", "AWS::Region": Region, "AWS::AccountId": AccountID, "AWS::URLSuffix": "amazonaws.com",
		"ConnectionsTable": "t", "ConnectionsTable.Arn": "arn:table",
		"JobEventsQueue.Arn": "arn:jobs", "JobEventsDeadLetterQueue.Arn": "arn:jobs-dlq", "S3UploadDeadLetterQueue.Arn": "arn:uploads-dlq",
		"WebSocketApi": "api", "StageName": "prod", "TokenSecretName": "s",
		"FanoutFunction": "f", "FanoutFunction.Arn": "arn:fanout",
	}
	roles, err := LoadRoles(testenv.RepoRoot(t), values)
	if err != nil {
		t.Fatal(err)
	}
	if len(roles) != len(testenv.Functions) {
		t.Fatalf("roles for %d functions, want %d", len(roles), len(testenv.Functions))
	}
	for fn, r := range roles {
		if !slices.ContainsFunc(r.Statements, func(st Statement) bool { return st.Policy == lambdaBasicExecution }) {
			t.Errorf("%s: no %s", fn, lambdaBasicExecution)
		}
	}
	if got := roles["JobEventsFunction"].EventSources; !slices.Equal(got, []string{"arn:jobs"}) {
		t.Errorf("JobEventsFunction's event sources %v, want the job queue", got)
	}
	if !slices.ContainsFunc(roles["PublishFunction"].Statements, func(st Statement) bool { return st.grants("lambda:InvokeFunction", "arn:fanout") }) {
		t.Errorf("PublishFunction's statements %+v do not let it invoke the fan-out function", roles["PublishFunction"].Statements)
	}
	up := roles["S3UploadFunction"]
	if up.DeadLetter != "arn:uploads-dlq" || !slices.ContainsFunc(up.Statements, func(st Statement) bool { return st.grants("sqs:SendMessage", "arn:uploads-dlq") }) {
		t.Errorf("S3UploadFunction: dead letter %q, statements %+v; want SAM's send to its dead-letter queue", up.DeadLetter, up.Statements)
	}
	delete(values, "StageName")
	if _, err := LoadRoles(testenv.RepoRoot(t), values); err == nil || !strings.Contains(err.Error(), "StageName") {
		t.Errorf("without StageName: %v, want an error naming it", err)
	}
}
