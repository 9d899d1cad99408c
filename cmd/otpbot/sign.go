package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/otpbot/otpbot/webhooks"
)

// signedRequest is a push ready to send: URL, headers, body.
type signedRequest struct {
	URL     string
	Headers [][2]string // in print order
	Body    []byte
}

// cmdSign prints a curl command that sends a correctly authenticated push
// to this deployment: a sample code event by default, or -file. Secrets
// from the configuration are referenced as environment variables in the
// command (never printed) unless -reveal is given.
func cmdSign(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, configFlag := newFlags("sign", stderr)
	provider := fs.String("provider", "", "upay or hypercard")
	file := fs.String("file", "", "push body to sign (JSON); default a sample code push")
	card := fs.String("card", "C1", "card id of the sample push")
	code := fs.String("code", "", "code of the sample push; default random 6 digits")
	base := fs.String("url", "", "base URL of otpbot; default http:// + http.listen")
	keyFile := fs.String("key", "", "HyperCard: the RSA private key (PEM) matching providers.hypercard.public_key_file, to sign with")
	apiKey := fs.String("api-key", "otpbot-test", "HyperCard: the api-key header")
	encrypt := fs.Bool("encrypt", false, "UPay: encrypt the body (JWE) for providers.upay.private_key_file; implied by require_encryption")
	reveal := fs.Bool("reveal", false, "print the URL token itself instead of a $OTPBOT_PROVIDERS_..._TOKEN reference")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if _, err := parserFor(*provider); err != nil {
		return err
	}
	cfg, err := loadFromFlags(*configFlag, getenv)
	if err != nil {
		return err
	}
	keys, err := loadKeys(&cfg)
	if err != nil {
		return err
	}
	if *code == "" {
		*code = randomDigits(6)
	}
	var body []byte
	if *file != "" {
		if body, err = readBody(*file); err != nil {
			return fmt.Errorf("sign: %w", err)
		}
	}
	now := time.Now()
	opts := signOptions{
		base: *base, card: *card, code: *code, body: body, now: now,
		keyFile: *keyFile, apiKey: *apiKey, encrypt: *encrypt, reveal: *reveal,
	}
	var req signedRequest
	switch strings.ToLower(*provider) {
	case "upay":
		req, err = signUPay(&cfg, keys, opts)
	default:
		req, err = signHyperCard(&cfg, opts)
	}
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, curlCommand(req))
	if strings.Contains(req.URL, "${") {
		fmt.Fprintln(stderr, "sign: the URL token is taken from the environment variable in the command when the shell runs it; -reveal prints the token itself")
	}
	return nil
}

// signOptions are the flags of sign.
type signOptions struct {
	base, card, code string
	body             []byte
	now              time.Time
	keyFile, apiKey  string
	encrypt, reveal  bool
}

// baseURL is where the operator's otpbot answers: flagValue when set,
// else http.listen.
func baseURL(cfg *Config, flagValue string) string {
	if flagValue != "" {
		return strings.TrimRight(flagValue, "/")
	}
	return listenURL(cfg.HTTP.Listen)
}

// listenURL is the http:// URL of a listen address, as a client on this
// host reaches it (an unspecified host is reached at 127.0.0.1).
func listenURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// tokenValue is the token as the command shows it: a shell reference to
// its environment variable, or itself with -reveal.
func tokenValue(token, envVar string, reveal bool) string {
	if reveal {
		return url.QueryEscape(token)
	}
	return "${" + envVar + "}"
}

