package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
)

// envMap is a getenv backed by a map, so tests never touch the process
// environment and can run in parallel.
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// minimal is the smallest valid configuration body (besides the token).
const minimal = `
providers:
  upay: {token: "upay-token-1"}
  hypercard: {token: "hc-token-1"}
`

func TestDefaultsFromEmptyFile(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "c.yaml", "")
	cfg, err := decodeConfig(path, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Defaults()) {
		t.Errorf("empty file decoded to\n%+v\nwant defaults\n%+v", cfg, Defaults())
	}
}

// envValue returns, for a key of type typ, an environment string and the
// value it must decode to, different from the default.
func envValue(t *testing.T, f field, def reflect.Value) (string, any) {
	t.Helper()
	switch {
	case f.typ == durationType:
		return "77s", 77 * time.Second
	case f.typ.Kind() == reflect.String:
		return "env-" + f.path, "env-" + f.path
	case f.typ.Kind() == reflect.Bool:
		if def.Bool() {
			return "false", false
		}
		return "true", true
	case f.typ.Kind() == reflect.Int:
		return "7", 7
	case f.typ.Kind() == reflect.Int64:
		return "-1001234567890", int64(-1001234567890)
	case f.typ.Kind() == reflect.Float64:
		return "2.5", 2.5
	case f.typ == reflect.TypeOf([]int64{}):
		return "1, 2", []int64{1, 2}
	case f.typ == reflect.TypeOf([]string{}):
		return "10.0.0.0/8,192.168.1.1", []string{"10.0.0.0/8", "192.168.1.1"}
	case f.typ == reflect.TypeOf(map[string]string{}):
		return "1=pending, 4=declined", map[string]string{"1": "pending", "4": "declined"}
	case f.typ == reflect.TypeOf(map[string]time.Duration{}):
		return "3ds_otp=10m, OPT_CODE=5m", map[string]time.Duration{"3DS_OTP": 10 * time.Minute, "OPT_CODE": 5 * time.Minute}
	}
	t.Fatalf("no test value for %s (%s)", f.path, f.typ)
	return "", nil
}

// TestEnvOverridesEveryKey sets OTPBOT_* for every key, none of which is in
// the file, and checks each one reached the decoded configuration (the
// viper pitfall: AutomaticEnv ignores keys it does not know).
func TestEnvOverridesEveryKey(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "c.yaml", "log:\n  level: info\n")
	defaults := reflect.ValueOf(Defaults())
	env := map[string]string{}
	want := map[string]any{}
	fields := configFields()
	if len(fields) < 50 {
		t.Fatalf("only %d keys found; the walk is broken", len(fields))
	}
	for _, f := range fields {
		if strings.HasSuffix(f.path, "_file") {
			continue // files are read; tested separately
		}
		s, v := envValue(t, f, defaults.FieldByIndex(f.index))
		env[f.env()] = s
		want[f.path] = v
	}
	cfg, err := decodeConfig(path, envMap(env))
	if err != nil {
		t.Fatal(err)
	}
	got := reflect.ValueOf(cfg)
	for _, f := range fields {
		w, ok := want[f.path]
		if !ok {
			continue
		}
		if g := got.FieldByIndex(f.index).Interface(); !reflect.DeepEqual(g, w) {
			t.Errorf("%s=%q: got %#v, want %#v", f.env(), env[f.env()], g, w)
		}
	}
}

func TestEnvNames(t *testing.T) {
	tests := map[string]string{
		"telegram.token":                    "OTPBOT_TELEGRAM_TOKEN",
		"store.redis.addr":                  "OTPBOT_STORE_REDIS_ADDR",
		"providers.upay.secret_key":         "OTPBOT_PROVIDERS_UPAY_SECRET_KEY",
		"telegram.rate.per_chat_per_second": "OTPBOT_TELEGRAM_RATE_PER_CHAT_PER_SECOND",
		"dedupe_window":                     "OTPBOT_DEDUPE_WINDOW",
	}
	for path, want := range tests {
		if got := envName(path); got != want {
			t.Errorf("envName(%s) = %s, want %s", path, got, want)
		}
	}
}

