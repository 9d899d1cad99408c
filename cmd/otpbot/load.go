package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cast"
	"github.com/spf13/viper"

	"github.com/otpbot/otpbot"
)

// envPrefix starts the environment variable of every key.
const envPrefix = "OTPBOT_"

// ConfigError is a configuration problem. It names the offending key, and
// run turns it into exit status 2 with its one line.
type ConfigError struct {
	Key string // the key path, "" when the problem is the file itself
	Msg string // what is wrong, phrased to follow the key
}

// Error renders "config: KEY MSG", the one line docs/contract.md#commands
// promises.
func (e *ConfigError) Error() string {
	if e.Key == "" {
		return "config: " + e.Msg
	}
	return "config: " + e.Key + " " + e.Msg
}

func cfgErr(key, format string, args ...any) *ConfigError {
	return &ConfigError{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// field is one leaf key of Config.
type field struct {
	path  string       // "telegram.rate.global_per_second"
	index []int        // reflect path into Config
	typ   reflect.Type // the Go type of the value
}

// env returns the environment variable that overrides the key.
func (f field) env() string { return envName(f.path) }

func envName(path string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

var durationType = reflect.TypeOf(time.Duration(0))

// configFields lists every leaf key of Config in declaration order. Structs
// are sections; everything else (maps and lists included) is one key.
func configFields() []field {
	var out []field
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			name := sf.Tag.Get("key")
			if name == "" {
				continue
			}
			path := name
			if prefix != "" {
				path = prefix + "." + name
			}
			idx := append(append([]int(nil), index...), i)
			if sf.Type.Kind() == reflect.Struct {
				walk(sf.Type, path, idx)
				continue
			}
			out = append(out, field{path: path, index: idx, typ: sf.Type})
		}
	}
	walk(reflect.TypeOf(Config{}), "", nil)
	return out
}

// LoadConfig reads the YAML file at path, applies the OTPBOT_* overrides
// from getenv for every key (present in the file or not), reads the
// *_file secrets and validates the result. Every error is a *ConfigError.
func LoadConfig(path string, getenv func(string) string) (Config, error) {
	cfg, err := decodeConfig(path, getenv)
	if err != nil {
		return Config{}, err
	}
	if err := resolveSecretFiles(&cfg); err != nil {
		return Config{}, err
	}
	if err := validateConfig(&cfg); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// loadRenderConfig reads the configuration for `otpbot render`, which
// sends nothing and reaches nothing: it needs no token and no secret, so
// only the keys that shape a message (codes, templates, auth_results) are
// validated and no *_file secret is read.
func loadRenderConfig(path string, getenv func(string) string) (Config, error) {
	cfg, err := decodeConfig(path, getenv)
	if err != nil {
		return Config{}, err
	}
	for _, check := range []func(*Config) error{validateCodes, validateTemplates, validateAuthResults} {
		if err := check(&cfg); err != nil {
			return Config{}, err
		}
	}
	return cfg, nil
}

// decodeConfig is LoadConfig without reading the *_file secrets and
// without the validation.
func decodeConfig(path string, getenv func(string) string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, &ConfigError{Msg: fmt.Sprintf("read %s: %v", path, errors.Unwrap(err))}
	}
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return Config{}, &ConfigError{Msg: fmt.Sprintf("parse %s: %v", path, firstLine(err.Error()))}
	}
	fields := configFields()
	if err := checkUnknownKeys(v.AllKeys(), fields); err != nil {
		return Config{}, err
	}
	if err := checkRemovedEnv(getenv); err != nil {
		return Config{}, err
	}

	cfg := Defaults()
	root := reflect.ValueOf(&cfg).Elem()
	for _, f := range fields {
		var raw any
		switch env := strings.TrimSpace(getenv(f.env())); {
		case env != "":
			// The environment wins over the file, for every key: this is
			// done by hand rather than with viper.AutomaticEnv, which only
			// sees keys viper already knows from the file or a default.
			raw = env
		case v.IsSet(f.path):
			raw = v.Get(f.path)
		default:
			continue
		}
		val, err := convert(raw, f.typ)
		if err != nil {
			return Config{}, cfgErr(f.path, "%v", err)
		}
		root.FieldByIndex(f.index).Set(val)
	}
	cfg.Codes.TTLByEvent = normalizeTTLs(cfg.Codes.TTLByEvent)
	return cfg, nil
}

