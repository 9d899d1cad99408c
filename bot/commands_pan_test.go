package bot

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/otpbot/otpbot"
)

// lockedBuffer is a log sink the poller goroutine writes while the test
// reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

const cardNumberReply = "That looks like a card number; use the platform's card id."

func TestLooksLikePAN(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"5235560000001239", true},      // Mastercard shape, check digit right
		{"5235-5600-0000-1239", true},   // typed in groups
		{"4222222222222", true},         // 13 digits
		{"6283244889900010107", true},   // 19 digits: a HyperCard card id from its own documents
		{"5235560000001234", false},     // wrong check digit
		{"1085185460000094505", false},  // a HyperCard card id
		{"15723682800000053333", false}, // 20 digits
		{"411111111111", false},         // 12 digits
		{"-5235560000001239", false},
		{"5235560000001239-", false},
		{"C-5235560000001239", false},
		{"CARD-4321", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := looksLikePAN(tt.s); got != tt.want {
			t.Errorf("looksLikePAN(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

// TestCardNumberArgumentsRefused: an admin who types a card number where a
// card id belongs is told so; the number is not linked, not turned into
// an invite, not looked up for a member, not repeated and not logged.
func TestCardNumberArgumentsRefused(t *testing.T) {
	e := newEnv(t)
	logs := &lockedBuffer{}
	e.cmds.log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.link(cardKey("C-LINKED"), chat(chatB))
	const pan = "5235560000001239"
	tests := []struct {
		chat, user int64
		text       string
		confirm    string // the form that insists, shown in the reply
	}{
		{chatA, admin, "/link card " + pan, "/link card ID confirm"},
		{chatA, admin, "/link card 5235-5600-0000-1239", "/link card ID confirm"},
		{chatA, admin, "/link customer " + pan, "/link customer ID confirm"},
		{chatA, admin, "/unlink card " + pan, ""},
		{chatA, admin, "/invite card " + pan, "/invite card ID confirm"},
		{chatA, admin, "/history " + pan, ""},
		{chatA, admin, "/history card " + pan + " 5", ""},
		{chatB, member, "/history " + pan, ""},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got := e.reply(tt.chat, tt.user, tt.text)
			mustContain(t, got, cardNumberReply)
			mustNotContain(t, got, pan, "5235-5600", "1239", "t.me/")
			if tt.confirm != "" {
				mustContain(t, got, tt.confirm)
			} else {
				mustNotContain(t, got, "confirm")
			}
		})
	}
	if links, err := e.store.LinksForChat(e.ctx, chatA); err != nil || len(links) != 0 {
		t.Errorf("links of chat A: %+v, %v", links, err)
	}
	if strings.Contains(logs.String(), "1239") {
		t.Errorf("the card number reached the log:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "looks like a card number") {
		t.Errorf("the refusal is not logged:\n%s", logs)
	}
}

// TestCardIDThatLooksLikeACardNumber: a platform id that passes the card
// number check (about one HyperCard card id in ten does) can be linked
// with "confirm", and is then unlinked and listed like any other.
func TestCardIDThatLooksLikeACardNumber(t *testing.T) {
	e := newEnv(t)
	const id = "6283244889900010107"
	mustContain(t, e.reply(chatA, admin, "/link card "+id+" confirm"), "Linked card …0107")
	links, err := e.store.LinksForChat(e.ctx, chatA)
	if err != nil || len(links) != 1 || links[0].Key != (otpbot.Key{Type: otpbot.KeyCard, ID: id}) {
		t.Fatalf("links: %+v, %v", links, err)
	}
	// The chat's own key: history answers, and it can be unlinked.
	mustContain(t, e.reply(chatA, member, "/history "+id), "History of card …0107")
	mustContain(t, e.reply(chatA, admin, "/unlink card "+id), "Unlinked card …0107")
	mustContain(t, e.reply(chatA, admin, "/unlink card "+id), cardNumberReply)
}
