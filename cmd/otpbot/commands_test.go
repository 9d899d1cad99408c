package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/store/bolt"
)

// runCmd runs the program in-process and returns stdout, stderr and err.
func runCmd(t testing.TB, env map[string]string, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := run(ctx, append([]string{"otpbot"}, args...), envMap(env), &out, &errOut)
	return out.String(), errOut.String(), err
}

// rsaPair writes an RSA key pair as PEM files and returns their paths.
func rsaPair(t testing.TB, dir, name string, bits int) (private, public string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	private = writeFile(t, dir, name+".key", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})))
	public = writeFile(t, dir, name+".pub", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})))
	return private, public
}

func TestVersion(t *testing.T) {
	out, _, err := runCmd(t, nil, "", "version")
	if err != nil || !strings.HasPrefix(out, "otpbot ") || !strings.Contains(out, "go1.") {
		t.Errorf("version printed %q, %v", out, err)
	}
}

func TestCheck(t *testing.T) {
	fake := bottest.New(t, bottest.WithToken(testToken))
	dir := t.TempDir()
	cfg := testConfig(t, dir, fake, "")
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		stdout   []string
		errLine  string
	}{
		{"offline", []string{"check", "-offline", "-config", cfg}, nil, 0, []string{"config: " + cfg + " ok", "store: not checked (-offline)"}, ""},
		{"online", []string{"check", "-config", cfg}, nil, 0, []string{"store: ok (embedded", "does not exist yet", "telegram: ok (getMe: @" + bottest.BotUsername + ")"}, ""},
		{"store dir missing", []string{"check", "-config", cfg}, map[string]string{"OTPBOT_STORE_PATH": "/nonexistent/dir/otpbot.db"}, 2, nil, "check: store: /nonexistent/dir/otpbot.db does not exist and cannot be created"},
		{"config from OTPBOT_CONFIG", []string{"check", "-offline"}, map[string]string{"OTPBOT_CONFIG": cfg}, 0, []string{"ok"}, ""},
		{"no config at all", []string{"check"}, nil, 2, nil, "config: no configuration file: pass -config FILE or set OTPBOT_CONFIG"},
		{"missing file", []string{"check", "-config", filepath.Join(dir, "nope.yaml")}, nil, 2, nil, "config: read " + filepath.Join(dir, "nope.yaml") + ": no such file or directory"},
		{"config error names the key", []string{"check", "-offline", "-config", cfg}, map[string]string{"OTPBOT_STORE_DRIVER": "mongo"}, 2, nil, `config: store.driver must be embedded or redis (got "mongo")`},
		{"rejected token", []string{"check", "-config", cfg}, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "999:WRONG-token-value"}, 2, []string{"store: ok"}, "check: telegram: "},
		{"redis unreachable", []string{"check", "-config", cfg}, map[string]string{"OTPBOT_STORE_DRIVER": "redis", "OTPBOT_STORE_REDIS_ADDR": "127.0.0.1:1"}, 2, nil, "check: store: "},
		{"unknown flag", []string{"check", "-bogus"}, nil, 2, nil, "otpbot check: flag provided but not defined: -bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runCmd(t, tt.env, "", tt.args...)
			if code := exitCode(err); code != tt.wantCode {
				t.Fatalf("exit %d (%v), want %d; stdout:\n%s", code, err, tt.wantCode, out)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
			if tt.errLine != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.errLine)) {
				t.Errorf("error %v, want prefix %q", err, tt.errLine)
			}
			if _, err := os.Stat(filepath.Join(dir, "otpbot.db")); err == nil {
				t.Errorf("check created the store file")
			}
			for _, secret := range []string{testToken, "WRONG-token-value", upayToken, hcToken} {
				if strings.Contains(out, secret) || (err != nil && strings.Contains(err.Error(), secret)) {
					t.Errorf("check printed a secret")
				}
			}
		})
	}
}

