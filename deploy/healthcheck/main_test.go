package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestURLFromListen(t *testing.T) {
	tests := []struct {
		listen string
		want   string
	}{
		{"", "http://127.0.0.1:8080/healthz"},
		{":8080", "http://127.0.0.1:8080/healthz"},
		{"0.0.0.0:9000", "http://127.0.0.1:9000/healthz"},
		{"[::]:9000", "http://[::1]:9000/healthz"},
		{"10.1.2.3:80", "http://10.1.2.3:80/healthz"},
		{"localhost:8080", "http://localhost:8080/healthz"},
	}
	for _, tt := range tests {
		got, err := urlFromListen(tt.listen)
		if err != nil {
			t.Errorf("urlFromListen(%q): %v", tt.listen, err)
			continue
		}
		if got != tt.want {
			t.Errorf("urlFromListen(%q) = %q, want %q", tt.listen, got, tt.want)
		}
	}
	if _, err := urlFromListen("8080"); err == nil {
		t.Error(`urlFromListen("8080") succeeded, want an error naming the bad address`)
	}
}

func TestRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.WriteHeader(http.StatusOK)
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	// An address that refuses connections: a listener opened and closed again.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := l.Addr().String()
	l.Close()

	env := func(listen string) func(string) string {
		return func(k string) string {
			if k == "OTPBOT_HTTP_LISTEN" {
				return listen
			}
			return ""
		}
	}
	tests := []struct {
		name       string
		args       []string
		listen     string
		wantCode   int
		wantStderr string
	}{
		{name: "healthy via argument", args: []string{srv.URL + "/healthz"}, wantCode: 0},
		{name: "healthy via OTPBOT_HTTP_LISTEN", listen: srv.Listener.Addr().String(), wantCode: 0},
		{name: "5xx is unhealthy", args: []string{srv.URL + "/down"}, wantCode: 1, wantStderr: "503"},
		{name: "404 is unhealthy", args: []string{srv.URL + "/nothing"}, wantCode: 1, wantStderr: "404"},
		{name: "refused connection is unhealthy", listen: closedAddr, wantCode: 1, wantStderr: closedAddr},
		{name: "bad listen address", listen: "nonsense", wantCode: 1, wantStderr: "OTPBOT_HTTP_LISTEN"},
		{name: "too many arguments", args: []string{"a", "b"}, wantCode: 2, wantStderr: "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(context.Background(), tt.args, env(tt.listen), &stderr)
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if tt.wantStderr == "" && stderr.Len() != 0 {
				t.Errorf("stderr %q, want nothing on success", stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}
