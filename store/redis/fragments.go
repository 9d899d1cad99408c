package redis

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/otpbot/otpbot"
)

// The JSON fragments the scripts splice ids and targets into (see
// "Conventions" in scripts.go): a message or task without the fields a
// script adds or stores apart. They are written here field by field, in
// the bytes encoding/json gives (keys in the sorted order of a marshalled
// map, values as json.Marshal writes them), because building them by
// marshalling the struct, unmarshalling it into a map, deleting keys and
// marshalling again ran three times per push and twice per message write:
// 43% of Ingest's CPU. Likewise a history entry is spliced around the
// event's JSON rather than encoding the event again. fragments_test.go checks them byte for byte against
// that round trip (and json.Marshal) and fails when otpbot.Message, Task,
// Link or HistoryEntry gains a field these builders do not know.

// msgFields says which of the fields a script may splice in a message
// fragment carries itself.
type msgFields int

const (
	// withIDTarget includes "id" and "target" (a whole stored head; Ingest
	// leaves them to the script).
	withIDTarget msgFields = 1 << iota
	// withRendered includes "rendered" when it is set.
	withRendered
)

// messageFragment returns m as JSON without "event", "state" and
// "updated_at" (stored in their own hash fields), and without "id",
// "target" and "rendered" unless fields asks for them.
func messageFragment(m otpbot.Message, fields msgFields) (string, error) {
	b := make([]byte, 0, 96+len(m.ID)+len(m.Group)+len(m.Rendered)+len(m.Decision)+len(m.CardName))
	b = append(b, '{')
	if m.CardName != "" {
		b = append(b, `"card_name":`...)
		b = appendJSONString(b, m.CardName)
		b = append(b, ',')
	}
	if m.Decision != "" {
		b = append(b, `"decision":`...)
		b = appendJSONString(b, m.Decision)
		b = append(b, ',')
	}
	b = append(b, `"group":`...)
	b = appendJSONString(b, m.Group)
	if fields&withIDTarget != 0 {
		b = append(b, `,"id":`...)
		b = appendJSONString(b, m.ID)
	}
	if fields&withRendered != 0 && m.Rendered != "" {
		b = append(b, `,"rendered":`...)
		b = appendJSONString(b, m.Rendered)
	}
	if !m.SendStarted.IsZero() {
		b = append(b, `,"send_started":`...)
		var err error
		if b, err = appendJSONTime(b, m.SendStarted); err != nil {
			return "", fmt.Errorf("send_started: %w", err)
		}
	}
	b = append(b, `,"sent_at":`...)
	b, err := appendJSONTime(b, m.SentAt)
	if err != nil {
		return "", fmt.Errorf("sent_at: %w", err)
	}
	if fields&withIDTarget != 0 {
		b = append(b, `,"target":`...)
		b = appendTargetJSON(b, m.Target)
	}
	if m.TelegramID != 0 {
		b = append(b, `,"telegram_id":`...)
		b = strconv.AppendInt(b, int64(m.TelegramID), 10)
	}
	return string(append(b, '}')), nil
}

// taskFragment returns the JSON of a new task of kind and priority due and
// created at at, without "id", "message_id" and "target" (the script adds
// them per target). Attempts, LastError, Text, TelegramID and ReplyTo are
// zero in such a task and omitted.
func taskFragment(kind otpbot.TaskKind, p otpbot.Priority, at time.Time) (string, error) {
	b := make([]byte, 0, 128)
	b = append(b, `{"created":`...)
	b, err := appendJSONTime(b, at)
	if err != nil {
		return "", fmt.Errorf("created: %w", err)
	}
	b = append(b, `,"due":`...)
	b, _ = appendJSONTime(b, at)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, string(kind))
	b = append(b, `,"priority":`...)
	b = strconv.AppendInt(b, int64(p), 10)
	return string(append(b, '}')), nil
}

// linkFragment returns the JSON of a link created at at by an invite
// (CreatedBy 0, not broken, no replies) without "key" and "target".
func linkFragment(at time.Time) (string, error) {
	b := make([]byte, 0, 64)
	b = append(b, `{"created_at":`...)
	b, err := appendJSONTime(b, at)
	if err != nil {
		return "", fmt.Errorf("created_at: %w", err)
	}
	return string(append(b, '}')), nil
}

// historyEntryJSON returns the JSON of otpbot.HistoryEntry{Event: ev,
// Outcome: o} given ev's JSON, as json.Marshal writes it: jsonEventHead,
// the event, then historyTail(o).
func historyEntryJSON(evJSON []byte, o otpbot.Outcome) []byte {
	b := make([]byte, 0, len(evJSON)+len(o)+24)
	b = append(b, jsonEventHead...)
	b = append(b, evJSON...)
	return append(b, historyTail(o)...)
}

// jsonEventHead opens a history entry's JSON, up to its event.
const jsonEventHead = `{"event":`

// historyTail closes a history entry's JSON after its event: its outcome.
func historyTail(o otpbot.Outcome) string {
	b := make([]byte, 0, len(o)+16)
	b = append(b, `,"outcome":`...)
	b = appendJSONString(b, string(o))
	return string(append(b, '}'))
}

// openTail returns the JSON object rest without its opening brace, and
// with a comma before its first field: what follows the fields a script
// puts first ("}" for an empty object).
func openTail(rest string) string {
	if rest == "{}" {
		return "}"
	}
	return "," + rest[1:]
}

// appendTargetJSON appends t as encoding/json writes an otpbot.Target.
func appendTargetJSON(b []byte, t otpbot.Target) []byte {
	b = append(b, `{"chat_id":`...)
	b = strconv.AppendInt(b, t.ChatID, 10)
	if t.ThreadID != 0 {
		b = append(b, `,"thread_id":`...)
		b = strconv.AppendInt(b, int64(t.ThreadID), 10)
	}
	return append(b, '}')
}

// appendJSONTime appends t as encoding/json writes a time.Time (its
// MarshalJSON: RFC 3339 with nanoseconds, quoted), failing where that
// fails (a year outside 0-9999).
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	b = append(b, '"')
	b, err := t.AppendText(b)
	if err != nil {
		return nil, err
	}
	return append(b, '"'), nil
}

// appendJSONString appends s quoted as encoding/json writes a string: with
// its HTML escaping (<, > and & as \u003c...), control characters escaped,
// invalid UTF-8 as \ufffd and U+2028/U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
