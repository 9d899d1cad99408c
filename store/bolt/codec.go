package bolt

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/otpbot/otpbot"
)

// The records written at every push — a message, its task, a history
// entry — are stored in a compact binary form: as JSON they were ~650,
// ~250 and ~420 bytes, most of it field names and RFC 3339 times, and
// bigger values fill the leaves a shared commit rewrites sooner.
//
// A value is the version byte (codecV1) followed by fields, each a tag
// byte and its value: a string as uvarint length + bytes, an integer as a
// varint, a time as varint seconds, uvarint nanoseconds and varint zone
// offset in seconds. Fields at their zero value are left out, and so are
// those that follow from others (an event's ID when it equals its group,
// a message's group and ID, a slot task's ID). An unknown tag is an error:
// a file written by a newer version is not misread. A value that starts
// with '{' is the JSON of earlier versions, still read; nothing is
// rewritten until it changes.
//
// Tags are never reused or renumbered: new fields get new tags.

// codecV1 is the first byte of a binary value.
const codecV1 = 1

// errCorrupt is a binary value that does not decode.
var errCorrupt = errors.New("malformed record")

// Event tags. The strings and times are numbered by their position in
// eventStrings and eventTimes (from tagEventStrings and tagEventTimes):
// append only.
const (
	tagEventID         = 1 // only when it differs from Group
	tagEventGroup      = 2
	tagEventAuthResult = 3
	tagEventStrings    = 8  // 8..39
	tagEventTimes      = 40 // 40..47

	// Message, history entry and task record tags.
	tagMsgID          = 64 // only when not MessageKey(Group, Target)
	tagMsgGroup       = 65 // only when it differs from Event.Group
	tagMsgChat        = 66
	tagMsgThread      = 67
	tagMsgState       = 68
	tagMsgTelegramID  = 69
	tagMsgRendered    = 70
	tagMsgDecision    = 71
	tagMsgCardName    = 72
	tagMsgSentAt      = 73
	tagMsgSendStarted = 74
	tagMsgUpdatedAt   = 75
	tagHistOutcome    = 80
)

// eventStrings are the string fields of e, but its ID and Group, in tag
// order.
func eventStrings(e *otpbot.Event) []*string {
	return []*string{
		(*string)(&e.Provider), &e.Name, (*string)(&e.Kind), &e.CardID, &e.CustomerNo, &e.CardLast4,
		&e.Amount, &e.Currency, &e.Merchant, &e.Country, &e.Status, &e.Trace, &e.Code, &e.Link,
		&e.AuthID, (*string)(&e.AuthState), &e.Reason, &e.Remark, &e.Type, &e.Direction,
		&e.OriginalAmount, &e.OriginalCurrency, &e.Tracking, &e.Carrier, &e.Alert, &e.CardType,
	}
}

// eventTimes are the time fields of e, in tag order.
func eventTimes(e *otpbot.Event) []*time.Time {
	return []*time.Time{&e.OccurredAt, &e.ReceivedAt, &e.ExpiresAt}
}

// enc appends tagged fields; each leaves a zero value out.
type enc []byte

func (b *enc) str(tag byte, s string) {
	if s != "" {
		b.strAlways(tag, s)
	}
}

func (b *enc) strAlways(tag byte, s string) {
	*b = append(binary.AppendUvarint(append(*b, tag), uint64(len(s))), s...)
}

func (b *enc) int(tag byte, v int64) {
	if v != 0 {
		*b = binary.AppendVarint(append(*b, tag), v)
	}
}

func (b *enc) time(tag byte, t time.Time) {
	if t.IsZero() {
		return
	}
	_, off := t.Zone()
	*b = binary.AppendVarint(append(*b, tag), t.Unix())
	*b = binary.AppendVarint(binary.AppendUvarint(*b, uint64(t.Nanosecond())), int64(off))
}

func (b *enc) event(e otpbot.Event) {
	if e.ID != e.Group {
		b.strAlways(tagEventID, e.ID)
	}
	b.str(tagEventGroup, e.Group)
	b.int(tagEventAuthResult, int64(e.AuthResult))
	for i, p := range eventStrings(&e) {
		b.str(byte(tagEventStrings+i), *p)
	}
	for i, p := range eventTimes(&e) {
		b.time(byte(tagEventTimes+i), *p)
	}
}

// dec reads tagged fields.
type dec struct {
	b   []byte
	err error
}

func (d *dec) more() bool { return d.err == nil && len(d.b) > 0 }

func (d *dec) tag() byte {
	t := d.b[0]
	d.b = d.b[1:]
	return t
}

func (d *dec) fail() { d.err = errCorrupt }

