package testenv

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// SigV4Verifier checks a request's AWS Signature Version 4 the way the
// service does, from the request as received and the secret key. It is
// written from the published algorithm, not with an SDK, so that it can
// judge the requests the SDKs sign.
type SigV4Verifier struct {
	AccessKey, SecretKey, Region, Service string
	// SignedPayload requires what a Lambda function URL requires of a
	// request with a body (POST, PUT): the body's SHA-256 in a signed
	// X-Amz-Content-Sha256 header, since Lambda takes no unsigned payload.
	SignedPayload bool
}

// Verify returns why r's signature is not valid, or "" if it is; body is
// r's body, read already.
func (v SigV4Verifier) Verify(r *http.Request, body []byte) string {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return "no AWS4-HMAC-SHA256 authorization"
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = val
	}
	amzDate := r.Header.Get("X-Amz-Date")
	signedAt, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil || time.Since(signedAt).Abs() > 5*time.Minute {
		return fmt.Sprintf("X-Amz-Date %q is not within five minutes of now", amzDate)
	}
	scope := strings.Join([]string{amzDate[:8], v.Region, v.Service, "aws4_request"}, "/")
	if fields["Credential"] != v.AccessKey+"/"+scope {
		return fmt.Sprintf("credential %q, want %s/%s", fields["Credential"], v.AccessKey, scope)
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	if !slices.Contains(signed, "host") || !slices.Contains(signed, "x-amz-date") || !slices.IsSorted(signed) {
		return fmt.Sprintf("signed headers %q lack host or x-amz-date, or are not sorted", signed)
	}
	if r.Header.Get("X-Amz-Security-Token") != "" && !slices.Contains(signed, "x-amz-security-token") {
		return "the session token is not signed"
	}
	payload := sha256.Sum256(body)
	if v.SignedPayload && r.Method != http.MethodGet && r.Method != http.MethodHead {
		if !slices.Contains(signed, "x-amz-content-sha256") || r.Header.Get("X-Amz-Content-Sha256") != hex.EncodeToString(payload[:]) {
			return fmt.Sprintf("X-Amz-Content-Sha256 %q is not the body's signed SHA-256", r.Header.Get("X-Amz-Content-Sha256"))
		}
	}
	var canonHeaders strings.Builder
	for _, h := range signed {
		value := r.Header.Get(h)
		switch {
		case h == "host":
			value = r.Host
		case h == "content-length" && value == "":
			value = fmt.Sprint(r.ContentLength) // a server's request has it in the header, a test's not
		}
		fmt.Fprintf(&canonHeaders, "%s:%s\n", h, strings.Join(strings.Fields(value), " "))
	}
	segments := strings.Split(r.URL.EscapedPath(), "/")
	for i, s := range segments {
		segments[i] = uriEncode(s) // services other than S3 encode the path twice
	}
	canonical := strings.Join([]string{r.Method, strings.Join(segments, "/"), canonicalQuery(r.URL.Query()),
		canonHeaders.String(), fields["SignedHeaders"], hex.EncodeToString(payload[:])}, "\n")
	hashed := sha256.Sum256([]byte(canonical))
	toSign := strings.Join([]string{"AWS4-HMAC-SHA256", amzDate, scope, hex.EncodeToString(hashed[:])}, "\n")
	key := []byte("AWS4" + v.SecretKey)
	for _, part := range []string{amzDate[:8], v.Region, v.Service, "aws4_request"} {
		key = hmacSHA256(key, part)
	}
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	if !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return "signature mismatch"
	}
	return ""
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	io.WriteString(m, data)
	return m.Sum(nil)
}

// uriEncode encodes every byte but the unreserved characters.
func uriEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func canonicalQuery(q url.Values) string {
	var pairs []string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, uriEncode(k)+"="+uriEncode(v))
		}
	}
	slices.Sort(pairs)
	return strings.Join(pairs, "&")
}
