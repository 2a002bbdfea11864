package server

import (
	"errors"
	"io"
	"net/http"

	"github.com/wsnotify/wsnotify/shared/notify"
)

// The Management API is served at /@connections/{id} and, as on API
// Gateway, under a stage: /{stage}/@connections/{id}, any stage name. The
// SDK client path-escapes the id ("=" as %3D); the mux unescapes it. Requests
// are not authenticated: SigV4 signatures are accepted unchecked.

// managementTime is the format of connectedAt and lastActiveAt: ISO 8601 in
// UTC with milliseconds, which the SDK's deserializer parses.
const managementTime = "2006-01-02T15:04:05.000Z"

// managementError is the body of a Management API error; the SDK takes the
// error type from the x-amzn-ErrorType header, or else from __type.
type managementError struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}

// connectionInfo is GetConnection's answer.
type connectionInfo struct {
	ConnectedAt  string       `json:"connectedAt"`
	Identity     connIdentity `json:"identity"`
	LastActiveAt string       `json:"lastActiveAt"`
}

type connIdentity struct {
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

// postToConnection serves PostToConnection: the body is sent to the
// connection as one text message.
func (s *Server) postToConnection(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	data, err := io.ReadAll(io.LimitReader(r.Body, notify.MaxMessageBytes+1))
	if err != nil {
		managementFail(w, http.StatusBadRequest, "BadRequestException", "could not read the request body")
		return
	}
	err = s.hub.Post(r.Context(), id, data)
	switch {
	case errors.Is(err, notify.ErrPayloadTooLarge):
		managementFail(w, http.StatusRequestEntityTooLarge, "PayloadTooLargeException", "Message payload exceeds the 131072-byte limit")
	case errors.Is(err, notify.ErrGone):
		managementGone(w)
	case err != nil:
		s.log.Error("post to connection", "connectionId", clip(id), "err", err)
		managementFail(w, http.StatusInternalServerError, "InternalServerErrorException", "Internal server error")
	default:
		w.Header().Set("x-amzn-RequestId", newConnectionID())
		w.WriteHeader(http.StatusOK)
	}
}

// getConnection serves GetConnection.
func (s *Server) getConnection(w http.ResponseWriter, r *http.Request) {
	info, err := s.hub.Info(r.PathValue("id"))
	if err != nil {
		managementGone(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"x-amzn-RequestId": newConnectionID()}, connectionInfo{
		ConnectedAt:  info.ConnectedAt.UTC().Format(managementTime),
		Identity:     connIdentity{SourceIP: info.SourceIP, UserAgent: info.UserAgent},
		LastActiveAt: info.LastActiveAt.UTC().Format(managementTime),
	})
}

// deleteConnection serves DeleteConnection: the connection is closed and
// its $disconnect runs afterwards, as on API Gateway.
func (s *Server) deleteConnection(w http.ResponseWriter, r *http.Request) {
	if err := s.hub.Close(r.PathValue("id")); err != nil {
		managementGone(w)
		return
	}
	w.Header().Set("x-amzn-RequestId", newConnectionID())
	w.WriteHeader(http.StatusNoContent)
}

// managementGone answers 410 GoneException: no such connection (any more).
func managementGone(w http.ResponseWriter) {
	managementFail(w, http.StatusGone, "GoneException", "Gone")
}

func managementFail(w http.ResponseWriter, status int, errorType, message string) {
	writeJSON(w, status, map[string]string{
		"x-amzn-ErrorType": errorType,
		"x-amzn-RequestId": newConnectionID(),
	}, managementError{Type: errorType, Message: message})
}
