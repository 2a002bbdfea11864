package testenv

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestDynaliteAnswersDynamoDBRequests(t *testing.T) {
	endpoint := Dynalite(t)
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader("{}"))
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.ListTables")
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00")
	req.Header.Set("X-Amz-Date", "20260101T000000Z")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"TableNames":[]`) {
		t.Fatalf("ListTables on a fresh dynalite = %d %s, want 200 with no tables", resp.StatusCode, body)
	}
}
