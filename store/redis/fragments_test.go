package redis

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otpbot/otpbot"
)

// refStripJSON is how the fragments were built before: marshal, unmarshal
// into a map, drop fields, marshal again. It stays as the reference the
// direct builders must match byte for byte (the scripts store and splice
// these bytes, and stored messages are compared by their fields).
func refStripJSON(t *testing.T, v any, drop ...string) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	for _, f := range drop {
		delete(m, f)
	}
	if b, err = json.Marshal(m); err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}

// awkwardStrings are strings encoding/json escapes in every way it can.
func awkwardStrings() []string {
	out := []string{"", "plain", "upay:PN1@42", `q"uo\te`, "<b>&amp;</b>", "tab\tnl\ncr\rbs\bff\f",
		"\x00\x01\x1f\x7f", "é€😀", "\u2028line\u2029para", "\xff\xfe bad \xc3", "a\u00a0b", strings.Repeat("x", 300)}
	var all strings.Builder
	for c := range 256 {
		all.WriteByte(byte(c))
	}
	out = append(out, all.String())
	r := rand.New(rand.NewPCG(3, 4))
	pieces := []string{"a", "Z", "9", "\"", "\\", "<", ">", "&", "\n", "\x01", "\x7f", "é", "\u2028", "😀", "\xff", "/", "'"}
	for range 300 {
		var b strings.Builder
		for range r.IntN(12) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		out = append(out, b.String())
	}
	return out
}

// awkwardTimes are times of every shape json writes: zero, UTC, zones on
// both sides, nanoseconds with trailing zeros dropped.
func awkwardTimes() []time.Time {
	base := time.Date(2026, 11, 23, 15, 4, 5, 0, time.UTC)
	return []time.Time{
		{}, base, base.Add(123456789), base.Add(120 * time.Millisecond), base.Add(time.Microsecond),
		base.In(time.FixedZone("IST", 5*3600+1800)), base.Add(7).In(time.FixedZone("W", -9*3600)),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
	}
}

func TestMessageFragmentMatchesReference(t *testing.T) {
	strs, times := awkwardStrings(), awkwardTimes()
	targets := []otpbot.Target{{ChatID: 42}, {ChatID: -1001234567890, ThreadID: 7}, {}, {ChatID: 1 << 62, ThreadID: -3}}
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 2000 {
		m := otpbot.Message{
			ID: strs[r.IntN(len(strs))], Group: strs[r.IntN(len(strs))], Target: targets[r.IntN(len(targets))],
			Event:    otpbot.Event{ID: "e", Code: "123456"},
			State:    []otpbot.MessageState{otpbot.StateLive, otpbot.StateExpired, otpbot.StateDecided}[r.IntN(3)],
			Rendered: []string{"", strs[r.IntN(len(strs))]}[r.IntN(2)], Decision: []string{"", strs[r.IntN(len(strs))]}[r.IntN(2)],
			CardName:   []string{"", strs[r.IntN(len(strs))]}[r.IntN(2)],
			TelegramID: []int{0, 1, 987654, -5}[r.IntN(4)], SentAt: times[r.IntN(len(times))], UpdatedAt: times[r.IntN(len(times))],
		}
		for _, tc := range []struct {
			fields msgFields
			drop   []string
		}{
			{withIDTarget | withRendered, []string{"event", "state", "updated_at"}},
			{withIDTarget, []string{"event", "state", "updated_at", "rendered"}},
		} {
			got, err := messageFragment(m, tc.fields)
			if err != nil {
				t.Fatalf("messageFragment: %v", err)
			}
			if want := refStripJSON(t, m, tc.drop...); got != want {
				t.Fatalf("message %d without %v:\n got %s\nwant %s", i, tc.drop, got, want)
			}
		}
		// Ingest's: a new message of a group, the script adds id and target.
		ing := otpbot.Message{Group: m.Group}
		got, err := messageFragment(ing, 0)
		if err != nil {
			t.Fatalf("messageFragment: %v", err)
		}
		if want := refStripJSON(t, ing, "id", "target", "event", "state", "updated_at"); got != want {
			t.Fatalf("ingest message %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

func TestTaskAndLinkFragmentsMatchReference(t *testing.T) {
	for _, at := range awkwardTimes() {
		for _, tc := range []struct {
			kind otpbot.TaskKind
			prio otpbot.Priority
		}{{otpbot.TaskSend, otpbot.PriorityCode}, {otpbot.TaskUpdate, otpbot.PriorityUpdate}, {otpbot.TaskRefresh, otpbot.PriorityRefresh}} {
			got, err := taskFragment(tc.kind, tc.prio, at)
			if err != nil {
				t.Fatalf("taskFragment: %v", err)
			}
			want := refStripJSON(t, otpbot.Task{Kind: tc.kind, Priority: tc.prio, Due: at, Created: at}, "id", "message_id", "target")
			if got != want {
				t.Fatalf("task:\n got %s\nwant %s", got, want)
			}
		}
		got, err := linkFragment(at)
		if err != nil {
			t.Fatalf("linkFragment: %v", err)
		}
		if want := refStripJSON(t, otpbot.Link{CreatedAt: at}, "key", "target"); got != want {
			t.Fatalf("link:\n got %s\nwant %s", got, want)
		}
	}
	// A time json refuses is refused here too.
	if _, err := taskFragment(otpbot.TaskSend, otpbot.PriorityCode, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)); err == nil {
		t.Fatalf("taskFragment accepted the year 10000, which json.Marshal refuses")
	}
}

func TestHistoryEntryJSONMatchesMarshal(t *testing.T) {
	strs, times := awkwardStrings(), awkwardTimes()
	for i, s := range strs {
		ev := otpbot.Event{ID: s, Group: s, Provider: otpbot.ProviderUPay, Name: "3DS_OTP", Kind: otpbot.KindCode,
			CardID: s, Merchant: s, Amount: "1.00", ReceivedAt: times[i%len(times)], ExpiresAt: times[(i+1)%len(times)]}
		for _, o := range []otpbot.Outcome{otpbot.OutcomeQueued, otpbot.OutcomeUnrouted, otpbot.OutcomeRecorded,
			otpbot.OutcomeRejected, otpbot.OutcomeExpired} {
			evJSON, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(otpbot.HistoryEntry{Event: ev, Outcome: o})
			if err != nil {
				t.Fatal(err)
			}
			if got := historyEntryJSON(evJSON, o); string(got) != string(want) {
				t.Fatalf("history entry:\n got %s\nwant %s", got, want)
			}
		}
	}
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range awkwardStrings() {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
}

// TestFragmentFieldsKnown fails when a struct the fragments describe gains
// or loses a JSON field: the builders write fields by name and would drop
// a new one silently, where the old round trip carried it along.
func TestFragmentFieldsKnown(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want []string
	}{
		{otpbot.Message{}, []string{"id", "group", "target", "event", "state", "telegram_id", "rendered", "decision", "card_name", "sent_at", "send_started", "updated_at"}},
		{otpbot.Task{}, []string{"id", "kind", "priority", "message_id", "target", "due", "created", "attempts", "last_error", "text", "telegram_id", "reply_to"}},
		{otpbot.Link{}, []string{"key", "target", "created_at", "created_by", "broken", "broken_reason", "replies", "name"}},
		{otpbot.Target{}, []string{"chat_id", "thread_id"}},
		{otpbot.HistoryEntry{}, []string{"event", "outcome"}},
	} {
		typ := reflect.TypeOf(tc.v)
		var got []string
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			got = append(got, name)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s has the JSON fields %v; fragments.go was written for %v: update it (and this list)", typ, got, tc.want)
		}
	}
}