func TestFileValuesAndPrecedence(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "c.yaml", `
telegram:
  token: "file-token"
  admins: [11, "22"]
  ops_chat: -100500
http:
  listen: "0.0.0.0:9000"
  trusted_proxies: ["10.0.0.0/8"]
store:
  redis:
    sentinel: {master_name: "m1", addrs: ["a:1", "b:2"]}
    db: "3"
providers:
  upay: {token: "t1", allow_ips: [203.0.113.0/24]}
  hypercard: {token: "t2", enabled: false}
codes:
  ttl: 2m
  ttl_by_event: {"3DS_OTP": 10m, opt_code: 90s}
dedupe_window: 96h
`)
	cfg, err := LoadConfig(path, envMap(map[string]string{
		"OTPBOT_TELEGRAM_TOKEN": "env-token",
		"OTPBOT_HTTP_LISTEN":    "127.0.0.1:0",
	}))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"env beats file", cfg.Telegram.Token, "env-token"},
		{"env beats file (listen)", cfg.HTTP.Listen, "127.0.0.1:0"},
		{"admins list, numbers or strings", cfg.Telegram.Admins, []int64{11, 22}},
		{"ops chat", cfg.Telegram.OpsChat, int64(-100500)},
		{"proxies", cfg.HTTP.TrustedProxies, []string{"10.0.0.0/8"}},
		{"sentinel addrs", cfg.Store.Redis.Sentinel.Addrs, []string{"a:1", "b:2"}},
		{"sentinel master", cfg.Store.Redis.Sentinel.MasterName, "m1"},
		{"redis db from string", cfg.Store.Redis.DB, 3},
		{"upay allow", cfg.Providers.UPay.AllowIPs, []string{"203.0.113.0/24"}},
		{"hypercard disabled", cfg.Providers.HyperCard.Enabled, false},
		{"ttl", cfg.Codes.TTL, 2 * time.Minute},
		{"ttl by event, names upper-cased", cfg.Codes.TTLByEvent, map[string]time.Duration{"3DS_OTP": 10 * time.Minute, "OPT_CODE": 90 * time.Second}},
		{"dedupe", cfg.DedupeWindow, 96 * time.Hour},
		{"default kept", cfg.ShutdownTimeout, 15 * time.Second},
		{"default kept in a touched section", cfg.Providers.UPay.Path, "/webhooks/upay"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	tokenFile := writeFile(t, dir, "token", "  123:from-file\n")
	keyFile := writeFile(t, dir, "upay.key", "upay-secret-from-file\n")
	path := writeFile(t, dir, "c.yaml", minimal)
	cfg, err := LoadConfig(path, envMap(map[string]string{
		"OTPBOT_TELEGRAM_TOKEN_FILE":                     tokenFile,
		"OTPBOT_PROVIDERS_UPAY_SECRET_KEY_FILE":          keyFile,
		"OTPBOT_PROVIDERS_HYPERCARD_SIGNATURE_TOLERANCE": "1h",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Telegram.Token != "123:from-file" {
		t.Errorf("token = %q", cfg.Telegram.Token)
	}
	if cfg.Providers.UPay.SecretKey != "upay-secret-from-file" {
		t.Errorf("secret key = %q", cfg.Providers.UPay.SecretKey)
	}

	// Every other secret has its *_file form too.
	bare := writeFile(t, dir, "bare.yaml", "telegram: {token: '1:x'}\n")
	cfg, err = LoadConfig(bare, envMap(map[string]string{
		"OTPBOT_TELEGRAM_WEBHOOK_SECRET_FILE":   writeFile(t, dir, "hook", "hook-secret\n"),
		"OTPBOT_PROVIDERS_UPAY_TOKEN_FILE":      writeFile(t, dir, "upay", "upay-url-token\n"),
		"OTPBOT_PROVIDERS_HYPERCARD_TOKEN_FILE": writeFile(t, dir, "hc", "hc-url-token\n"),
	}))
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]string{"webhook secret": cfg.Telegram.WebhookSecret,
		"upay token": cfg.Providers.UPay.Token, "hypercard token": cfg.Providers.HyperCard.Token} {
		if !strings.HasSuffix(got, "-secret") && !strings.HasSuffix(got, "-token") {
			t.Errorf("%s = %q, want it from its file", name, got)
		}
	}
}

// keyFiles writes PEM files of several kinds and returns their paths.
func keyFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	pkix, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	ecPub, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	enc := func(typ string, b []byte) string { return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b})) }
	return map[string]string{
		"pkcs1":     writeFile(t, dir, "pkcs1.pem", enc("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey))),
		"pkcs8":     writeFile(t, dir, "pkcs8.pem", enc("PRIVATE KEY", pkcs8)),
		"pkix":      writeFile(t, dir, "pub.pem", enc("PUBLIC KEY", pkix)),
		"pkcs1pub":  writeFile(t, dir, "pub1.pem", enc("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey))),
		"bare64pub": writeFile(t, dir, "pub.b64", strings.Join(strings.Split(strings.TrimSpace(enc("PUBLIC KEY", pkix)), "\n")[1:len(strings.Split(strings.TrimSpace(enc("PUBLIC KEY", pkix)), "\n"))-1], "\n")),
		"ecpub":     writeFile(t, dir, "ec.pem", enc("PUBLIC KEY", ecPub)),
		"garbage":   writeFile(t, dir, "garbage.pem", "not a key"),
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	keys := keyFiles(t, dir)
	base := writeFile(t, dir, "c.yaml", "telegram: {token: '1:x'}\n")
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"pkcs1 private", map[string]string{"OTPBOT_PROVIDERS_UPAY_TOKEN": "t", "OTPBOT_PROVIDERS_UPAY_PRIVATE_KEY_FILE": keys["pkcs1"], "OTPBOT_PROVIDERS_HYPERCARD_ENABLED": "false"}, ""},
		{"pkcs8 private", map[string]string{"OTPBOT_PROVIDERS_UPAY_TOKEN": "t", "OTPBOT_PROVIDERS_UPAY_PRIVATE_KEY_FILE": keys["pkcs8"], "OTPBOT_PROVIDERS_HYPERCARD_ENABLED": "false"}, ""},
		{"public key as private", map[string]string{"OTPBOT_PROVIDERS_UPAY_TOKEN": "t", "OTPBOT_PROVIDERS_UPAY_PRIVATE_KEY_FILE": keys["pkix"], "OTPBOT_PROVIDERS_HYPERCARD_ENABLED": "false"}, "config: providers.upay.private_key_file is not an RSA private key"},
		{"missing private", map[string]string{"OTPBOT_PROVIDERS_UPAY_TOKEN": "t", "OTPBOT_PROVIDERS_UPAY_PRIVATE_KEY_FILE": filepath.Join(dir, "nope"), "OTPBOT_PROVIDERS_HYPERCARD_ENABLED": "false"}, "config: providers.upay.private_key_file cannot be read"},
		{"pkix public is auth", map[string]string{"OTPBOT_PROVIDERS_HYPERCARD_PUBLIC_KEY_FILE": keys["pkix"], "OTPBOT_PROVIDERS_UPAY_ENABLED": "false"}, ""},
		{"pkcs1 public", map[string]string{"OTPBOT_PROVIDERS_HYPERCARD_PUBLIC_KEY_FILE": keys["pkcs1pub"], "OTPBOT_PROVIDERS_UPAY_ENABLED": "false"}, ""},
		{"bare base64 public", map[string]string{"OTPBOT_PROVIDERS_HYPERCARD_PUBLIC_KEY_FILE": keys["bare64pub"], "OTPBOT_PROVIDERS_UPAY_ENABLED": "false"}, ""},
		{"hypercard api key", map[string]string{"OTPBOT_PROVIDERS_HYPERCARD_TOKEN": "t", "OTPBOT_PROVIDERS_UPAY_ENABLED": "false", "OTPBOT_PROVIDERS_HYPERCARD_API_BASE_URL": "https://api.example.com", "OTPBOT_PROVIDERS_HYPERCARD_API_API_KEY": "k", "OTPBOT_PROVIDERS_HYPERCARD_API_PRIVATE_KEY_FILE": keys["pkcs8"]}, ""},
		{"hypercard api public key refused", map[string]string{"OTPBOT_PROVIDERS_HYPERCARD_TOKEN": "t", "OTPBOT_PROVIDERS_UPAY_ENABLED": "false", "OTPBOT_PROVIDERS_HYPERCARD_API_BASE_URL": "https://api.example.com", "OTPBOT_PROVIDERS_HYPERCARD_API_API_KEY": "k", "OTPBOT_PROVIDERS_HYPERCARD_API_PRIVATE_KEY_FILE": keys["pkix"]}, "config: providers.hypercard.api.private_key_file is not an RSA private key"},
		{"ec public refused", map[string]string{"OTPBOT_PROVIDERS_HYPERCARD_PUBLIC_KEY_FILE": keys["ecpub"], "OTPBOT_PROVIDERS_UPAY_ENABLED": "false"}, "config: providers.hypercard.public_key_file holds a *ecdsa.PublicKey, not an RSA public key"},
		{"garbage public", map[string]string{"OTPBOT_PROVIDERS_HYPERCARD_PUBLIC_KEY_FILE": keys["garbage"], "OTPBOT_PROVIDERS_UPAY_ENABLED": "false"}, "config: providers.hypercard.public_key_file is not"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig(base, envMap(tt.env))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				k, err := loadKeys(&cfg)
				if err != nil || (k.UPayPrivate == nil && k.HyperCardPublic == nil && k.HyperCardAPI == nil) {
					t.Fatalf("keys not loaded: %+v %v", k, err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want prefix %q", err, tt.wantErr)
			}
			if exitCode(err) != exitConfig {
				t.Errorf("exit code %d, want 2", exitCode(err))
			}
		})
	}
}

func TestValidationErrors(t *testing.T) {
	const secretToken = "999:SUPERSECRETTOKEN"
	tests := []struct {
		name string
		file string
		env  map[string]string
		want string // the exact error line, or a prefix ending in "…"
	}{
		{"token required", minimal, nil, "config: telegram.token is required"},
		{"unknown key", minimal + "telegram: {tokn: x}\n", map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x"}, "config: telegram.tokn is not a known key"},
		{"bad yaml", "telegram: [\n", nil, "config: parse …"},
		{"bad duration", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_CODES_TTL": "five"}, `config: codes.ttl is not a duration ("five"; use Go syntax such as 90s or 5m)`},
		{"bare number duration", minimal + "codes: {ttl: 300}\n", map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x"}, "config: codes.ttl is not a duration …"},
		{"negative duration", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_SHUTDOWN_TIMEOUT": "-1s"}, "config: shutdown_timeout must be a positive duration (got -1s)"},
		{"zero countdown", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_CODES_COUNTDOWN_INTERVAL": "0s"}, "config: codes.countdown_interval must be a positive duration (got 0s)"},
		{"ttl_by_event negative", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_CODES_TTL_BY_EVENT": "3ds_otp=-1m"}, "config: codes.ttl_by_event 3DS_OTP must be positive"},
		{"bad int", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_HISTORY_PER_KEY": "many"}, `config: history.per_key is not a whole number ("many")`},
		{"bad admin", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_TELEGRAM_ADMINS": "1,bob"}, `config: telegram.admins is not a whole number ("bob")`},
		{"chat burst", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_TELEGRAM_RATE_PER_CHAT_BURST": "0"}, "config: telegram.rate.per_chat_burst must be at least 1 (got 0)"},
		{"reserve all workers", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_DELIVERY_WORKERS": "4", "OTPBOT_DELIVERY_RESERVE": "4"}, "config: delivery.reserve must be 0 (automatic) or fewer than delivery.workers (4) (got 4)"},
		{"negative reserve", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_DELIVERY_RESERVE": "-1"}, "config: delivery.reserve must be 0 (automatic) or fewer than delivery.workers (60) (got -1)"},
		{"zero refresh timeout", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_DELIVERY_REFRESH_TIMEOUT": "0s"}, "config: delivery.refresh_timeout must be a positive duration (got 0s)"},
		{"driver", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_STORE_DRIVER": "postgres"}, `config: store.driver must be embedded or redis (got "postgres")`},
		{"redis addr", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_STORE_DRIVER": "redis", "OTPBOT_STORE_REDIS_ADDR": "localhost"}, `config: store.redis.addr must be host:port (got "localhost")`},
		{"redis sentinel and addr", minimal, redisEnv("OTPBOT_STORE_REDIS_ADDR", "10.0.0.5:6379", "OTPBOT_STORE_REDIS_SENTINEL_MASTER_NAME", "m", "OTPBOT_STORE_REDIS_SENTINEL_ADDRS", "s1:26379"), "config: store.redis.addr and store.redis.sentinel are both set; keep one (addr is for a standalone Redis)"},
		{"redis cluster and addr", minimal, redisEnv("OTPBOT_STORE_REDIS_ADDR", "10.0.0.5:6379", "OTPBOT_STORE_REDIS_CLUSTER_ADDRS", "c1:6379"), "config: store.redis.addr and store.redis.cluster_addrs are both set; keep one (addr is for a standalone Redis)"},
		{"redis sentinel and cluster", minimal, redisEnv("OTPBOT_STORE_REDIS_SENTINEL_MASTER_NAME", "m", "OTPBOT_STORE_REDIS_SENTINEL_ADDRS", "s1:26379", "OTPBOT_STORE_REDIS_CLUSTER_ADDRS", "c1:6379"), "config: store.redis.sentinel and store.redis.cluster_addrs are both set; keep one"},
		{"redis sentinel without name", minimal, redisEnv("OTPBOT_STORE_REDIS_SENTINEL_ADDRS", "s1:26379"), "config: store.redis.sentinel.master_name is required with store.redis.sentinel.addrs"},
		{"redis sentinel without addrs", minimal, redisEnv("OTPBOT_STORE_REDIS_SENTINEL_MASTER_NAME", "m"), "config: store.redis.sentinel.addrs is required with store.redis.sentinel.master_name"},
		{"redis sentinel bad addr", minimal, redisEnv("OTPBOT_STORE_REDIS_SENTINEL_MASTER_NAME", "m", "OTPBOT_STORE_REDIS_SENTINEL_ADDRS", "s1:26379,s2"), `config: store.redis.sentinel.addrs must be host:port (got "s2")`},
		{"redis cluster bad addr", minimal, redisEnv("OTPBOT_STORE_REDIS_CLUSTER_ADDRS", "c1"), `config: store.redis.cluster_addrs must be host:port (got "c1")`},
		{"redis cluster db", minimal, redisEnv("OTPBOT_STORE_REDIS_CLUSTER_ADDRS", "c1:6379", "OTPBOT_STORE_REDIS_DB", "2"), "config: store.redis.db must be 0 with store.redis.cluster_addrs (a Redis Cluster has only database 0)"},
		{"redis replicas ack", minimal, redisEnv("OTPBOT_STORE_REDIS_MIN_REPLICAS_ACK", "-1"), "config: store.redis.min_replicas_ack must not be negative (got -1)"},
		{"redis sentinel with the default addr", minimal, redisEnv("OTPBOT_STORE_REDIS_SENTINEL_MASTER_NAME", "m", "OTPBOT_STORE_REDIS_SENTINEL_ADDRS", "s1:26379,s2:26379"), ""},
		{"redis cluster", minimal, redisEnv("OTPBOT_STORE_REDIS_CLUSTER_ADDRS", "c1:6379,c2:6379", "OTPBOT_STORE_REDIS_MIN_REPLICAS_ACK", "1"), ""},
		{"redis addrs removed", minimal + "store: {redis: {addrs: [\"a:1\"]}}\n", redisEnv(), "config: store.redis.addrs was removed: Sentinel addresses go in store.redis.sentinel.addrs, Cluster nodes in store.redis.cluster_addrs; delete it"},
		{"redis master_name removed", minimal + "store: {redis: {master_name: m}}\n", redisEnv(), "config: store.redis.master_name was removed: it is store.redis.sentinel.master_name; delete it"},
		{"redis addrs removed, in the environment", minimal, redisEnv("OTPBOT_STORE_REDIS_ADDRS", "a:1,b:2"), "config: store.redis.addrs was removed (OTPBOT_STORE_REDIS_ADDRS is set): Sentinel addresses go in store.redis.sentinel.addrs, Cluster nodes in store.redis.cluster_addrs; unset it"},
		{"redis password and file", minimal, redisEnv("OTPBOT_STORE_REDIS_PASSWORD", "SUPERSECRET", "OTPBOT_STORE_REDIS_PASSWORD_FILE", "/etc/hostname"), "config: store.redis.password_file and store.redis.password are both set; keep one"},
		{"sentinel password file missing", minimal, redisEnv("OTPBOT_STORE_REDIS_SENTINEL_PASSWORD_FILE", "/nonexistent/pw"), "config: store.redis.sentinel.password_file cannot be read: no such file or directory"},
		{"updates", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_TELEGRAM_UPDATES": "push"}, `config: telegram.updates must be polling or webhook (got "push")`},
		{"webhook url required", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_TELEGRAM_UPDATES": "webhook"}, "config: telegram.webhook_url is required when telegram.updates is webhook"},
		{"webhook url path", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_TELEGRAM_UPDATES": "webhook", "OTPBOT_TELEGRAM_WEBHOOK_URL": "https://bot.example.com"}, "config: telegram.webhook_url must have a path …"},
		{"webhook secret", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_TELEGRAM_UPDATES": "webhook", "OTPBOT_TELEGRAM_WEBHOOK_URL": "https://bot.example.com/tg/x"}, "config: telegram.webhook_secret is required when telegram.updates is webhook"},
		{"webhook path clash", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_TELEGRAM_UPDATES": "webhook", "OTPBOT_TELEGRAM_WEBHOOK_URL": "https://bot.example.com/webhooks/upay", "OTPBOT_TELEGRAM_WEBHOOK_SECRET": "s3cr3t"}, "config: telegram.webhook_url has the same path as providers.upay.path"},
		{"api endpoint", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_TELEGRAM_API_ENDPOINT": "http://localhost:8081/bot"}, "config: telegram.api_endpoint must contain two %s …"},
		{"cidr", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_HTTP_TRUSTED_PROXIES": "10.0.0.0/33"}, `config: http.trusted_proxies has "10.0.0.0/33", which is not a CIDR …`},
		{"allow cidr", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_PROVIDERS_HYPERCARD_ALLOW_IPS": "1.2.3.0/24,nope"}, `config: providers.hypercard.allow_ips has "nope", …`},
		{"upay without auth", "", map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x"}, "config: providers.upay is enabled but has no authentication: …"},
		{"hypercard without auth", "", map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_PROVIDERS_UPAY_SECRET_KEY": "k"}, "config: providers.hypercard is enabled but has no authentication: …"},
		{"require encryption needs key", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_PROVIDERS_UPAY_REQUIRE_ENCRYPTION": "true"}, "config: providers.upay.private_key_file is required when providers.upay.require_encryption is true"},
		{"dedupe below tolerance", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_DEDUPE_WINDOW": "24h"}, "config: dedupe_window (24h0m0s) must exceed providers.hypercard.signature_tolerance (25h0m0s), …"},
		{"dedupe equal to upay tolerance", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_PROVIDERS_UPAY_SIGNATURE_TOLERANCE": "72h"}, "config: dedupe_window (72h0m0s) must exceed providers.upay.signature_tolerance (72h0m0s), …"},
		{"disabled provider tolerance ignored", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_DEDUPE_WINDOW": "2h", "OTPBOT_PROVIDERS_HYPERCARD_ENABLED": "no"}, ""},
		{"same paths", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_PROVIDERS_HYPERCARD_PATH": "/webhooks/upay"}, "config: providers.hypercard.path is the same as providers.upay.path"},
		{"relative path", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_PROVIDERS_UPAY_PATH": "upay"}, `config: providers.upay.path must be a URL path starting with / (got "upay")`},
		{"log level", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_LOG_LEVEL": "loud"}, `config: log.level must be debug, info, warn or error (got "loud")`},
		{"log format", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_LOG_FORMAT": "xml"}, `config: log.format must be text or json (got "xml")`},
		{"rate", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_TELEGRAM_RATE_GLOBAL_PER_SECOND": "0"}, "config: telegram.rate.global_per_second must be positive"},
		{"workers", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_DELIVERY_WORKERS": "-1"}, "config: delivery.workers must be 0 (sized to the rate) or positive"},
		{"listen", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_HTTP_LISTEN": "8080"}, `config: http.listen must be host:port (got "8080")`},
		{"body limit", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_HTTP_MAX_BODY_BYTES": "0"}, "config: http.max_body_bytes must be positive"},
		{"templates dir", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_TEMPLATES_DIR": "/nonexistent/tmpl"}, `config: templates.dir is not a readable folder ("/nonexistent/tmpl")`},
		{"token and token file", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": secretToken, "OTPBOT_TELEGRAM_TOKEN_FILE": "/etc/hostname"}, "config: telegram.token_file and telegram.token are both set; keep one"},
		{"token file missing", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN_FILE": "/nonexistent/token"}, "config: telegram.token_file cannot be read: no such file or directory"},
		{"malformed token not echoed", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "999:SUPER SECRET"}, "config: telegram.token is malformed (it contains whitespace or '/')"},
		{"hypercard api without key", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_PROVIDERS_HYPERCARD_API_BASE_URL": "https://api.example.com"}, "config: providers.hypercard.api.api_key is required when providers.hypercard.api.base_url is set"},
		{"hypercard api without private key", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_PROVIDERS_HYPERCARD_API_BASE_URL": "https://api.example.com", "OTPBOT_PROVIDERS_HYPERCARD_API_API_KEY": "k"}, "config: providers.hypercard.api.private_key_file is required when providers.hypercard.api.base_url is set"},
		{"hypercard api bad url", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_PROVIDERS_HYPERCARD_API_BASE_URL": "api.example.com"}, "config: providers.hypercard.api.base_url must be an http(s) URL with a host and no query"},
		{"hypercard api result", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_PROVIDERS_HYPERCARD_API_BASE_URL": "https://api.example.com", "OTPBOT_PROVIDERS_HYPERCARD_API_API_KEY": "k", "OTPBOT_PROVIDERS_HYPERCARD_API_PRIVATE_KEY_FILE": "/x", "OTPBOT_PROVIDERS_HYPERCARD_API_APPROVE_RESULT": "1"}, "config: providers.hypercard.api.approve_result must be 2 or 3 (got 1)"},
		{"hypercard api same results", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_PROVIDERS_HYPERCARD_API_BASE_URL": "https://api.example.com", "OTPBOT_PROVIDERS_HYPERCARD_API_API_KEY": "k", "OTPBOT_PROVIDERS_HYPERCARD_API_PRIVATE_KEY_FILE": "/x", "OTPBOT_PROVIDERS_HYPERCARD_API_DECLINE_RESULT": "2"}, "config: providers.hypercard.api.decline_result must differ from providers.hypercard.api.approve_result"},
		{"hypercard api key unreadable", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_PROVIDERS_HYPERCARD_API_BASE_URL": "https://api.example.com", "OTPBOT_PROVIDERS_HYPERCARD_API_API_KEY": "k", "OTPBOT_PROVIDERS_HYPERCARD_API_PRIVATE_KEY_FILE": "/nonexistent.pem"}, "config: providers.hypercard.api.private_key_file cannot be read: no such file or directory"},
		{"auth_results not a number", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_PROVIDERS_HYPERCARD_AUTH_RESULTS": "two=approved"}, `config: providers.hypercard.auth_results "two" is not a whole number (the auth_result)`},
		{"auth_results not a state", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_PROVIDERS_HYPERCARD_AUTH_RESULTS": "4=maybe"}, `config: providers.hypercard.auth_results 4 must be approved, declined or pending (got "maybe")`},
		{"auth_results against otpbot's own answers", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_PROVIDERS_HYPERCARD_API_BASE_URL": "https://api.example.com", "OTPBOT_PROVIDERS_HYPERCARD_API_API_KEY": "k", "OTPBOT_PROVIDERS_HYPERCARD_API_PRIVATE_KEY_FILE": "/x", "OTPBOT_PROVIDERS_HYPERCARD_AUTH_RESULTS": "2=declined"}, "config: providers.hypercard.auth_results 2 is declined, but otpbot sends it to answer approve (providers.hypercard.api)"},
		{"auth_results without the api may read 2 otherwise", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_PROVIDERS_HYPERCARD_AUTH_RESULTS": "1=pending,2=declined,3=approved"}, ""},
		{"bad bool", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_HTTP_ADMIN_BACKUP": "maybe"}, `config: http.admin_backup must be true or false (got "maybe")`},
		{"admin listener not host:port", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_HTTP_ADMIN_LISTEN": "9090"}, `config: http.admin_listen must be host:port or empty (got "9090")`},
		{"admin listener on the public address", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_HTTP_ADMIN_LISTEN": "127.0.0.1:8080"}, `config: http.admin_listen must differ from http.listen (got "127.0.0.1:8080" for both)`},
		{"list for a scalar", minimal + "store: {path: [a, b]}\n", map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x"}, "config: store.path wants a single value, not a list or a map"},
		{"valid", minimal, map[string]string{"OTPBOT_TELEGRAM_TOKEN": secretToken}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeFile(t, dir, "c.yaml", tt.file)
			_, err := LoadConfig(path, envMap(tt.env))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			got := err.Error()
			if prefix, ok := strings.CutSuffix(tt.want, "…"); ok {
				if !strings.HasPrefix(got, prefix) {
					t.Errorf("error = %q, want prefix %q", got, prefix)
				}
			} else if got != tt.want {
				t.Errorf("error = %q\nwant    %q", got, tt.want)
			}
			if strings.Contains(got, "\n") {
				t.Errorf("error is not one line: %q", got)
			}
			if strings.Contains(got, "SUPERSECRET") || strings.Contains(got, "SUPER SECRET") {
				t.Errorf("error leaks the token: %q", got)
			}
			if code := exitCode(err); code != exitConfig {
				t.Errorf("exit code %d, want 2", code)
			}
		})
	}
}

// auth_result is read through one mapping: the api section's answers,
// with providers.hypercard.auth_results over them.
func TestAuthResults(t *testing.T) {
	tests := []struct {
		name string
		h    HyperCardConfig
		want map[int]otpbot.AuthState
	}{
		{"defaults", Defaults().Providers.HyperCard, map[int]otpbot.AuthState{2: otpbot.AuthApproved, 3: otpbot.AuthDeclined}},
		{"answers swapped", HyperCardConfig{API: HyperCardAPI{ApproveResult: 3, DeclineResult: 2}},
			map[int]otpbot.AuthState{3: otpbot.AuthApproved, 2: otpbot.AuthDeclined}},
		{"more values", HyperCardConfig{API: HyperCardAPI{ApproveResult: 2, DeclineResult: 3},
			AuthResults: map[string]string{"1": "pending", " 4 ": "Declined"}},
			map[int]otpbot.AuthState{1: otpbot.AuthPending, 2: otpbot.AuthApproved, 3: otpbot.AuthDeclined, 4: otpbot.AuthDeclined}},
	}
	for _, tt := range tests {
		got, err := authResults(tt.h)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: authResults = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
}

// redisEnv is the environment of a valid configuration on the redis
// driver, plus the given name, value pairs.
func redisEnv(kv ...string) map[string]string {
	env := map[string]string{"OTPBOT_TELEGRAM_TOKEN": "1:x", "OTPBOT_STORE_DRIVER": "redis"}
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return env
}