func (d *dec) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) str() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *dec) time() time.Time {
	sec, nsec, off := d.varint(), d.uvarint(), d.varint()
	if d.err != nil || nsec >= 1e9 {
		d.fail()
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec))
	if off == 0 {
		return t.UTC()
	}
	return t.In(time.FixedZone("", int(off)))
}

// eventField decodes an event field of tag into e; false for a tag that
// is not one.
func (d *dec) eventField(tag byte, e *otpbot.Event, idSet *bool) bool {
	switch {
	case tag == tagEventID:
		e.ID, *idSet = d.str(), true
	case tag == tagEventGroup:
		e.Group = d.str()
	case tag == tagEventAuthResult:
		e.AuthResult = int(d.varint())
	case tag >= tagEventStrings && tag < tagEventTimes:
		ps := eventStrings(e)
		if int(tag-tagEventStrings) >= len(ps) {
			d.fail()
			return true
		}
		*ps[tag-tagEventStrings] = d.str()
	case tag >= tagEventTimes && tag < tagMsgID:
		ps := eventTimes(e)
		if int(tag-tagEventTimes) >= len(ps) {
			d.fail()
			return true
		}
		*ps[tag-tagEventTimes] = d.time()
	default:
		return false
	}
	return true
}

// isJSON reports whether v is a record of the JSON form earlier versions
// wrote.
func isJSON(v []byte) bool { return len(v) > 0 && v[0] == '{' }

// openRecord starts reading the stored record v: JSON, as earlier files
// hold it, is decoded into legacy whole (earlier is true); the binary form
// is returned as a decoder of its fields.
func openRecord(v []byte, what string, legacy any) (d dec, earlier bool, err error) {
	if isJSON(v) {
		if err := json.Unmarshal(v, legacy); err != nil {
			return dec{}, true, fmt.Errorf("decode %s: %w", what, err)
		}
		return dec{}, true, nil
	}
	if len(v) == 0 || v[0] != codecV1 {
		return dec{}, false, fmt.Errorf("decode %s: %w: unknown version", what, errCorrupt)
	}
	return dec{b: v[1:]}, false, nil
}

// encodeMessage is m in its stored form.
func encodeMessage(m otpbot.Message) []byte {
	b := enc(make([]byte, 0, 192))
	b = append(b, codecV1)
	b.event(m.Event)
	if m.Group != m.Event.Group {
		b.strAlways(tagMsgGroup, m.Group)
	}
	if m.ID != otpbot.MessageKey(m.Group, m.Target) {
		b.strAlways(tagMsgID, m.ID)
	}
	b.int(tagMsgChat, m.Target.ChatID)
	b.int(tagMsgThread, int64(m.Target.ThreadID))
	b.str(tagMsgState, string(m.State))
	b.int(tagMsgTelegramID, int64(m.TelegramID))
	b.str(tagMsgRendered, m.Rendered)
	b.str(tagMsgDecision, m.Decision)
	b.str(tagMsgCardName, m.CardName)
	b.time(tagMsgSentAt, m.SentAt)
	b.time(tagMsgSendStarted, m.SendStarted)
	b.time(tagMsgUpdatedAt, m.UpdatedAt)
	return b
}

func decodeMessage(v []byte) (otpbot.Message, error) {
	var m otpbot.Message
	d, earlier, err := openRecord(v, "message", &m)
	if err != nil {
		return otpbot.Message{}, err
	}
	if earlier {
		return m, nil
	}
	var idSet, groupSet, msgIDSet bool
	for d.more() {
		tag := d.tag()
		if d.eventField(tag, &m.Event, &idSet) {
			continue
		}
		switch tag {
		case tagMsgID:
			m.ID, msgIDSet = d.str(), true
		case tagMsgGroup:
			m.Group, groupSet = d.str(), true
		case tagMsgChat:
			m.Target.ChatID = d.varint()
		case tagMsgThread:
			m.Target.ThreadID = int(d.varint())
		case tagMsgState:
			m.State = otpbot.MessageState(d.str())
		case tagMsgTelegramID:
			m.TelegramID = int(d.varint())
		case tagMsgRendered:
			m.Rendered = d.str()
		case tagMsgDecision:
			m.Decision = d.str()
		case tagMsgCardName:
			m.CardName = d.str()
		case tagMsgSentAt:
			m.SentAt = d.time()
		case tagMsgSendStarted:
			m.SendStarted = d.time()
		case tagMsgUpdatedAt:
			m.UpdatedAt = d.time()
		default:
			d.fail()
		}
	}
	if d.err != nil {
		return otpbot.Message{}, fmt.Errorf("decode message: %w", d.err)
	}
	if !idSet {
		m.Event.ID = m.Event.Group
	}
	if !groupSet {
		m.Group = m.Event.Group
	}
	if !msgIDSet {
		m.ID = otpbot.MessageKey(m.Group, m.Target)
	}
	return m, nil
}

