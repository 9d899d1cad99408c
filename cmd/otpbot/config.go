package main

import (
	"time"
)

// Config is the whole configuration, decoded from YAML and the environment
// into plain values that are handed to the constructors. The `key` tag is
// the name of each field in the file; the path of a key joins the names
// with dots ("telegram.rate.global_per_second"), and its environment
// variable is OTPBOT_ + the path upper-cased with "." → "_".
type Config struct {
	Log             LogConfig       `key:"log"`
	Telegram        TelegramConfig  `key:"telegram"`
	HTTP            HTTPConfig      `key:"http"`
	Store           StoreConfig     `key:"store"`
	Providers       ProvidersConfig `key:"providers"`
	Codes           CodesConfig     `key:"codes"`
	History         HistoryConfig   `key:"history"`
	Delivery        DeliveryConfig  `key:"delivery"`
	DedupeWindow    time.Duration   `key:"dedupe_window"`
	ShutdownTimeout time.Duration   `key:"shutdown_timeout"`
	Templates       TemplatesConfig `key:"templates"`
}

// LogConfig is the log section.
type LogConfig struct {
	Level  string `key:"level"`
	Format string `key:"format"`
}

// TelegramConfig is the telegram section.
type TelegramConfig struct {
	Token         string  `key:"token"`
	TokenFile     string  `key:"token_file"`
	APIEndpoint   string  `key:"api_endpoint"`
	Admins        []int64 `key:"admins"`
	Updates       string  `key:"updates"`
	WebhookURL    string  `key:"webhook_url"`
	WebhookSecret string  `key:"webhook_secret"`
	// WebhookSecretFile holds webhook_secret instead (not both).
	WebhookSecretFile string     `key:"webhook_secret_file"`
	OpsChat           int64      `key:"ops_chat"`
	Rate              RateConfig `key:"rate"`
}

// RateConfig is telegram.rate: the limits the bot keeps below, so that
// Telegram rarely has to answer 429.
type RateConfig struct {
	GlobalPerSecond  float64       `key:"global_per_second"`
	PerChatPerSecond float64       `key:"per_chat_per_second"`
	PerChatBurst     int           `key:"per_chat_burst"`
	GroupPerMinute   float64       `key:"group_per_minute"`
	MaxRetryAfter    time.Duration `key:"max_retry_after"`
}

// HTTPConfig is the http section.
type HTTPConfig struct {
	Listen            string        `key:"listen"`
	AdminListen       string        `key:"admin_listen"`
	MaxBodyBytes      int64         `key:"max_body_bytes"`
	TrustedProxies    []string      `key:"trusted_proxies"`
	ReadHeaderTimeout time.Duration `key:"read_header_timeout"`
	ReadTimeout       time.Duration `key:"read_timeout"`
	WriteTimeout      time.Duration `key:"write_timeout"`
	IdleTimeout       time.Duration `key:"idle_timeout"`
	AdminBackup       bool          `key:"admin_backup"`
	Pprof             bool          `key:"pprof"`
}

// StoreConfig is the store section.
type StoreConfig struct {
	Driver string      `key:"driver"`
	Path   string      `key:"path"`
	Redis  RedisConfig `key:"redis"`
}

// RedisConfig is store.redis: one of three topologies. addr names a
// standalone server, sentinel a primary found (and followed through
// failovers) through Redis Sentinel, cluster_addrs some nodes of a Redis
// Cluster.
type RedisConfig struct {
	Addr           string         `key:"addr"`
	Sentinel       SentinelConfig `key:"sentinel"`
	ClusterAddrs   []string       `key:"cluster_addrs"`
	MinReplicasAck int            `key:"min_replicas_ack"`
	Username       string         `key:"username"`
	Password       string         `key:"password"`
	PasswordFile   string         `key:"password_file"`
	DB             int            `key:"db"`
	Prefix         string         `key:"prefix"`
}

// SentinelConfig is store.redis.sentinel. Its username and password are
// the sentinels' own (Sentinel's ACL); the data servers take
// store.redis.username and store.redis.password.
type SentinelConfig struct {
	MasterName   string   `key:"master_name"`
	Addrs        []string `key:"addrs"`
	Username     string   `key:"username"`
	Password     string   `key:"password"`
	PasswordFile string   `key:"password_file"`
}

// sentinel reports whether store.redis.sentinel is in use.
func (rc *RedisConfig) sentinel() bool {
	return rc.Sentinel.MasterName != "" || len(rc.Sentinel.Addrs) > 0
}

// ProvidersConfig is the providers section.
type ProvidersConfig struct {
	UPay      UPayConfig      `key:"upay"`
	HyperCard HyperCardConfig `key:"hypercard"`
}

