package handler

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsnotify/wsnotify/shared/notify"
)

// Connect handles the $connect route: origin check, token check and
// registration. A non-2xx status refuses the WebSocket handshake with that
// status.
type Connect struct {
	n       *notify.Notifier
	log     *slog.Logger
	origins Origins
}

// NewConnect returns the $connect handler, which refuses browsers of origins
// off the allow-list (the zero Origins allows every origin).
func NewConnect(n *notify.Notifier, log *slog.Logger, origins Origins) *Connect {
	return &Connect{n: n, log: log, origins: origins}
}

// errOriginRefused answers a handshake from an origin off the allow-list.
var errOriginRefused = notify.Errorf(notify.CodeForbidden, "this page's origin is not allowed to connect")

// Handle implements the $connect Lambda.
//
// client_id comes from the path parameter in local mode (the seed's
// /api/v1/ws/{client_id}) and from the query string on the raw API Gateway
// URL, whose WebSocket routes have no path parameters.
func (h *Connect) Handle(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	connID := req.RequestContext.ConnectionID
	if origin, refused := h.origins.refused(req); refused {
		h.n.Metrics().ConnectRefused(notify.ErrorCode(errOriginRefused))
		return errorResponse(ctx, h.log, errOriginRefused, "route", "$connect", "connectionId", connID, "origin", originForLog(origin)), nil
	}
	clientID, ok := req.PathParameters["client_id"]
	if !ok {
		clientID = req.QueryStringParameters["client_id"]
	}
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