// TestCheckShowsStoreWarnings: what the store warns about while check
// opens it (a store file others can read) reaches the operator on
// stderr; a warning does not fail the check.
func TestCheckShowsStoreWarnings(t *testing.T) {
	fake := bottest.New(t, bottest.WithToken(testToken))
	dir := t.TempDir()
	cfg := testConfig(t, dir, fake, "")
	path := filepath.Join(dir, "otpbot.db")
	s, err := bolt.Open(path, storeOptions(&Config{DedupeWindow: time.Hour, History: HistoryConfig{PerKey: 10, Retention: time.Hour}}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		mode os.FileMode
		warn bool
	}{{0o600, false}, {0o644, true}} {
		if err := os.Chmod(path, tt.mode); err != nil {
			t.Fatal(err)
		}
		out, stderr, err := runCmd(t, nil, "", "check", "-config", cfg)
		if err != nil {
			t.Fatalf("mode %#o: check failed: %v\n%s", tt.mode, err, out)
		}
		if !strings.Contains(out, "store: ok (embedded "+path+")") {
			t.Errorf("mode %#o: stdout:\n%s", tt.mode, out)
		}
		if got := strings.Contains(stderr, "store file is readable by group or others"); got != tt.warn {
			t.Errorf("mode %#o: warned %v, want %v; stderr:\n%s", tt.mode, got, tt.warn, stderr)
		}
	}
}

func TestRender(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.yaml", "telegram: {token: '1:x'}\n"+minimal+"codes: {ttl_by_event: {3DS_OTP: 10m}}\n")
	otp := writeFile(t, dir, "otp.json", `{"event":"3DS_OTP","trace":"T","orderNo":"O9","timestamp":1755248905430,"detail":{"cardId":"C1","cardNumber":"5555666677771234","customerNo":"CU","3dsCode":"246810","orderNo":"O9"}}`)
	tests := []struct {
		name     string
		args     []string
		stdin    string
		want     []string
		wantNot  []string
		wantCode int
	}{
		{"upay code from file", []string{"-provider", "upay", "-file", otp}, "",
			[]string{"upay 3DS_OTP (code)", "246810", "•••• 1234", "expires in 10:00", "[ 📋 Copy code ]", "at expiry", "expired"},
			[]string{"5555666677771234", "<code>"}, 0},
		{"upay code as HTML", []string{"-provider", "upay", "-file", otp, "-html"}, "",
			[]string{"<code>246810</code>"}, nil, 0},
		{"hypercard from stdin", []string{"-provider", "hypercard", "-at", "1710412500"}, `{"notify_type":"OPT_CODE","card_id":"1085185460000094505","code":"888666","create_time":1710412477}`,
			// A card known by its id is named as an id, never with the PAN mask.
			[]string{"hypercard OPT_CODE (code)", "888666", "💳 card …4505", "expires in 4:37"}, []string{"•••• 4505"}, 0},
		{"history-only event", []string{"-provider", "hypercard"}, `{"notify_type":"CONSUME","card_id":"66543"}`,
			[]string{"Recorded in the history of card …6543 and of every event (admins: /history events), not sent to any chat.",
				"HyperCard · New transaction · card …6543"}, []string{"· CONSUME"}, 0},
		{"event without a card", []string{"-provider", "hypercard"}, `{"notify_type":"OPEN_CARD","card_type_id":"40000002",` +
			`"email":"example@gmail.com","mobile":"18301523750","mobile_code":"86","result":2,"remark":"KYC data incomplete"}`,
			[]string{"Recorded in the history of every event (admins: /history events)", "Ops are told: card application failed.",
				"HyperCard · Card application · card type 40000002 · failed · remark: KYC data incomplete"},
			[]string{"example@gmail.com", "18301523750"}, 0},
		{"approval decided by its push", []string{"-provider", "hypercard", "-at", "1699865740"}, `{"notify_type":"AUTH_3DS","auth_id":283,` +
			`"card_id":"15723682800000053333","card_no":"103411******3333","txn_currency":"EUR","txn_amount":"1.00",` +
			`"card_acceptor_merchant_name":"Amazon","card_acceptor_location_country":"DE","auth_result":3,"expired_time":1699866034,` +
			`"created_Time":1699865734,"updated_Time":1699865734}`,
			[]string{"❌ Purchase declined", "💳 •••• 3333", "Amazon"}, []string{"waiting", "expires in", "result", "at expiry"}, 0},
		{"rejected event", []string{"-provider", "upay"}, `{"event":"3DS_OTP","trace":"T","orderNo":"O","timestamp":1,"detail":{"cardId":"C1"}}`,
			[]string{"Rejected: missing required field"}, nil, 0},
		{"code expired on arrival", []string{"-provider", "hypercard", "-at", "1710413000"}, `{"notify_type":"OPT_CODE","card_id":"1085185460000094505","code":"888666","create_time":1710412477}`,
			[]string{"Not sent: it expired at 2024-03-14T10:39:37Z", "expired", "card …4505"},
			[]string{"888666", "Copy code", "Used it", "expires in", "at expiry"}, 0},
		{"malformed body", []string{"-provider", "upay"}, `[1,2]`, nil, nil, 1},
		{"no provider", nil, "", nil, nil, 2},
		{"bad provider", []string{"-provider", "visa"}, "", nil, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdin := writeFile(t, t.TempDir(), "stdin", tt.stdin)
			args := append([]string{"render", "-config", cfg}, tt.args...)
			hasFile := false
			for _, a := range tt.args {
				hasFile = hasFile || a == "-file"
			}
			if !hasFile {
				args = append(args, "-file", stdin)
			}
			out, _, err := runCmd(t, nil, "", args...)
			if code := exitCode(err); code != tt.wantCode {
				t.Fatalf("exit %d (%v), want %d\n%s", code, err, tt.wantCode, out)
			}
			for _, s := range tt.want {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
			for _, s := range tt.wantNot {
				if strings.Contains(out, s) {
					t.Errorf("output has %q:\n%s", s, out)
				}
			}
		})
	}
}

// TestRenderNeedsNoToken: render sends nothing, so a configuration
// without telegram.token (or with a provider lacking authentication)
// renders; what render does use (codes, templates) is still validated.
func TestRenderNeedsNoToken(t *testing.T) {
	dir := t.TempDir()
	otp := writeFile(t, dir, "otp.json", `{"notify_type":"OPT_CODE","card_id":"1085185460000094505","code":"888666","create_time":1710412477}`)
	tests := []struct {
		name, config string
		env          map[string]string
		want         string // in stdout, or the error line when wantCode != 0
		wantCode     int
	}{
		{"empty file", "", nil, "888666", 0},
		{"no token, providers without auth", "providers: {upay: {enabled: true}}\n", nil, "888666", 0},
		{"token file missing", "telegram: {token_file: /nonexistent/token}\n", nil, "888666", 0},
		{"bad ttl still refused", "codes: {ttl: 0s}\n", nil, "config: codes.ttl must be a positive duration (got 0s)", 2},
		{"bad templates dir refused", "", map[string]string{"OTPBOT_TEMPLATES_DIR": "/nonexistent/tmpl"}, `config: templates.dir is not a readable folder ("/nonexistent/tmpl")`, 2},
		{"in the default language and zone", "templates: {default_language: tr, timezone: Europe/Istanbul}\n", nil, "Tek kullanımlık kod", 0},
		{"a language without templates refused", "templates: {default_language: de}\n", nil,
			`config: templates.default_language "de" has no templates: use en, ru, zh, es, pt-BR, tr, or add a folder of its templates to templates.dir`, 2},
		{"a zone that is none refused", "", map[string]string{"OTPBOT_TEMPLATES_TIMEZONE": "Mars/Olympus"},
			`config: templates.timezone is not an IANA time zone such as Europe/Madrid ("Mars/Olympus")`, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeFile(t, t.TempDir(), "c.yaml", tt.config)
			out, _, err := runCmd(t, tt.env, "", "render", "-config", cfg, "-provider", "hypercard", "-at", "1710412500", "-file", otp)
			if code := exitCode(err); code != tt.wantCode {
				t.Fatalf("exit %d (%v), want %d\n%s", code, err, tt.wantCode, out)
			}
			if tt.wantCode == 0 && !strings.Contains(out, tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, out)
			}
			if tt.wantCode != 0 && (err == nil || err.Error() != tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestSignedRequestsAreAccepted runs `otpbot sign` against a deployment
// that requires every authentication method, executes the printed curl
// command with bash, and checks the code arrives.
func TestSignedRequestsAreAccepted(t *testing.T) {
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to run the printed command: %v", tool, err)
		}
	}
	fake := bottest.New(t)
	dir := t.TempDir()
	upayPriv, _ := rsaPair(t, dir, "merchant", 2048)
	hcPriv, hcPub := rsaPair(t, dir, "hypercard", 1024)
	cfg := testConfig(t, dir, fake, "")
	env := map[string]string{
		"OTPBOT_PROVIDERS_UPAY_SECRET_KEY":           "upay-hmac-secret",
		"OTPBOT_PROVIDERS_UPAY_PRIVATE_KEY_FILE":     upayPriv,
		"OTPBOT_PROVIDERS_HYPERCARD_PUBLIC_KEY_FILE": hcPub,
	}
	in := startServe(t, cfg, env)
	const chat = int64(7001)
	linkCard(t, fake, chat, "C1")
	linkCard(t, fake, chat, hcCard)

	tests := []struct {
		name string
		args []string
		code string
	}{
		{"upay signed", []string{"-provider", "upay", "-code", "135790"}, "135790"},
		{"upay signed and encrypted", []string{"-provider", "upay", "-code", "246802", "-encrypt"}, "246802"},
		{"hypercard RSA-signed", []string{"-provider", "hypercard", "-card", hcCard, "-code", "975310", "-key", hcPriv}, "975310"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"sign", "-config", cfg, "-url", in.url}, tt.args...)
			out, _, err := runCmd(t, env, "", args...)
			if err != nil {
				t.Fatalf("sign: %v", err)
			}
			for _, secret := range []string{upayToken, hcToken, "upay-hmac-secret"} {
				if strings.Contains(out, secret) {
					t.Errorf("sign printed a secret without -reveal:\n%s", out)
				}
			}
			cmd := exec.Command("bash", "-c", out)
			cmd.Env = append(os.Environ(), "OTPBOT_PROVIDERS_UPAY_TOKEN="+upayToken, "OTPBOT_PROVIDERS_HYPERCARD_TOKEN="+hcToken)
			resp, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("curl: %v: %s", err, resp)
			}
			if !strings.Contains(string(resp), "SUCCESS") && !strings.Contains(string(resp), `"code":1`) {
				t.Fatalf("push not acknowledged: %s\ncommand:\n%s", resp, out)
			}
			waitUntil(t, "signed code", func() bool { return sentWith(fake, chat, tt.code) == 1 })
		})
	}

	// A tampered body is refused.
	out, _, err := runCmd(t, env, "", "sign", "-config", cfg, "-url", in.url, "-provider", "upay", "-code", "111111", "-reveal")
	if err != nil {
		t.Fatal(err)
	}
	tampered := strings.TrimSpace(strings.Replace(out, "111111", "111112", 1))
	resp, err := exec.Command("bash", "-c", tampered+" -o /dev/null -w '%{http_code}'").CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(resp)), "401") {
		t.Errorf("tampered push answered %s (%v), want 401", resp, err)
	}
	// HyperCard with a key but no -key: the operator is told what to pass.
	_, _, err = runCmd(t, env, "", "sign", "-config", cfg, "-provider", "hypercard")
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "pass -key") {
		t.Errorf("sign without -key: %v", err)
	}
}