// UPayConfig is providers.upay.
type UPayConfig struct {
	Enabled            bool          `key:"enabled"`
	Path               string        `key:"path"`
	Token              string        `key:"token"`
	TokenFile          string        `key:"token_file"`
	SecretKey          string        `key:"secret_key"`
	SecretKeyFile      string        `key:"secret_key_file"`
	PrivateKeyFile     string        `key:"private_key_file"`
	RequireEncryption  bool          `key:"require_encryption"`
	SignatureTolerance time.Duration `key:"signature_tolerance"`
	AllowIPs           []string      `key:"allow_ips"`
}

// HyperCardConfig is providers.hypercard.
type HyperCardConfig struct {
	Enabled            bool          `key:"enabled"`
	Path               string        `key:"path"`
	Token              string        `key:"token"`
	TokenFile          string        `key:"token_file"`
	PublicKeyFile      string        `key:"public_key_file"`
	SignatureTolerance time.Duration `key:"signature_tolerance"`
	AllowIPs           []string      `key:"allow_ips"`
	// AuthResults says what an AUTH_3DS auth_result means, over what the
	// api section's approve_result and decline_result already say.
	AuthResults map[string]string `key:"auth_results"`
	API         HyperCardAPI      `key:"api"`
}

// HyperCardAPI is providers.hypercard.api: HyperCard's merchant API, which
// otpbot calls to answer AUTH_3DS approval requests from Telegram. Empty
// base_url leaves approval requests informational (no buttons).
type HyperCardAPI struct {
	BaseURL        string        `key:"base_url"`
	APIKey         string        `key:"api_key"`
	APIKeyFile     string        `key:"api_key_file"`
	PrivateKeyFile string        `key:"private_key_file"`
	Version        string        `key:"version"`
	Timeout        time.Duration `key:"timeout"`
	ApproveResult  int           `key:"approve_result"`
	DeclineResult  int           `key:"decline_result"`
	AllowedUsers   []int64       `key:"allowed_users"`
}

// CodesConfig is the codes section.
type CodesConfig struct {
	TTL               time.Duration            `key:"ttl"`
	TTLByEvent        map[string]time.Duration `key:"ttl_by_event"`
	CountdownInterval time.Duration            `key:"countdown_interval"`
}

// HistoryConfig is the history section.
type HistoryConfig struct {
	PerKey    int           `key:"per_key"`
	Retention time.Duration `key:"retention"`
}

// DeliveryConfig is the delivery section: the workers that drain the
// outbox.
type DeliveryConfig struct {
	Workers int           `key:"workers"`
	Lease   time.Duration `key:"lease"`
	// Reserve is how many workers countdown work leaves to codes; 0 means
	// the bot package's default (a quarter of Workers, at least 2).
	Reserve        int           `key:"reserve"`
	RefreshTimeout time.Duration `key:"refresh_timeout"`
}

// TemplatesConfig is the templates section.
type TemplatesConfig struct {
	Dir             string `key:"dir"`
	DefaultLanguage string `key:"default_language"`
	TimeZone        string `key:"timezone"`
}

// Defaults returns the configuration a file without any key gets. It is the
// single source of the defaults: config.example.yaml and
// docs/configuration.md are checked against it by tests.
func Defaults() Config {
	return Config{
		Log: LogConfig{Level: "info", Format: "text"},
		Telegram: TelegramConfig{
			Updates: "polling",
			Admins:  []int64{},
			Rate: RateConfig{
				GlobalPerSecond:  30,
				PerChatPerSecond: 1,
				PerChatBurst:     3,
				GroupPerMinute:   20,
				MaxRetryAfter:    5 * time.Minute,
			},
		},
		HTTP: HTTPConfig{
			Listen:            "127.0.0.1:8080",
			MaxBodyBytes:      1 << 20,
			TrustedProxies:    []string{},
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      10 * time.Second,
			IdleTimeout:       60 * time.Second,
			AdminBackup:       true,
		},
		Store: StoreConfig{
			Driver: "embedded",
			Path:   "otpbot.db",
			Redis: RedisConfig{
				Addr:         "127.0.0.1:6379",
				Sentinel:     SentinelConfig{Addrs: []string{}},
				ClusterAddrs: []string{},
				Prefix:       "otpbot:",
			},
		},
		Providers: ProvidersConfig{
			UPay: UPayConfig{
				Enabled:            true,
				Path:               "/webhooks/upay",
				SignatureTolerance: 5 * time.Minute,
				AllowIPs:           []string{},
			},
			HyperCard: HyperCardConfig{
				Enabled:            true,
				Path:               "/hc_sync/common",
				SignatureTolerance: 25 * time.Hour,
				AllowIPs:           []string{},
				AuthResults:        map[string]string{},
				API: HyperCardAPI{
					Version:       "1.0",
					Timeout:       10 * time.Second,
					ApproveResult: 2,
					DeclineResult: 3,
					AllowedUsers:  []int64{},
				},
			},
		},
		Codes: CodesConfig{
			TTL:               5 * time.Minute,
			TTLByEvent:        map[string]time.Duration{},
			CountdownInterval: 30 * time.Second,
		},
		History:         HistoryConfig{PerKey: 1000, Retention: 720 * time.Hour},
		Templates:       TemplatesConfig{DefaultLanguage: "en", TimeZone: "UTC"},
		Delivery:        DeliveryConfig{Lease: 30 * time.Second, RefreshTimeout: 5 * time.Second},
		DedupeWindow:    72 * time.Hour,
		ShutdownTimeout: 15 * time.Second,
	}
}

