package testenv

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"sync"
)

// SQS is a fake Amazon SQS endpoint for SendMessage, in the JSON protocol
// the SDK client speaks: it records each message and answers as SQS does,
// or refuses every message once Refuse is called. Serve it with
// httptest and point a client's BaseEndpoint (or a process's
// AWS_ENDPOINT_URL_SQS) at it.
type SQS struct {
	mu       sync.Mutex
	received []map[string]any
	status   int // if not 0, the error status every SendMessage gets
}

// Refuse makes every later SendMessage fail with status (0: succeed again).
func (f *SQS) Refuse(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status = status
}

// Received returns the SendMessage inputs received so far, as decoded JSON.
func (f *SQS) Received() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.received...)
}

// ServeHTTP implements http.Handler.
func (f *SQS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Amz-Target") != "AmazonSQS.SendMessage" {
		http.Error(w, "fake SQS: unexpected operation "+r.Header.Get("X-Amz-Target"), http.StatusBadRequest)
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
	status := f.status
	if status == 0 {
		f.received = append(f.received, in)
	}
	f.mu.Unlock()
	if status != 0 {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"__type":"com.amazonaws.sqs#InvalidMessageContents","message":"refused by the fake"}`)
		return
	}
	text, _ := in["MessageBody"].(string)
	sum := md5.Sum([]byte(text)) // the SDK checks the body's MD5
	_ = json.NewEncoder(w).Encode(map[string]string{"MessageId": "fake-1", "MD5OfMessageBody": hex.EncodeToString(sum[:])})
}
