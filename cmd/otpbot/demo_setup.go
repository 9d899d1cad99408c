package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/bot/bottest"
	"github.com/otpbot/otpbot/chatpage"
	"github.com/otpbot/otpbot/hyperpay/hptest"
)

// The demo's people and chats. A private chat's id is its user's.
const (
	demoAlice int64 = 1001           // an admin
	demoBob   int64 = 1002           // not an admin
	demoTeam  int64 = -1001000000001 // a group of both, card C2 linked
	demoOps   int64 = -1001000000002 // telegram.ops_chat
)

// Demo timings: short enough to watch a code count down and vanish.
const (
	demoCodeTTL   = time.Minute
	demoCountdown = 5 * time.Second
	// demoRoundTrip is the fake Telegram's network round trip, ± a
	// quarter.
	demoRoundTrip = 80 * time.Millisecond
)

// demoKeyBits is the size of the RSA keys generated at start.
const demoKeyBits = 2048

// demoEnv is what `otpbot demo` runs serve against: the fakes, the key
// files and the configuration naming them, all in dir.
type demoEnv struct {
	dir  string
	base string // http://host:port of the demo
	cfg  Config
	bot  *bottest.Standalone
	hc   *hptest.Server
	// hcKeyFile is HyperCard's private key: it signs the sample pushes,
	// and serve verifies them with the public half
	// (providers.hypercard.public_key_file).
	hcKeyFile string
}

// startDemoEnv generates the run's secrets and key pairs into dir, starts
// the fake Bot API and the fake HyperCard API, and builds the
// configuration of a serve that listens on addr.
func startDemoEnv(dir string, addr net.Addr, logLevel string) (*demoEnv, error) {
	e := &demoEnv{dir: dir, base: listenURL(addr.String())}
	hcPub, _, err := e.writeKeyPair("hypercard")
	if err != nil {
		return nil, err
	}
	_, merchantPub, err := e.writeKeyPair("merchant")
	if err != nil {
		return nil, err
	}
	e.hcKeyFile = filepath.Join(dir, "hypercard_private.pem")
	token := fmt.Sprintf("%d:%s", bottest.BotID, randomHex(18))
	e.bot, err = bottest.Start(bottest.WithToken(token),
		bottest.WithRoundTrip(demoRoundTrip, demoRoundTrip/4),
		bottest.WithTelegramLimits(bottest.RealLimits()))
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if e.hc, err = hptest.Start(merchantPub); err != nil {
		e.close()
		return nil, fmt.Errorf("demo: %w", err)
	}
	apiKey := randomHex(16)
	e.hc.WantAPIKey(apiKey)
	e.cfg = e.config(token, apiKey, logLevel, hcPub)
	if err := validateConfig(&e.cfg); err != nil {
		e.close()
		return nil, fmt.Errorf("demo: the generated configuration: %w", err)
	}
	return e, nil
}

// config is serve's configuration for the demo: the defaults, with the
// fakes, the generated secrets and files in dir, and short code timings.
func (e *demoEnv) config(token, apiKey, logLevel, hcPub string) Config {
	cfg := Defaults()
	cfg.Log.Level = logLevel
	t := &cfg.Telegram
	t.Token, t.APIEndpoint = token, e.bot.Endpoint()
	t.Admins, t.OpsChat = []int64{demoAlice}, demoOps
	t.Updates = "webhook"
	t.WebhookURL = e.base + "/telegram/" + randomHex(16)
	t.WebhookSecret = randomHex(24)
	cfg.HTTP.Listen = e.base[len("http://"):]
	cfg.Store.Path = filepath.Join(e.dir, "otpbot.db")
	u := &cfg.Providers.UPay
	u.Token, u.SecretKey = randomHex(16), randomHex(32)
	h := &cfg.Providers.HyperCard
	h.Token, h.PublicKeyFile = randomHex(16), hcPub
	h.API.BaseURL, h.API.APIKey = e.hc.URL(), apiKey
	h.API.PrivateKeyFile = filepath.Join(e.dir, "merchant_private.pem")
	cfg.Codes.TTL, cfg.Codes.CountdownInterval = demoCodeTTL, demoCountdown
	cfg.ShutdownTimeout = 5 * time.Second
	return cfg
}

