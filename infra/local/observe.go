package main

import (
	"context"

	"github.com/wsnotify/wsnotify/infra/local/server"
)

// serverObserverKey carries, in run's context, a function that receives the
// server once run has built it. Tests use it to look into the store after a
// shutdown, which nothing the process prints can show; a context value keeps
// parallel tests apart, where a package variable would not.
type serverObserverKey struct{}

// withServerObserver returns ctx carrying observe for run.
func withServerObserver(ctx context.Context, observe func(*server.Server)) context.Context {
	return context.WithValue(ctx, serverObserverKey{}, observe)
}

// observeServer hands srv to the observer in ctx, if there is one.
func observeServer(ctx context.Context, srv *server.Server) {
	if observe, ok := ctx.Value(serverObserverKey{}).(func(*server.Server)); ok {
		observe(srv)
	}
}
