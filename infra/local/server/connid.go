package server

import (
	"crypto/rand"
	"encoding/base64"
)

// newConnectionID returns an id of API Gateway's shape: 11 random bytes in
// standard base64, 16 characters ending in "=" (e.g. "TWegAcC4EowCHnA=").
// Keeping the shape means the "=" that must be path-escaped as %3D on the
// Management API, and any length or character assumption in the stores, are
// exercised locally too. API Gateway uses the same shape for request ids.
func newConnectionID() string {
	var b [11]byte
	// crypto/rand.Read never fails on supported platforms (Go 1.24+): it
	// crashes the program instead of returning an error.
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}
