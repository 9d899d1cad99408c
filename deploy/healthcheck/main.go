// Command healthcheck is the container image's HEALTHCHECK probe: it GETs
// otpbot's /healthz and exits 0 on a 2xx answer, 1 otherwise.
//
// It exists because the runtime image (distroless/static) has no shell, curl
// or wget, and otpbot's own command line (docs/contract.md#commands) has no
// subcommand that probes a running server. A few dozen lines of stdlib are
// smaller and safer than shipping busybox into the image just to make one
// HTTP request.
//
// The URL is the first argument if given; otherwise it is derived from
// OTPBOT_HTTP_LISTEN, the same variable otpbot reads for http.listen, so
// moving the listener with that variable moves the probe with it.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// defaultListen mirrors otpbot's http.listen default (docs/configuration.md).
const defaultListen = "127.0.0.1:8080"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stderr))
}

// run probes the URL and returns the process exit code. A message is written
// to stderr only on failure: Docker keeps the probe's output in
// `docker inspect`, where a reason is what an operator looks for.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	var url string
	switch len(args) {
	case 0:
		u, err := urlFromListen(getenv("OTPBOT_HTTP_LISTEN"))
		if err != nil {
			fmt.Fprintf(stderr, "healthcheck: %v\n", err)
			return 1
		}
		url = u
	case 1:
		url = args[0]
	default:
		fmt.Fprintln(stderr, "usage: healthcheck [URL]")
		return 2
	}
	if err := probe(ctx, url, 3*time.Second); err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return 1
	}
	return 0
}

// urlFromListen turns a listen address into the /healthz URL a client on the
// same host reaches. A wildcard host (":8080", "0.0.0.0:8080", "[::]:8080")
// listens on loopback too, so the probe uses loopback.
func urlFromListen(listen string) (string, error) {
	if listen == "" {
		listen = defaultListen
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("OTPBOT_HTTP_LISTEN %q: %w", listen, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}

// probe GETs url and wants a 2xx status within timeout.
func probe(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("request %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	// Drain a little so the connection closes cleanly; the body is not needed.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("get %s: status %s", url, resp.Status)
	}
	return nil
}