// encodeHistory is h in its stored form.
func encodeHistory(h otpbot.HistoryEntry) []byte {
	b := enc(make([]byte, 0, 128))
	b = append(b, codecV1)
	b.event(h.Event)
	b.str(tagHistOutcome, string(h.Outcome))
	return b
}

func decodeHistory(v []byte) (otpbot.HistoryEntry, error) {
	var h otpbot.HistoryEntry
	d, earlier, err := openRecord(v, "history entry", &h)
	if err != nil {
		return otpbot.HistoryEntry{}, err
	}
	if earlier {
		return h, nil
	}
	var idSet bool
	for d.more() {
		tag := d.tag()
		switch {
		case d.eventField(tag, &h.Event, &idSet):
		case tag == tagHistOutcome:
			h.Outcome = otpbot.Outcome(d.str())
		default:
			d.fail()
		}
	}
	if d.err != nil {
		return otpbot.HistoryEntry{}, fmt.Errorf("decode history entry: %w", d.err)
	}
	if !idSet {
		h.Event.ID = h.Event.Group
	}
	return h, nil
}

// Task record tags (a space of their own).
const (
	tagTaskID         = 1 // only when not TaskID(MessageID, Kind)
	tagTaskKind       = 2
	tagTaskPriority   = 3
	tagTaskMessageID  = 4
	tagTaskChat       = 5
	tagTaskThread     = 6
	tagTaskDue        = 7
	tagTaskCreated    = 8
	tagTaskAttempts   = 9
	tagTaskLastError  = 10
	tagTaskText       = 11
	tagTaskTelegramID = 12
	tagTaskReplyTo    = 13
	tagTaskGen        = 20
	tagTaskLease      = 21
	tagTaskLeaseUntil = 22
)

// encodeTask is r in its stored form.
func encodeTask(r taskRecord) []byte {
	t := r.Task
	b := enc(make([]byte, 0, 96))
	b = append(b, codecV1)
	if t.MessageID == "" || t.ID != otpbot.TaskID(t.MessageID, t.Kind) {
		b.strAlways(tagTaskID, t.ID)
	}
	b.str(tagTaskKind, string(t.Kind))
	b.int(tagTaskPriority, int64(t.Priority))
	b.str(tagTaskMessageID, t.MessageID)
	b.int(tagTaskChat, t.Target.ChatID)
	b.int(tagTaskThread, int64(t.Target.ThreadID))
	b.time(tagTaskDue, t.Due)
	b.time(tagTaskCreated, t.Created)
	b.int(tagTaskAttempts, int64(t.Attempts))
	b.str(tagTaskLastError, t.LastError)
	b.str(tagTaskText, t.Text)
	b.int(tagTaskTelegramID, int64(t.TelegramID))
	b.int(tagTaskReplyTo, int64(t.ReplyTo))
	b.int(tagTaskGen, int64(r.Gen))
	b.str(tagTaskLease, r.Lease)
	b.time(tagTaskLeaseUntil, r.LeaseUntil)
	return b
}

func decodeTask(v []byte) (taskRecord, error) {
	var r taskRecord
	d, earlier, err := openRecord(v, "task", &r)
	if err != nil {
		return taskRecord{}, err
	}
	if earlier {
		return r, nil
	}
	t := &r.Task
	idSet := false
	for d.more() {
		switch d.tag() {
		case tagTaskID:
			t.ID, idSet = d.str(), true
		case tagTaskKind:
			t.Kind = otpbot.TaskKind(d.str())
		case tagTaskPriority:
			t.Priority = otpbot.Priority(d.varint())
		case tagTaskMessageID:
			t.MessageID = d.str()
		case tagTaskChat:
			t.Target.ChatID = d.varint()
		case tagTaskThread:
			t.Target.ThreadID = int(d.varint())
		case tagTaskDue:
			t.Due = d.time()
		case tagTaskCreated:
			t.Created = d.time()
		case tagTaskAttempts:
			t.Attempts = int(d.varint())
		case tagTaskLastError:
			t.LastError = d.str()
		case tagTaskText:
			t.Text = d.str()
		case tagTaskTelegramID:
			t.TelegramID = int(d.varint())
		case tagTaskReplyTo:
			t.ReplyTo = int(d.varint())
		case tagTaskGen:
			r.Gen = uint64(d.varint())
		case tagTaskLease:
			r.Lease = d.str()
		case tagTaskLeaseUntil:
			r.LeaseUntil = d.time()
		default:
			d.fail()
		}
	}
	if d.err != nil {
		return taskRecord{}, fmt.Errorf("decode task: %w", d.err)
	}
	if !idSet {
		t.ID = otpbot.TaskID(t.MessageID, t.Kind)
	}
	return r, nil
}
