package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readyTimeout bounds the store ping behind /readyz, so that a load
// balancer's probe gets an answer even while Redis hangs.
const readyTimeout = 2 * time.Second

// backupPath is the admin endpoint `otpbot backup` fetches a snapshot from
// while serve holds the embedded store file.
const backupPath = "/admin/backup"

// pinger is what /readyz needs of the store.
type pinger interface {
	Ping(ctx context.Context) error
}

// backuper writes a consistent snapshot of the embedded store.
type backuper interface {
	Backup(ctx context.Context, w io.Writer) (int64, error)
}

// routeDeps are the handlers and facts the router is built from.
type routeDeps struct {
	logger *slog.Logger
	// providers registers the provider webhook routes (webhooks.Handler).
	providers interface{ Register(*mux.Router) }
	store     pinger
	registry  *prometheus.Registry
	// telegramPath and telegram serve Telegram updates (webhook mode only).
	telegramPath string
	telegram     http.Handler
	// backup serves /admin/backup when not nil; adminToken authenticates it.
	backup     backuper
	adminToken string
	// pprof serves /debug/pprof/ to loopback clients (http.pprof).
	pprof bool
	// adminListener is set when http.admin_listen serves the operator's
	// endpoints (adminRoutes): routes leaves them out.
	adminListener bool
	// extra adds routes to http.listen (otpbot demo's page); nil for none.
	extra func(*mux.Router)
	// listener is http.listen already open (otpbot demo); nil: startHTTP
	// opens it.
	listener net.Listener
}

// routes lists the HTTP surface of serve on http.listen (docs/ and the
// README's "Metrics", "Backup" sections say the same):
//
//	POST {providers.upay.path}       UPay pushes          (webhooks)
//	POST {providers.hypercard.path}  HyperCard pushes     (webhooks)
//	POST {path of telegram.webhook_url}  Telegram updates (webhook mode)
//	GET  /healthz                    200 while the process runs
//	GET  /readyz                     200 when the store answers, else 503
//
// and, unless http.admin_listen is set, the operator's endpoints of
// adminRoutes.
func routes(d routeDeps) http.Handler {
	r := newRouter()
	d.providers.Register(r)
	if d.telegram != nil {
		r.Handle(d.telegramPath, d.telegram).Methods(http.MethodPost)
	}
	r.HandleFunc("/healthz", handleHealthz).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/readyz", handleReadyz(d.store, d.logger)).Methods(http.MethodGet, http.MethodHead)
	if d.extra != nil {
		d.extra(r)
	}
	if !d.adminListener {
		operatorRoutes(r, d)
	}
	return r
}

// adminRoutes lists what http.admin_listen serves: the operator's
// endpoints, and nothing a provider or Telegram calls.
func adminRoutes(d routeDeps) http.Handler {
	r := newRouter()
	operatorRoutes(r, d)
	return r
}

// operatorRoutes adds the operator's endpoints:
//
//	GET  /metrics                    Prometheus text format
//	GET  /admin/backup               embedded store snapshot, this host only (http.admin_backup)
//	GET  /debug/pprof/...            Go's profiler, loopback only (http.pprof)
//
// Their own checks (this host, no proxy header) stay on the admin
// listener too: it may be bound to an address others reach, for a
// Prometheus elsewhere.
func operatorRoutes(r *mux.Router, d routeDeps) {
	r.Handle("/metrics", promhttp.HandlerFor(d.registry, promhttp.HandlerOpts{Registry: d.registry})).Methods(http.MethodGet)
	if d.backup != nil {
		r.Handle(backupPath, handleBackup(d.backup, d.adminToken, d.logger)).Methods(http.MethodGet)
	}
	if d.pprof {
		r.PathPrefix(pprofPrefix).Handler(handlePprof()).Methods(http.MethodGet, http.MethodHead, http.MethodPost)
	}
}

// newRouter is a router whose unknown paths get a plain 404.
func newRouter() *mux.Router {
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not found", http.StatusNotFound)
	})
	return r
}

func handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
}

func handleReadyz(store pinger, logger *slog.Logger) http.Handler {
	var wasDown atomic.Bool
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := store.Ping(ctx); err != nil {
			if !wasDown.Swap(true) {
				logger.Warn("not ready: store unavailable", "err", err)
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "store unavailable\n")
			return
		}
		if wasDown.Swap(false) {
			logger.Info("ready again: store answers")
		}
		_, _ = io.WriteString(w, "ok\n")
	})
}

// adminToken derives the credential of the admin endpoint from the bot
// token: whoever can read the configuration (and so run `otpbot backup`)
// has it, and nobody else, while neither side ever sends the token itself.
func adminToken(botToken string) string {
	mac := hmac.New(sha256.New, []byte(botToken))
	mac.Write([]byte("otpbot admin backup v1"))
	return hex.EncodeToString(mac.Sum(nil))
}

// handleBackup streams a snapshot of the embedded store. It answers only
// requests from this host (a loopback peer, or a peer whose address is the
// connection's own local address) that carry no proxy header — a reverse
// proxy on the same host would otherwise make the internet look local —
// and that present the admin token.
func handleBackup(b backuper, token string, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !fromThisHost(r) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		got := r.Header.Get("Authorization")
		want := "Bearer " + token
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Trailer", backupBytesTrailer)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="otpbot.db"`)
		// The snapshot can be large and slow to write: lift the server's
		// write deadline for this one response.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		n, err := b.Backup(r.Context(), w)
		if err != nil {
			// Headers are gone; the client sees a short body and fails.
			logger.Error("backup failed", "bytes", n, "err", err)
			return
		}
		w.Header().Set(backupBytesTrailer, strconv.FormatInt(n, 10))
		logger.Info("backup served", "bytes", n)
	})
}

// pprofPrefix is where http.pprof serves Go's profiler.
const pprofPrefix = "/debug/pprof/"

// handlePprof serves net/http/pprof to loopback clients only (with no
// proxy header: a reverse proxy on this host would make the internet look
// local). A profile shows the process's memory and what it runs, which is
// nobody's business outside this machine.
func handlePprof() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(pprofPrefix, pprof.Index) // and every named profile: heap, goroutine, ...
	mux.HandleFunc(pprofPrefix+"cmdline", pprof.Cmdline)
	mux.HandleFunc(pprofPrefix+"profile", pprof.Profile)
	mux.HandleFunc(pprofPrefix+"symbol", pprof.Symbol)
	mux.HandleFunc(pprofPrefix+"trace", pprof.Trace)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackPeer(r) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		// A CPU profile or trace longer than http.write_timeout is fine:
		// pprof extends the write deadline by its ?seconds= itself.
		mux.ServeHTTP(w, r)
	})
}

// viaProxy reports whether r carries a proxy's client-address header.
func viaProxy(r *http.Request) bool {
	for _, h := range []string{"X-Forwarded-For", "X-Real-IP", "Forwarded"} {
		if r.Header.Get(h) != "" {
			return true
		}
	}
	return false
}

// peerIP is the address r's connection comes from (nil if unparsable).
func peerIP(r *http.Request) net.IP {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return nil
	}
	return net.ParseIP(host)
}

// loopbackPeer reports whether r comes straight from a loopback address.
func loopbackPeer(r *http.Request) bool {
	peer := peerIP(r)
	return !viaProxy(r) && peer != nil && peer.IsLoopback()
}

// fromThisHost reports whether r comes straight from this machine.
func fromThisHost(r *http.Request) bool {
	if viaProxy(r) {
		return false
	}
	peer := peerIP(r)
	if peer == nil {
		return false
	}
	if peer.IsLoopback() {
		return true
	}
	if local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if lh, _, err := net.SplitHostPort(local.String()); err == nil {
			return net.ParseIP(lh).Equal(peer)
		}
	}
	return false
}
