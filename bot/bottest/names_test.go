package bottest_test

import (
	"testing"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/otpbot/otpbot/bot/bottest"
)

// TestSenderNames: an injected message or button press carries the sender's username and
// first name as given, and defaults otherwise.
func TestSenderNames(t *testing.T) {
	s := bottest.New(t)
	b := newBot(t, s)
	s.SendCommand(1001, 1001, "/start", bottest.FromName("Alice"), bottest.FromUsername("alice"))
	s.SendCommand(1002, 1002, "/start")
	s.PressButton(1001, 1001, 1, "hide", bottest.FromName("Alice"), bottest.FromUsername("alice"))
	ups, err := b.GetUpdates(tgbotapi.UpdateConfig{Timeout: 1})
	if err != nil || len(ups) != 3 {
		t.Fatalf("updates %+v %v", ups, err)
	}
	for i, want := range [][2]string{{"Alice", "alice"}, {"User 1002", "user1002"}, {"Alice", "alice"}} {
		from := ups[i].SentFrom()
		if from.FirstName != want[0] || from.UserName != want[1] {
			t.Errorf("update %d is from %q @%s; want %q @%s", i, from.FirstName, from.UserName, want[0], want[1])
		}
	}
}