// checkUnknownKeys refuses keys the program does not know, so that a typo
// ("telgram.token") is an error rather than a silently ignored setting.
func checkUnknownKeys(keys []string, fields []field) error {
	known := make(map[string]bool, len(fields))
	var maps []string
	for _, f := range fields {
		known[f.path] = true
		if f.typ.Kind() == reflect.Map {
			maps = append(maps, f.path+".")
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if known[k] {
			continue
		}
		inMap := false
		for _, m := range maps {
			if strings.HasPrefix(k, m) {
				inMap = true
			}
		}
		if why, ok := removedKeys[k]; ok {
			return cfgErr(k, "was removed: %s; delete it", why)
		}
		if !inMap {
			return cfgErr(k, "is not a known key")
		}
	}
	return nil
}

// removedKeys are keys of earlier versions, with why they went: a file
// that still sets one is told so rather than that the key is unknown.
var removedKeys = map[string]string{
	"telegram.rate.instances": "processes sharing one Redis now share one rate budget there",
	"store.redis.addrs":       "Sentinel addresses go in store.redis.sentinel.addrs, Cluster nodes in store.redis.cluster_addrs",
	"store.redis.master_name": "it is store.redis.sentinel.master_name",
}

// checkRemovedEnv refuses an environment variable of a removed key: like
// every OTPBOT_ variable it would be meant to change the configuration,
// and silently ignoring it would run otpbot on other settings.
func checkRemovedEnv(getenv func(string) string) error {
	keys := make([]string, 0, len(removedKeys))
	for k := range removedKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.TrimSpace(getenv(envName(k))) != "" {
			return cfgErr(k, "was removed (%s is set): %s; unset it", envName(k), removedKeys[k])
		}
	}
	return nil
}

// convert turns a value from YAML (or a string from the environment) into
// the Go type of its key.
func convert(raw any, t reflect.Type) (reflect.Value, error) {
	if raw == nil {
		return reflect.Zero(t), nil
	}
	switch {
	case t == durationType:
		d, err := toDuration(raw)
		return reflect.ValueOf(d), err
	case t.Kind() == reflect.String:
		s, err := toScalarString(raw)
		return reflect.ValueOf(s).Convert(t), err
	case t.Kind() == reflect.Bool:
		b, err := toBool(raw)
		return reflect.ValueOf(b), err
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		n, err := toInt(raw)
		return reflect.ValueOf(n).Convert(t), err
	case t.Kind() == reflect.Float64:
		x, err := cast.ToFloat64E(raw)
		if err != nil {
			return reflect.Value{}, fmt.Errorf("want a number, got %v", raw)
		}
		return reflect.ValueOf(x), nil
	case t.Kind() == reflect.Slice:
		items, err := toList(raw)
		if err != nil {
			return reflect.Value{}, err
		}
		out := reflect.MakeSlice(t, 0, len(items))
		for _, it := range items {
			ev, err := convert(it, t.Elem())
			if err != nil {
				return reflect.Value{}, err
			}
			out = reflect.Append(out, ev)
		}
		return out, nil
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		m, err := toMap(raw)
		if err != nil {
			return reflect.Value{}, err
		}
		out := reflect.MakeMapWithSize(t, len(m))
		for k, x := range m {
			ev, err := convert(x, t.Elem())
			if err != nil {
				return reflect.Value{}, fmt.Errorf("%s: %w", k, err)
			}
			out.SetMapIndex(reflect.ValueOf(k), ev)
		}
		return out, nil
	}
	return reflect.Value{}, fmt.Errorf("unsupported type %s", t)
}

// toDuration accepts Go duration syntax only: a bare number would be
// nanoseconds to Go and seconds to a human, so it is refused.
func toDuration(raw any) (time.Duration, error) {
	switch x := raw.(type) {
	case time.Duration:
		return x, nil
	case string:
		d, err := time.ParseDuration(strings.TrimSpace(x))
		if err != nil {
			return 0, fmt.Errorf("is not a duration (%q; use Go syntax such as 90s or 5m)", x)
		}
		return d, nil
	}
	if n, err := cast.ToInt64E(raw); err == nil && n == 0 {
		return 0, nil
	}
	return 0, fmt.Errorf("is not a duration (%v; use Go syntax such as 90s or 5m)", raw)
}

// toBool accepts YAML booleans and, for the environment, true/false,
// yes/no, on/off and 1/0.
func toBool(raw any) (bool, error) {
	if s, ok := raw.(string); ok {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "yes", "on", "1":
			return true, nil
		case "false", "no", "off", "0":
			return false, nil
		}
		return false, fmt.Errorf("must be true or false (got %q)", s)
	}
	b, err := cast.ToBoolE(raw)
	if err != nil {
		return false, fmt.Errorf("must be true or false (got %v)", raw)
	}
	return b, nil
}

func toScalarString(raw any) (string, error) {
	switch raw.(type) {
	case map[string]any, []any:
		return "", errors.New("wants a single value, not a list or a map")
	}
	s, err := cast.ToStringE(raw)
	if err != nil {
		return "", fmt.Errorf("wants a string, got %v", raw)
	}
	return s, nil
}

