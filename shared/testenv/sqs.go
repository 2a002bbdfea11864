package testenv

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// SQS is a fake Amazon SQS endpoint for SendMessage and SendMessageBatch,
// in the JSON protocol the SDK client speaks: it records each message and
// answers as SQS does, or refuses every call once Refuse is called, or
// single entries of a batch once RefuseBodies is. Serve it with httptest
// and point a client's BaseEndpoint (or a process's AWS_ENDPOINT_URL_SQS)
// at it.
type SQS struct {
	mu       sync.Mutex
	received []map[string]any // SendMessage inputs, and each entry of a batch
	batches  int              // SendMessageBatch calls that succeeded
	status   int              // if not 0, the error status every call gets
	refuse   string           // if not "", batch entries whose body holds it fail
}

// Refuse makes every later call fail with status (0: succeed again).
func (f *SQS) Refuse(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status = status
}

// RefuseBodies makes every later batch entry whose body contains s fail on
// its own, as SQS reports one bad entry of a batch ("": none).
func (f *SQS) RefuseBodies(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refuse = s
}

// Received returns the messages received so far, as decoded JSON: the
// SendMessage inputs and the entries of SendMessageBatch calls.
func (f *SQS) Received() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.received...)
}

// Batches returns how many SendMessageBatch calls were answered.
func (f *SQS) Batches() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.batches
}

// Records returns the messages received so far as the SQS event source
// hands them to a function: message id, body, and for a FIFO queue's
// message its group and deduplication ids.
func (f *SQS) Records() []events.SQSMessage {
	var recs []events.SQSMessage
	for i, in := range f.Received() {
		rec := events.SQSMessage{MessageId: messageID(i), Attributes: map[string]string{}}
		rec.Body, _ = in["MessageBody"].(string)
		for _, attr := range []string{"MessageGroupId", "MessageDeduplicationId"} {
			if v, ok := in[attr].(string); ok {
				rec.Attributes[attr] = v
			}
		}
		recs = append(recs, rec)
	}
	return recs
}

// messageID is the id of the i-th message received.
func messageID(i int) string { return fmt.Sprintf("fake-%d", i+1) }

// ServeHTTP implements http.Handler.
func (f *SQS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	if target != "AmazonSQS.SendMessage" && target != "AmazonSQS.SendMessageBatch" {
		http.Error(w, "fake SQS: unexpected operation "+target, http.StatusBadRequest)
		return
	}
	var in map[string]any
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.status != 0 {
		w.WriteHeader(f.status)
		_, _ = io.WriteString(w, `{"__type":"com.amazonaws.sqs#InvalidMessageContents","message":"refused by the fake"}`)
		return
	}
	if target == "AmazonSQS.SendMessage" {
		id := f.add(in)
		_ = json.NewEncoder(w).Encode(map[string]string{"MessageId": id, "MD5OfMessageBody": md5Hex(in["MessageBody"])})
		return
	}
	entries, _ := in["Entries"].([]any)
	if len(entries) == 0 || len(entries) > 10 {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprintf(w, `{"__type":"com.amazonaws.sqs#TooManyEntriesInBatchRequest","message":"%d entries"}`, len(entries))
		return
	}
	type ok struct{ Id, MessageId, MD5OfMessageBody string }
	type failed struct {
		Id, Code, Message string
		SenderFault       bool
	}
	out := struct {
		Successful []ok     `json:"Successful"`
		Failed     []failed `json:"Failed"`
	}{Successful: []ok{}, Failed: []failed{}}
	for _, e := range entries {
		entry, _ := e.(map[string]any)
		id, _ := entry["Id"].(string)
		text, _ := entry["MessageBody"].(string)
		if f.refuse != "" && strings.Contains(text, f.refuse) {
			out.Failed = append(out.Failed, failed{Id: id, Code: "InvalidMessageContents", Message: "refused by the fake", SenderFault: true})
			continue
		}
		delete(entry, "Id")
		out.Successful = append(out.Successful, ok{Id: id, MessageId: f.add(entry), MD5OfMessageBody: md5Hex(text)})
	}
	f.batches++
	_ = json.NewEncoder(w).Encode(out)
}

// add records one message and returns its message id; f.mu is held.
func (f *SQS) add(in map[string]any) string {
	f.received = append(f.received, in)
	return messageID(len(f.received) - 1)
}

// md5Hex is the MD5 of a message body in hex, which the SDK checks.
func md5Hex(body any) string {
	text, _ := body.(string)
	sum := md5.Sum([]byte(text))
	return hex.EncodeToString(sum[:])
}

// InvokeJobEvents hands records to JobEventsFunction through the Lambda
// Invoke API at base (local mode's, or an emulator's), as the SQS event
// source hands a batch to the function, and returns its answer.
func InvokeJobEvents(t testing.TB, base string, recs []events.SQSMessage) events.SQSEventResponse {
	t.Helper()
	body, _ := json.Marshal(events.SQSEvent{Records: recs})
	resp, err := http.Post(base+"/2015-03-31/functions/JobEventsFunction/invocations", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out events.SQSEventResponse
	if resp.StatusCode != http.StatusOK || json.Unmarshal(data, &out) != nil {
		t.Fatalf("testenv: invoke JobEventsFunction: %d %s", resp.StatusCode, data)
	}
	return out
}