// keyDocs says what each key means, for docs/configuration.md. A test
// fails when a key has no entry here, so a new key cannot go undocumented.
var keyDocs = map[string]string{
	"log.level":  "Log level: `debug`, `info`, `warn` or `error`.",
	"log.format": "Log format: `text` (logfmt) or `json`. Codes, tokens, secrets and card numbers are redacted in both; JSON writes durations as whole milliseconds (`duration_ms`).",

	"telegram.token":          "Bot token from @BotFather. Required (here, in `OTPBOT_TELEGRAM_TOKEN` or through `telegram.token_file`).",
	"telegram.token_file":     "File holding the bot token (surrounding whitespace trimmed); set it or `telegram.token`, not both.",
	"telegram.api_endpoint":   "Bot API endpoint, a format with two `%s` (token, method); empty means Telegram's cloud. `http://host:port/bot%s/%s` for a local Bot API server.",
	"telegram.admins":         "Telegram user ids allowed to run ops commands (`/link`, `/unlink`, `/invite`, any `/history`). In the environment: comma-separated.",
	"telegram.updates":        "How updates arrive: `polling` (getUpdates; with Redis one instance polls at a time) or `webhook`.",
	"telegram.webhook_url":    "URL Telegram posts updates to when `telegram.updates: webhook`; otpbot serves its path. https for Telegram's cloud; http works with a local Bot API server. The path is a secret and never logged.",
	"telegram.webhook_secret": "Secret Telegram sends in `X-Telegram-Bot-Api-Secret-Token`; an update without it gets 401.",
	"telegram.ops_chat":       "Optional chat id for operational reports (unrouted and rejected pushes, broken links, prolonged Telegram failures); 0 for none.",

	"telegram.rate.global_per_second":   "Bot API calls per second overall, every kind counted (sends, edits, deletions, command replies, callback answers), sustained exactly; a burst of a sixth of it may go at once after a quiet spell (Telegram allows about 30 a second). Processes on one Redis share this one budget.",
	"telegram.rate.per_chat_per_second": "Calls per second to one chat (Telegram allows about 1).",
	"telegram.rate.per_chat_burst":      "Calls one chat may get at once before `per_chat_per_second` applies (Telegram tolerates short bursts). Countdown refreshes leave the last of them to a code, so a code never waits for a refresh in its own chat.",
	"telegram.rate.group_per_minute":    "Messages per minute to one group (Telegram allows about 20).",
	"telegram.rate.max_retry_after":     "Cap on a `retry_after` Telegram asks for; a longer one is cut to this and logged.",

	"http.listen":              "Address the HTTP server listens on (provider webhooks, Telegram webhook, /healthz, /readyz; /metrics, /admin/backup and /debug/pprof/ too unless `http.admin_listen` is set).",
	"http.admin_listen":        "Optional second address (e.g. `127.0.0.1:9090`) for the operator's endpoints: `/metrics`, `/admin/backup` and `/debug/pprof/` are then served only there and are gone (404) from `http.listen`, so a reverse proxy in front of `http.listen` can never reach them. Empty: they stay on `http.listen`.",
	"http.max_body_bytes":      "Largest request body accepted; a larger one gets 413.",
	"http.trusted_proxies":     "CIDRs of reverse proxies whose `X-Forwarded-For` / `X-Real-IP` is believed for `allow_ips`; otherwise the peer address counts.",
	"http.read_header_timeout": "Time allowed to read a request's headers.",
	"http.read_timeout":        "Time allowed to read a whole request.",
	"http.write_timeout":       "Time allowed to write a response (UPay gives up after 5 s; an acknowledgement waits only for the store).",
	"http.idle_timeout":        "How long an idle keep-alive connection stays open.",
	"http.admin_backup":        "Serve `GET /admin/backup` (a consistent snapshot of the embedded store, on `http.admin_listen` when set) to clients on this host only, so `otpbot backup` works while `serve` holds the file. Requests carrying proxy headers are refused.",
	"http.pprof":               "Serve Go's profiler (`net/http/pprof`) under `/debug/pprof/` (on `http.admin_listen` when set) to loopback clients only, for profiling a running instance (`go tool pprof http://127.0.0.1:8080/debug/pprof/profile?seconds=30`). Requests from any other address, or carrying proxy headers, get 403; off, the path does not exist.",

	"store.driver":                       "`embedded` (one bbolt file, one instance) or `redis` (shared by many instances).",
	"store.path":                         "File of the embedded store.",
	"store.redis.addr":                   "Address (`host:port`) of a standalone Redis. Its default is ignored when `sentinel` or `cluster_addrs` is set; any other value next to them is an error.",
	"store.redis.sentinel.master_name":   "Name the sentinels monitor the primary under. With `sentinel.addrs` otpbot reaches Redis through Sentinel instead of `addr`: it asks the sentinels for the primary and follows a failover by itself.",
	"store.redis.sentinel.addrs":         "Sentinel addresses (`host:port`): every sentinel, or at least one that answers. In the environment: comma-separated.",
	"store.redis.sentinel.username":      "User for the sentinels themselves (Sentinel's own ACL); the data servers take `store.redis.username`.",
	"store.redis.sentinel.password":      "Password of the sentinels themselves (never printed); the data servers take `store.redis.password`.",
	"store.redis.sentinel.password_file": "File holding `sentinel.password`; set it or `sentinel.password`, not both.",
	"store.redis.cluster_addrs":          "Addresses (`host:port`) of Redis Cluster nodes, instead of `addr`: a few are enough, otpbot discovers the rest. In the environment: comma-separated.",
	"store.redis.min_replicas_ack":       "Replicas that must hold a push before it is acknowledged (Redis `WAIT` on the connection that wrote it, at most 1 s; fewer → 503, so the provider retries). 0 acknowledges once the primary has it. Run at least this many + 1 replicas, or after a failover none is left to acknowledge; `otpbot check` fails when fewer are connected.",
	"store.redis.username":               "Redis ACL user (Redis 6 or later) of the data servers; empty for the default user.",
	"store.redis.password":               "Redis password of the data servers (never printed).",
	"store.redis.password_file":          "File holding the Redis password; set it or `password`, not both.",
	"store.redis.db":                     "Redis database number (standalone and Sentinel; a Cluster has only 0).",
	"store.redis.prefix":                 "Prefix of every key otpbot writes, so several deployments can share one Redis.",

	"providers.upay.enabled":             "Accept UPay pushes. An enabled provider needs `token` or `secret_key`.",
	"providers.upay.path":                "Path of the UPay webhook, as set in the UPay white-label back office.",
	"providers.upay.token":               "Shared secret expected as `?token=` in the URL or `Authorization: Bearer`.",
	"providers.upay.secret_key":          "UPay SecretKey: verifies `X-UPA-SIGN` (HMAC-SHA256 of `event|X-UPA-TIMESTAMP|body`).",
	"providers.upay.secret_key_file":     "File holding the UPay SecretKey; set it or `secret_key`, not both.",
	"providers.upay.token_file":          "File holding the URL token instead; set it or `token`, not both.",
	"providers.hypercard.token_file":     "File holding the URL token instead; set it or `token`, not both.",
	"telegram.webhook_secret_file":       "File holding `webhook_secret` instead; set it or `webhook_secret`, not both.",
	"providers.upay.private_key_file":    "Merchant RSA private key (PEM) that decrypts JWE-encrypted bodies (`{\"payload\":\"<JWE>\"}`).",
	"providers.upay.require_encryption":  "Refuse plain JSON bodies: every push must be JWE-encrypted (needs `private_key_file`).",
	"providers.upay.signature_tolerance": "How far `X-UPA-TIMESTAMP` may be from now (it is the first push's time, reused on retries).",
	"providers.upay.allow_ips":           "CIDRs UPay pushes may come from; empty allows any address.",

	"providers.hypercard.enabled":             "Accept HyperCard pushes. An enabled provider needs `token` or `public_key_file`.",
	"providers.hypercard.path":                "Path of the HyperCard webhook, as set in the HyperCard merchant platform.",
	"providers.hypercard.token":               "Shared secret expected as `?token=` in the URL or `Authorization: Bearer`.",
	"providers.hypercard.public_key_file":     "HyperCard's RSA public key (PEM) that verifies the SHA256withRSA `signature` header.",
	"providers.hypercard.signature_tolerance": "How far the `timestamp` header may be from now; HyperCard retries for 24 h and may resend the original request.",
	"providers.hypercard.allow_ips":           "CIDRs HyperCard pushes may come from; empty allows any address.",
	"providers.hypercard.auth_results":        "What an `AUTH_3DS` `auth_result` means: `approved`, `declined` or `pending`, per value, e.g. `{\"1\": pending, \"2\": approved, \"3\": declined}`. Over the defaults `api.approve_result` → approved and `api.decline_result` → declined (2 and 3); a value listed nowhere is pending and kept as a number in history. A decided request shows its decision, without buttons, and leaves `/codes`. In the environment: `1=pending,2=approved,3=declined` or JSON.",

	"providers.hypercard.api.base_url":         "HyperCard API root (e.g. `https://api.hyperpay.example`). When set, approval requests (AUTH_3DS) get Approve / Decline buttons and otpbot sends the answer to HyperCard; empty leaves them informational.",
	"providers.hypercard.api.api_key":          "Merchant `api-key` for HyperCard's API (never printed). Required with `base_url`.",
	"providers.hypercard.api.api_key_file":     "File holding the api key instead; not both.",
	"providers.hypercard.api.private_key_file": "Merchant RSA private key (PEM) whose public half is registered on HyperCard's merchant platform; signs the API requests. Required with `base_url`.",
	"providers.hypercard.api.version":          "`version` header of API requests (HyperCard does not publish the value).",
	"providers.hypercard.api.timeout":          "Longest wait for HyperCard's answer to one approval.",
	"providers.hypercard.api.approve_result":   "`auth_result` sent to approve: 2 or 3. HyperCard's documents do not say which is which; check with HyperCard.",
	"providers.hypercard.api.decline_result":   "`auth_result` sent to decline: the other of 2 and 3.",
	"providers.hypercard.api.allowed_users":    "Telegram user ids who may answer approval requests in a group; empty means any member of a linked chat. In a private chat its owner always may.",

	"codes.ttl":                "Lifetime of a code whose push carries no expiry.",
	"codes.ttl_by_event":       "Lifetime per event name, e.g. `{\"3DS_OTP\": 10m, \"OPT_CODE\": 5m}`; names match case-insensitively. In the environment: `3DS_OTP=10m,OPT_CODE=5m` or JSON.",
	"codes.countdown_interval": "How often the time left in a code message is refreshed.",

	"history.per_key":   "Events kept per card / customer.",
	"history.retention": "How long history entries are kept.",

	"delivery.workers":         "Most Telegram calls in flight at once per instance. 0 (the default) sizes it to the rate budget: two seconds' worth of `telegram.rate.global_per_second` (60 at 30/s), so the bot keeps the full rate even when Telegram is 300 ms away.",
	"delivery.lease":           "How long a claimed delivery stays with one worker before another instance may take it over (after a crash).",
	"delivery.reserve":         "Calls in flight that countdown refreshes and ops notices leave free for new codes and updates, so countdown work never delays a code. 0 means a quarter of `delivery.workers`, at least 2; always fewer than the workers.",
	"delivery.refresh_timeout": "Longest Telegram call of a countdown refresh: a late refresh is worthless, and a stuck one must not hold a worker.",

	"dedupe_window":              "How long a push identity is remembered: a repeat within it is acknowledged and not sent again. Must exceed every `signature_tolerance`, so a replayed signed request is only ever a repeat.",
	"shutdown_timeout":           "Longest graceful shutdown: stop accepting, finish in-flight work, leave the rest in the outbox. Telegram calls still running 3 s before it (at half of it, when shorter than 6 s) are cut off and their work handed back to the outbox, due at once for the next start; below 4 s a stop may take up to half of it plus 2 s.",
	"templates.dir":              "Optional folder of template overrides: `DIR/<lang>/name.tmpl` replaces one template of one language (`DIR/ru/code_live.tmpl`), `DIR/name.tmpl` one of English; a folder named by a language otpbot has no templates for (`DIR/de/`) adds that language, its missing templates in English. Every file is checked at start. See templates/README.md.",
	"templates.default_language": "Language of groups and of private chats whose user's Telegram language is not available (a chat can choose its own with `/language`): `en`, `ru`, `zh` (Simplified Chinese), `es`, `pt-BR`, `tr`, or one `templates.dir` adds.",
	"templates.timezone":         "IANA time zone of the times in messages and `/history` (with the zone's abbreviation), unless a chat chose its own with `/timezone`.",
}
