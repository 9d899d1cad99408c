package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/otpbot/otpbot/bot/bottest"
)

// adminListeningRE finds the admin listener's address in serve's log.
var adminListeningRE = regexp.MustCompile(`msg="admin listening" addr=(\S+)`)

// getWith sends a GET with headers and returns the status and body.
func getWith(t *testing.T, url string, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestAdminListener: with http.admin_listen, /metrics, /debug/pprof/ and
// /admin/backup answer there and are gone from http.listen, where a
// reverse proxy on this host (whose requests look local) would otherwise
// reach them; the providers and /healthz stay on http.listen; and `otpbot
// backup` finds the running server on the admin listener.
func TestAdminListener(t *testing.T) {
	fake := bottest.New(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir, fake, "")
	env := map[string]string{"OTPBOT_HTTP_ADMIN_LISTEN": "127.0.0.1:0", "OTPBOT_HTTP_PPROF": "true"}
	in := startServe(t, cfg, env)
	m := adminListeningRE.FindStringSubmatch(in.logs.String())
	if m == nil {
		t.Fatalf("no admin listener in the log:\n%s", in.logs)
	}
	admin := "http://" + m[1]
	auth := map[string]string{"Authorization": "Bearer " + adminToken(testToken)}

	// The public listener: the operator's endpoints do not exist, even
	// for a request from this host with the admin token and no proxy
	// header (what a same-host reverse proxy sends).
	for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/heap", backupPath} {
		if code, _ := getWith(t, in.url+path, auth); code != http.StatusNotFound {
			t.Errorf("public %s answered %d, want 404", path, code)
		}
	}
	if code, _ := get(t, in.url+"/healthz"); code != http.StatusOK {
		t.Errorf("public /healthz answered %d", code)
	}
	in.pushUPay(upayOTP("ORD-ADM", "C-NOBODY", "424242"))

	// The admin listener: the operator's endpoints, with their own checks.
	if code, body := get(t, admin+"/metrics"); code != http.StatusOK || !strings.Contains(body, "otpbot_build_info") {
		t.Errorf("admin /metrics = %d:\n%.300s", code, body)
	}
	if code, body := get(t, admin+"/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("admin /debug/pprof/ = %d:\n%.300s", code, body)
	}
	if code, _ := getWith(t, admin+"/debug/pprof/heap", map[string]string{"X-Forwarded-For": "203.0.113.7"}); code != http.StatusForbidden {
		t.Errorf("admin pprof through a proxy answered %d, want 403", code)
	}
	if code, _ := get(t, admin+backupPath); code != http.StatusUnauthorized {
		t.Errorf("admin backup without the token answered %d, want 401", code)
	}
	if code, body := getWith(t, admin+backupPath, auth); code != http.StatusOK || len(body) == 0 {
		t.Errorf("admin backup = %d, %d bytes", code, len(body))
	}
	for _, path := range []string{"/healthz", "/webhooks/upay"} {
		if code, _ := get(t, admin+path); code != http.StatusNotFound {
			t.Errorf("admin %s answered %d, want 404", path, code)
		}
	}

	// `otpbot backup` with the same configuration fetches from there.
	out := filepath.Join(dir, "admin.bak")
	_, errOut, err := runCmd(t, map[string]string{"OTPBOT_HTTP_ADMIN_LISTEN": m[1]}, "", "backup", "-config", cfg, "-o", out)
	if err != nil || !strings.Contains(errOut, "fetched from the running server at "+admin+backupPath) {
		t.Fatalf("backup: %v\n%s", err, errOut)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
		t.Errorf("backup file: %v", err)
	}
}
