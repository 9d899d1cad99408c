package bot

import (
	"strings"
	"testing"

	"github.com/otpbot/otpbot"
)

// A command's reply that Telegram refuses for a moment (429, an HTML 502
// from its front end) is sent once Telegram lets it, and the command,
// which did its work, is never reported as failed.
func TestCommandReplyIsRetriedNotDropped(t *testing.T) {
	tests := []struct {
		name string
		fail func(e *env)
	}{
		{"429 with retry_after", func(e *env) {
			e.tg.FailNext("sendMessage", 1, 429, "Too Many Requests: retry after 1", 1)
		}},
		{"two 502s", func(e *env) { e.tg.FailNext("sendMessage", 2, 502, "Bad Gateway", 0) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tc.fail(e)
			got := e.reply(chatA, admin, "/link card CARD-0001234")
			mustContain(t, got, "Linked card …1234 to this chat")
			for _, m := range e.tg.Messages(chatA) {
				if strings.Contains(m.Text, "Something went wrong") {
					t.Errorf("a reply Telegram refused for a moment turned the command into a failure: %q", m.Text)
				}
			}
			links, err := e.store.LinksForChat(e.ctx, chatA)
			if err != nil || len(links) != 1 || links[0].Key != (otpbot.Key{Type: otpbot.KeyCard, ID: "CARD-0001234"}) {
				t.Fatalf("links %+v, %v", links, err)
			}
		})
	}
}

// Replies to many chats are answered concurrently: a slow or refused reply
// in one chat does not hold the others back.
func TestCommandRepliesToManyChatsAllArrive(t *testing.T) {
	e := newEnv(t)
	const n = 40
	ids := map[int64]int{}
	for i := range n {
		chat := chatA - int64(i)
		ids[chat] = e.tg.SendCommand(chat, admin, "/link card CARD-00"+string(rune('A'+i%26))+"-"+strings.Repeat("9", 1+i/26))
	}
	e.tg.WaitFor(t, func() bool {
		for chat, id := range ids {
			found := false
			for _, m := range e.tg.Messages(chat) {
				found = found || m.ReplyTo == id
			}
			if !found {
				return false
			}
		}
		return true
	})
}
