package handler

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/shared/notify"
)

// Connect handles the $connect route: token check and registration. A non-2xx
// status refuses the WebSocket handshake with that status.
type Connect struct {
	n   *notify.Notifier
	log *slog.Logger
}

// NewConnect returns the $connect handler.
func NewConnect(n *notify.Notifier, log *slog.Logger) *Connect { return &Connect{n: n, log: log} }

// Handle implements the $connect Lambda.
//
// client_id comes from the path parameter in local mode (the seed's
// /api/v1/ws/{client_id}) and from the query string on the raw API Gateway
// URL, whose WebSocket routes have no path parameters.
func (h *Connect) Handle(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	clientID, ok := req.PathParameters["client_id"]
	if !ok {
		clientID = req.QueryStringParameters["client_id"]
	}
	connID := req.RequestContext.ConnectionID
	_, err := h.n.Connect(ctx, notify.ConnectRequest{
		Token:        req.QueryStringParameters["token"],
		ClientID:     clientID,
		ConnectionID: connID,
	})
	if err != nil {
		return errorResponse(ctx, h.log, err, "route", "$connect", "connectionId", connID), nil
	}
	return events.APIGatewayProxyResponse{StatusCode: 200}, nil
}

// Disconnect handles the $disconnect route. API Gateway ignores its answer and
// calls it best effort; the record is also cleaned up by 410s and TTL.
type Disconnect struct {
	n   *notify.Notifier
	log *slog.Logger
}

// NewDisconnect returns the $disconnect handler.
func NewDisconnect(n *notify.Notifier, log *slog.Logger) *Disconnect {
	return &Disconnect{n: n, log: log}
}

// Handle implements the $disconnect Lambda. A store failure is returned as the
// function's error so that it shows in the function's error metrics.
func (h *Disconnect) Handle(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	connID := req.RequestContext.ConnectionID
	if err := h.n.Disconnect(ctx, connID); err != nil {
		h.log.ErrorContext(ctx, "disconnect failed", "connectionId", connID, "err", err)
		return events.APIGatewayProxyResponse{StatusCode: 500}, err
	}
	return events.APIGatewayProxyResponse{StatusCode: 200}, nil
}