// TestBackupWhileServing takes a backup of the embedded store while serve
// holds the file (over /admin/backup) and after it stopped (directly), and
// restores each: the same links and history.
func TestBackupWhileServing(t *testing.T) {
	fake := bottest.New(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir, fake, "")
	in := startServe(t, cfg, nil)
	const chat = int64(8001)
	linkCard(t, fake, chat, "C1")
	in.pushUPay(upayOTP("ORD-B1", "C1", "777001"))
	in.pushUPay(upayOTP("ORD-B2", "C-NOBODY", "777002"))
	waitUntil(t, "code", func() bool { return sentWith(fake, chat, "777001") == 1 })

	// While serving: the file is locked, the snapshot comes over HTTP.
	live := filepath.Join(dir, "live.bak")
	_, errOut, err := runCmd(t, nil, "", "backup", "-config", cfg, "-url", in.url, "-o", live)
	if err != nil {
		t.Fatalf("backup while serving: %v", err)
	}
	if !strings.Contains(errOut, "fetched from the running server") {
		t.Errorf("backup did not use the server: %s", errOut)
	}
	// To stdout, as `otpbot backup -config F > file` does.
	stdout, _, err := runCmd(t, nil, "", "backup", "-config", cfg, "-url", in.url)
	if err != nil || len(stdout) == 0 {
		t.Fatalf("backup to stdout: %d bytes, %v", len(stdout), err)
	}
	// The admin endpoint refuses a request without the admin token and
	// one that came through a proxy.
	if code, _ := get(t, in.url+backupPath); code != http.StatusUnauthorized {
		t.Errorf("backup without token answered %d", code)
	}
	req, _ := http.NewRequest(http.MethodGet, in.url+backupPath, nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("Authorization", "Bearer "+adminToken(testToken))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("proxied backup request: %v %v", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}

	// Stopped: read directly.
	direct := filepath.Join(dir, "direct.bak")
	_, errOut, err = runCmd(t, nil, "", "backup", "-config", cfg, "-o", direct)
	if err != nil || !strings.Contains(errOut, "directly") {
		t.Fatalf("backup of a stopped store: %v %s", err, errOut)
	}

	for name, path := range map[string]string{"live": live, "stdout": writeFile(t, dir, "stdout.bak", stdout), "direct": direct} {
		// Restore = put the file in place of the store.
		s, err := bolt.Open(path, otpbot.StoreOptions{}, nil)
		if err != nil {
			t.Fatalf("%s: open restored copy: %v", name, err)
		}
		ctx := context.Background()
		links, err := s.LinksForKey(ctx, otpbot.Key{Type: otpbot.KeyCard, ID: "C1"})
		if err != nil || len(links) != 1 || links[0].Target.ChatID != chat {
			t.Errorf("%s: links = %+v, %v", name, links, err)
		}
		hist, err := s.History(ctx, otpbot.Key{Type: otpbot.KeyCard, ID: "C-NOBODY"}, 10)
		if err != nil || len(hist) != 1 {
			t.Errorf("%s: history = %+v, %v", name, hist, err)
		}
		s.Close()
	}

	// Redis has no embedded file to back up.
	_, _, err = runCmd(t, map[string]string{"OTPBOT_STORE_DRIVER": "redis"}, "", "backup", "-config", cfg)
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "store.driver is redis") {
		t.Errorf("backup on redis: %v", err)
	}
}