// writeKeyPair generates an RSA key pair and writes both halves to dir as
// NAME_private.pem and NAME_public.pem (0600). It returns the public
// half's path and key.
func (e *demoEnv) writeKeyPair(name string) (string, *rsa.PublicKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, demoKeyBits)
	if err != nil {
		return "", nil, fmt.Errorf("demo: generate %s key: %w", name, err)
	}
	priv, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", nil, fmt.Errorf("demo: %s key: %w", name, err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", nil, fmt.Errorf("demo: %s key: %w", name, err)
	}
	pubPath := filepath.Join(e.dir, name+"_public.pem")
	if err := writePEM(filepath.Join(e.dir, name+"_private.pem"), "PRIVATE KEY", priv); err != nil {
		return "", nil, err
	}
	if err := writePEM(pubPath, "PUBLIC KEY", pub); err != nil {
		return "", nil, err
	}
	return pubPath, &key.PublicKey, nil
}

// writePEM creates path (0600; it must not exist) holding one PEM block.
func writePEM(path, typ string, der []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	err = pem.Encode(f, &pem.Block{Type: typ, Bytes: der})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("demo: write %s: %w", path, err)
	}
	return nil
}

// close stops the fakes.
func (e *demoEnv) close() {
	if e.hc != nil {
		e.hc.Close()
	}
	if e.bot != nil {
		e.bot.Close()
	}
}

// seed links the demo's cards to its chats, as an admin's /link would, so
// that a first sample push shows a code arriving.
func (e *demoEnv) seed(ctx context.Context, store otpbot.LinkStore) error {
	now := time.Now()
	links := []otpbot.Link{
		{Key: otpbot.Key{Type: otpbot.KeyCard, ID: "C1"}, Target: otpbot.Target{ChatID: demoAlice}, CreatedAt: now, CreatedBy: demoAlice, Name: "Personal"},
		{Key: otpbot.Key{Type: otpbot.KeyCard, ID: "C2"}, Target: otpbot.Target{ChatID: demoTeam}, CreatedAt: now, CreatedBy: demoAlice, Name: "Travel"},
	}
	for _, l := range links {
		if err := store.Link(ctx, l); err != nil {
			return fmt.Errorf("demo: link %s: %w", l.Key, err)
		}
	}
	return nil
}

// pageOptions describe the demo's chats, people and cards to the page.
func (e *demoEnv) pageOptions(pusher chatpage.Pusher) chatpage.Options {
	return chatpage.Options{
		Fake:    e.bot,
		BotName: "otpbot",
		Chats: []chatpage.Chat{
			{ID: demoAlice, Title: "Alice", About: "Alice's private chat · Alice is an admin · card C1 (“Personal”) is linked here", Users: []int64{demoAlice}},
			{ID: demoTeam, Title: "Travel team", About: "A group of Alice and Bob · card C2 (“Travel”) is linked here", Users: []int64{demoAlice, demoBob}},
			{ID: demoBob, Title: "Bob", About: "Bob's private chat · Bob is not an admin · nothing linked (try an /invite from Alice)", Users: []int64{demoBob}},
			{ID: demoOps, Title: "Ops", About: "telegram.ops_chat: pushes for unlinked cards, broken links", Users: []int64{demoAlice}},
		},
		Users: []chatpage.User{
			{ID: demoAlice, Name: "Alice", Username: "alice", Admin: true},
			{ID: demoBob, Name: "Bob", Username: "bob"},
		},
		Cards: []chatpage.Card{
			{ID: "C1", About: "Linked to Alice's chat.", Chat: demoAlice},
			{ID: "C2", About: "Linked to the Travel team group.", Chat: demoTeam},
			{ID: "C9", About: "Linked nowhere: the Ops chat hears of its code pushes.", Chat: demoOps},
		},
		Samples: pageSamples(),
		Pusher:  pusher,
		Welcome: "upay/3ds_otp",
	}
}
