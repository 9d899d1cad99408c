package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"golang.org/x/sync/errgroup"
)

// httpServers are serve's HTTP servers: routes on http.listen and, when
// http.admin_listen is set, adminRoutes there.
type httpServers struct {
	servers []*http.Server
}

// startHTTP listens on every configured address, then serves in group: a
// port in use fails the start before anything answers, a server that
// stops serving before Shutdown fails the group. The admin listener starts
// first, so that once the "listening" line is logged both answer. Requests
// run under ctx.
func startHTTP(ctx context.Context, cfg *Config, deps routeDeps, logger *slog.Logger, group *errgroup.Group) (*httpServers, error) {
	type listener struct {
		addr    string
		admin   bool
		handler http.Handler
	}
	var specs []listener
	if cfg.HTTP.AdminListen != "" {
		deps.adminListener = true
		specs = append(specs, listener{cfg.HTTP.AdminListen, true, adminRoutes(deps)})
	}
	specs = append(specs, listener{cfg.HTTP.Listen, false, routes(deps)})

	lns := make([]net.Listener, 0, len(specs))
	for _, s := range specs {
		ln, err := deps.listener, error(nil)
		if s.admin || ln == nil {
			ln, err = net.Listen("tcp", s.addr)
		}
		if err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			return nil, fmt.Errorf("serve: listen: %w", err)
		}
		lns = append(lns, ln)
	}
	hs := &httpServers{}
	for i, s := range specs {
		srv := &http.Server{
			Handler:           s.handler,
			ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
			ReadTimeout:       cfg.HTTP.ReadTimeout,
			WriteTimeout:      cfg.HTTP.WriteTimeout,
			IdleTimeout:       cfg.HTTP.IdleTimeout,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
			BaseContext:       func(net.Listener) context.Context { return ctx },
		}
		hs.servers = append(hs.servers, srv)
		ln := lns[i]
		group.Go(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve: http: %w", err)
			}
			return nil
		})
		if s.admin {
			logger.Info("admin listening", "addr", lns[i].Addr().String())
		} else {
			logger.Info("listening", "addr", lns[i].Addr().String())
		}
	}
	return hs, nil
}

// Shutdown stops every server gracefully (see http.Server.Shutdown).
func (h *httpServers) Shutdown(ctx context.Context) error {
	var errs []error
	for _, srv := range h.servers {
		errs = append(errs, srv.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// Close closes every server at once.
func (h *httpServers) Close() {
	for _, srv := range h.servers {
		_ = srv.Close()
	}
}