// TestMigrateEmbeddedToRedisAndBack moves a store with links, history and
// a pending delivery to Redis and back; a server on the target delivers
// the pending code.
func TestMigrateEmbeddedToRedisAndBack(t *testing.T) {
	fake := bottest.New(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir, fake, "")
	prefix := fmt.Sprintf("otpbot-test-migrate-%x:", time.Now().UnixNano())
	redisEnv := map[string]string{"OTPBOT_STORE_REDIS_PREFIX": prefix}
	t.Cleanup(func() { cleanupRedisPrefix(t, prefix) })

	in := startServe(t, cfg, nil)
	const chat = int64(9001)
	linkCard(t, fake, chat, "C1")
	in.pushUPay(upayOTP("ORD-M0", "C-NOBODY", "999111"))
	// A HyperCard push carries no id: its identity is keyed by the store's
	// installation secret, which must move with the data.
	hcBody := hcOTP("C-NOBODY", "999222")
	in.pushHyperCard(hcBody)
	// A push accepted while Telegram is down stays pending.
	fake.SetDown(502)
	in.pushUPay(upayOTP("ORD-M1", "C1", "888111"))
	if err := in.stop(); err != nil {
		t.Fatal(err)
	}
	fake.SetUp()

	// Refused while the file is in use, and between the same drivers.
	if _, _, err := runCmd(t, redisEnv, "", "migrate", "-config", cfg, "--from", "embedded", "--to", "embedded"); exitCode(err) != 2 {
		t.Errorf("same drivers: %v", err)
	}
	out, _, err := runCmd(t, redisEnv, "", "migrate", "-config", cfg, "--from", "embedded", "--to", "redis")
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if !strings.Contains(out, "1 links") || !strings.Contains(out, "pending tasks") || !strings.Contains(out, "the installation secret") {
		t.Errorf("migrate said %q", out)
	}
	// Twice into the same prefix is refused without -force.
	if _, _, err := runCmd(t, redisEnv, "", "migrate", "-config", cfg, "--from", "embedded", "--to", "redis"); err == nil || !strings.Contains(err.Error(), "already holds data") {
		t.Errorf("second migrate: %v", err)
	}

	// A server on Redis has the link and history, and delivers the code.
	redisServe := map[string]string{"OTPBOT_STORE_DRIVER": "redis", "OTPBOT_STORE_REDIS_PREFIX": prefix}
	rin := startServe(t, cfg, redisServe)
	waitUntil(t, "pending code delivered from Redis", func() bool { return sentWith(fake, chat, "888111") == 1 })
	rin.pushHyperCard(hcBody)
	waitUntil(t, "the HyperCard repeat recognised after the move", func() bool {
		return grepLines(grepLines(rin.logs.String(), "provider=hypercard"), "outcome=duplicate") != ""
	})
	fake.SendCommand(chat, adminID, "/history C-NOBODY")
	waitUntil(t, "history from Redis", func() bool { return strings.Contains(historyReply(fake, chat), "not delivered") })
	if err := rin.stop(); err != nil {
		t.Fatal(err)
	}

	// And back into a fresh embedded file.
	back := filepath.Join(dir, "back.db")
	backEnv := map[string]string{"OTPBOT_STORE_REDIS_PREFIX": prefix, "OTPBOT_STORE_PATH": back}
	if out, _, err = runCmd(t, backEnv, "", "migrate", "-config", cfg, "--from", "redis", "--to", "embedded"); err != nil {
		t.Fatalf("migrate back: %v", err)
	}
	if fi, err := os.Stat(back); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the embedded store migrate wrote: %v, %v; want mode 0600", fi.Mode(), err)
	}
	s, err := bolt.Open(back, otpbot.StoreOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	links, err := s.LinksForKey(context.Background(), otpbot.Key{Type: otpbot.KeyCard, ID: "C1"})
	if err != nil || len(links) != 1 {
		t.Errorf("links after the round trip: %+v %v (%s)", links, err, out)
	}
	hist, err := s.History(context.Background(), otpbot.Key{Type: otpbot.KeyCard, ID: "C-NOBODY"}, 10)
	if err != nil || len(hist) != 2 {
		t.Errorf("history after the round trip: %d entries (%v), want the UPay and the HyperCard push", len(hist), err)
	}
}

var _ = io.Discard

// render -lang and -timezone show a push the way a chat in that language
// and zone sees it.
func TestRenderInALanguage(t *testing.T) {
	dir := t.TempDir()
	otp := writeFile(t, dir, "otp.json", `{"notify_type":"OPT_CODE","card_id":"1085185460000094505","code":"888666","create_time":1710412477}`)
	cfg := writeFile(t, dir, "c.yaml", "")
	out, _, err := runCmd(t, nil, "", "render", "-config", cfg, "-provider", "hypercard", "-at", "1710412500", "-lang", "zh-hans", "-timezone", "Asia/Shanghai", "-file", otp)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"一次性验证码", "卡 …4505", "📋 复制验证码"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range [][]string{{"-lang", "fr"}, {"-timezone", "Mars/Olympus"}} {
		_, _, err := runCmd(t, nil, "", append([]string{"render", "-config", cfg, "-provider", "hypercard", "-file", otp}, bad...)...)
		if code := exitCode(err); code != 2 || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("render %v: exit %d, %v", bad, code, err)
		}
	}
}
