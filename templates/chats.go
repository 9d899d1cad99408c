package templates

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/otpbot/otpbot"
)

// SettingsReader reads a chat's settings (the store).
type SettingsReader interface {
	ChatSettings(ctx context.Context, chatID int64) (otpbot.ChatSettings, error)
}

// DefaultSettingsTTL is how long Chats keeps a chat's settings before it
// reads them again: what another process changed (/language answered
// there) shows in this one's messages within it.
const DefaultSettingsTTL = 10 * time.Second

// maxCached bounds the settings Chats keeps; past it, the expired ones go.
const maxCached = 10000

// Chats picks each chat's templates for the work done without a user at
// hand (code messages, their countdowns, follow-ups): the chat's
// /language, else the language of its private chat's user as last seen,
// else the default; its /timezone, else the default (Set.ForChat). It
// keeps what it read for a few seconds, as countdowns render often.
type Chats struct {
	set   *Set
	store SettingsReader
	log   *slog.Logger
	ttl   time.Duration
	now   func() time.Time

	mu    sync.Mutex
	cache map[int64]cachedSettings
}

type cachedSettings struct {
	cs    otpbot.ChatSettings
	until time.Time
}

// ChatsOptions configure Chats.
type ChatsOptions struct {
	Set   *Set
	Store SettingsReader
	// Logger hears of settings that could not be read (the chat is then
	// written in the default language until they can); nil discards.
	Logger *slog.Logger
	// TTL is how long settings are kept; DefaultSettingsTTL when 0.
	TTL time.Duration
	// Now is the clock of the cache; time.Now when nil.
	Now func() time.Time
}

// NewChats builds Chats.
func NewChats(opts ChatsOptions) *Chats {
	c := &Chats{set: opts.Set, store: opts.Store, log: opts.Logger, ttl: opts.TTL, now: opts.Now, cache: map[int64]cachedSettings{}}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.ttl <= 0 {
		c.ttl = DefaultSettingsTTL
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Set is the templates Chats picks from.
func (c *Chats) Set() *Set { return c.set }

// Locale returns the templates chatID is written in. Settings that cannot
// be read leave the chat in the defaults (a code goes out all the same).
func (c *Chats) Locale(ctx context.Context, chatID int64) *Locale {
	cs, ok := c.settings(ctx, chatID)
	if !ok {
		return c.set.Default()
	}
	return c.set.ForChat(cs, cs.UserLanguage)
}

// Settings returns chatID's settings, read again from the store.
func (c *Chats) Settings(ctx context.Context, chatID int64) (otpbot.ChatSettings, error) {
	cs, err := c.store.ChatSettings(ctx, chatID)
	if err != nil {
		return cs, err
	}
	c.remember(cs)
	return cs, nil
}

// Forget drops what Chats keeps of chatID: call it after changing the
// chat's settings, so this process shows the change at once.
func (c *Chats) Forget(chatID int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cache, chatID)
}

func (c *Chats) settings(ctx context.Context, chatID int64) (otpbot.ChatSettings, bool) {
	c.mu.Lock()
	e, ok := c.cache[chatID]
	c.mu.Unlock()
	if ok && c.now().Before(e.until) {
		return e.cs, true
	}
	cs, err := c.Settings(ctx, chatID)
	if err != nil {
		c.log.Warn("chat settings not read; writing in the default language", "chat", chatID, "err", err)
		return cs, false
	}
	return cs, true
}

func (c *Chats) remember(cs otpbot.ChatSettings) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cache) >= maxCached {
		for id, e := range c.cache {
			if !now.Before(e.until) {
				delete(c.cache, id)
			}
		}
	}
	if len(c.cache) < maxCached {
		c.cache[cs.ChatID] = cachedSettings{cs: cs, until: now.Add(c.ttl)}
	}
}