func toInt(raw any) (int64, error) {
	switch x := raw.(type) {
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("is not a whole number (%q)", x)
		}
		return n, nil
	case float64:
		if x != float64(int64(x)) {
			return 0, fmt.Errorf("is not a whole number (%v)", x)
		}
		return int64(x), nil
	}
	n, err := cast.ToInt64E(raw)
	if err != nil {
		return 0, fmt.Errorf("is not a whole number (%v)", raw)
	}
	return n, nil
}

// toList accepts a YAML list, or a string of comma- or space-separated
// items (the environment's form: OTPBOT_TELEGRAM_ADMINS="1,2"), or a JSON
// array.
func toList(raw any) ([]any, error) {
	switch x := raw.(type) {
	case []any:
		return x, nil
	case string:
		s := strings.TrimSpace(x)
		if strings.HasPrefix(s, "[") {
			var items []any
			if err := json.Unmarshal([]byte(s), &items); err != nil {
				return nil, fmt.Errorf("is not a JSON list: %v", err)
			}
			return items, nil
		}
		var items []any
		for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
			items = append(items, p)
		}
		return items, nil
	}
	if reflect.ValueOf(raw).Kind() == reflect.Slice {
		rv := reflect.ValueOf(raw)
		items := make([]any, rv.Len())
		for i := range items {
			items[i] = rv.Index(i).Interface()
		}
		return items, nil
	}
	// A single scalar is a list of one.
	return []any{raw}, nil
}

// toMap accepts a YAML map, or a string "K=V,K=V" or a JSON object (the
// environment's forms).
func toMap(raw any) (map[string]any, error) {
	switch x := raw.(type) {
	case map[string]any:
		return x, nil
	case string:
		s := strings.TrimSpace(x)
		out := map[string]any{}
		if strings.HasPrefix(s, "{") {
			if err := json.Unmarshal([]byte(s), &out); err != nil {
				return nil, fmt.Errorf("is not a JSON object: %v", err)
			}
			return out, nil
		}
		for _, p := range strings.Split(s, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			k, val, ok := strings.Cut(p, "=")
			if !ok {
				k, val, ok = strings.Cut(p, ":")
			}
			if !ok || strings.TrimSpace(k) == "" {
				return nil, fmt.Errorf("wants KEY=VALUE pairs separated by commas, got %q", p)
			}
			out[strings.TrimSpace(k)] = strings.TrimSpace(val)
		}
		return out, nil
	}
	m, err := cast.ToStringMapE(raw)
	if err != nil {
		return nil, fmt.Errorf("wants a map, got %v", raw)
	}
	return m, nil
}

// normalizeTTLs upper-cases event names (viper lower-cases map keys) so that
// they match otpbot.NormalizeName of the event.
func normalizeTTLs(m map[string]time.Duration) map[string]time.Duration {
	out := make(map[string]time.Duration, len(m))
	for k, v := range m {
		out[otpbot.NormalizeName(k)] = v
	}
	return out
}

// resolveSecretFiles reads the *_file keys into their values.
func resolveSecretFiles(cfg *Config) error {
	pairs := []struct {
		valueKey, fileKey string
		value             *string
		file              string
	}{
		{"telegram.token", "telegram.token_file", &cfg.Telegram.Token, cfg.Telegram.TokenFile},
		{"telegram.webhook_secret", "telegram.webhook_secret_file", &cfg.Telegram.WebhookSecret, cfg.Telegram.WebhookSecretFile},
		{"providers.upay.token", "providers.upay.token_file", &cfg.Providers.UPay.Token, cfg.Providers.UPay.TokenFile},
		{"providers.hypercard.token", "providers.hypercard.token_file", &cfg.Providers.HyperCard.Token, cfg.Providers.HyperCard.TokenFile},
		{"providers.upay.secret_key", "providers.upay.secret_key_file", &cfg.Providers.UPay.SecretKey, cfg.Providers.UPay.SecretKeyFile},
		{"providers.hypercard.api.api_key", "providers.hypercard.api.api_key_file", &cfg.Providers.HyperCard.API.APIKey, cfg.Providers.HyperCard.API.APIKeyFile},
		{"store.redis.password", "store.redis.password_file", &cfg.Store.Redis.Password, cfg.Store.Redis.PasswordFile},
		{"store.redis.sentinel.password", "store.redis.sentinel.password_file", &cfg.Store.Redis.Sentinel.Password, cfg.Store.Redis.Sentinel.PasswordFile},
	}
	for _, p := range pairs {
		if p.file == "" {
			continue
		}
		if *p.value != "" {
			return cfgErr(p.fileKey, "and %s are both set; keep one", p.valueKey)
		}
		b, err := os.ReadFile(p.file)
		if err != nil {
			return cfgErr(p.fileKey, "cannot be read: %v", errors.Unwrap(err))
		}
		*p.value = strings.TrimSpace(string(b))
		if *p.value == "" {
			return cfgErr(p.fileKey, "names an empty file")
		}
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