func signUPay(cfg *Config, keys Keys, o signOptions) (signedRequest, error) {
	u := cfg.Providers.UPay
	if !u.Enabled {
		return signedRequest{}, cfgErr("providers.upay.enabled", "is false: otpbot does not accept UPay pushes")
	}
	body := o.body
	if body == nil {
		order := "SIGN-" + strconv.FormatInt(o.now.UnixNano(), 36)
		sample := map[string]any{
			"event": "3DS_OTP", "trace": "TR-" + order, "orderNo": order, "timestamp": o.now.UnixMilli(),
			"detail": map[string]any{
				"cardId": o.card, "cardNumber": "5555666677771234", "customerNo": "CU-SAMPLE",
				"3dsCode": o.code, "orderNo": order,
			},
		}
		body, _ = json.Marshal(sample)
	}
	var probe struct {
		Event string `json:"event"`
	}
	if err := json.Unmarshal(body, &probe); err != nil || probe.Event == "" {
		return signedRequest{}, fmt.Errorf("sign: the UPay body must be a JSON object with an event")
	}
	if o.encrypt || u.RequireEncryption {
		if keys.UPayPrivate == nil {
			return signedRequest{}, cfgErr("providers.upay.private_key_file", "is required to encrypt (-encrypt)")
		}
		enc, err := webhooks.EncryptUPay(&keys.UPayPrivate.PublicKey, body)
		if err != nil {
			return signedRequest{}, fmt.Errorf("sign: %w", err)
		}
		body = enc
	}
	req := signedRequest{URL: baseURL(cfg, o.base) + u.Path, Body: body}
	req.Headers = append(req.Headers, [2]string{"Content-Type", "application/json; charset=UTF-8"})
	if u.Token != "" {
		req.URL += "?token=" + tokenValue(u.Token, envName("providers.upay.token"), o.reveal)
	}
	if u.SecretKey != "" {
		ts := strconv.FormatInt(o.now.UnixMilli(), 10)
		req.Headers = append(req.Headers,
			[2]string{"X-UPA-REQUESTID", randomHex(16)},
			[2]string{"X-UPA-TIMESTAMP", ts},
			[2]string{"X-UPA-SIGN", webhooks.SignUPay([]byte(u.SecretKey), probe.Event, ts, body)},
		)
	}
	return req, nil
}

func signHyperCard(cfg *Config, o signOptions) (signedRequest, error) {
	h := cfg.Providers.HyperCard
	if !h.Enabled {
		return signedRequest{}, cfgErr("providers.hypercard.enabled", "is false: otpbot does not accept HyperCard pushes")
	}
	body := o.body
	if body == nil {
		body = fmt.Appendf(nil, `{"notify_type":"OPT_CODE","card_id":%q,"code":%q,"create_time":%d}`, o.card, o.code, o.now.Unix())
	}
	req := signedRequest{URL: baseURL(cfg, o.base) + h.Path, Body: body}
	req.Headers = append(req.Headers, [2]string{"Content-Type", "application/json"})
	if h.Token != "" {
		req.URL += "?token=" + tokenValue(h.Token, envName("providers.hypercard.token"), o.reveal)
	}
	if h.PublicKeyFile != "" || o.keyFile != "" {
		if o.keyFile == "" {
			return signedRequest{}, &usageError{"sign: providers.hypercard.public_key_file is set: pass -key with the matching private key " +
				"(HyperCard signs with its own private key, which otpbot never has; use a test key pair to try a deployment)"}
		}
		key, err := readPrivateKey(o.keyFile)
		if err != nil {
			return signedRequest{}, &usageError{"sign: -key " + err.Error()}
		}
		headers := map[string]string{
			webhooks.HyperCardHeaderTimestamp: strconv.FormatInt(o.now.Unix(), 10),
			webhooks.HyperCardHeaderNonce:     randomHex(5),
			webhooks.HyperCardHeaderAPIKey:    o.apiKey,
			webhooks.HyperCardHeaderVersion:   "1.0",
		}
		sig, err := webhooks.SignHyperCard(key, headers, body)
		if err != nil {
			return signedRequest{}, fmt.Errorf("sign: %w", err)
		}
		for _, k := range []string{webhooks.HyperCardHeaderTimestamp, webhooks.HyperCardHeaderNonce, webhooks.HyperCardHeaderAPIKey, webhooks.HyperCardHeaderVersion} {
			req.Headers = append(req.Headers, [2]string{k, headers[k]})
		}
		req.Headers = append(req.Headers, [2]string{webhooks.HyperCardHeaderSignature, sig})
	}
	return req, nil
}

// curlCommand renders req as a shell command. Single quotes keep every
// value literal, except a ${VAR} token reference, which is put in double
// quotes so the shell expands it.
func curlCommand(req signedRequest) string {
	var b strings.Builder
	b.WriteString("curl -sS -X POST " + shellWord(req.URL))
	for _, h := range req.Headers {
		b.WriteString(" \\\n  -H " + shellQuote(h[0]+": "+h[1]))
	}
	b.WriteString(" \\\n  --data-binary " + shellQuote(string(req.Body)) + "\n")
	return b.String()
}

// shellWord quotes s, letting a ${VAR} in it expand.
func shellWord(s string) string {
	if strings.Contains(s, "${") {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "`", "\\`").Replace(s) + `"`
	}
	return shellQuote(s)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func randomDigits(n int) string {
	var b strings.Builder
	for range n {
		d, _ := rand.Int(rand.Reader, big.NewInt(10))
		b.WriteString(d.String())
	}
	return b.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
