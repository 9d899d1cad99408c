package bolt

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/otpbot/otpbot"
	"github.com/otpbot/otpbot/store/storetest"
)

// fill sets every field of the struct v points to (recursively) to a value
// of its own, so that a codec that forgets a field, or a field added to
// the domain types and not to the codec, fails the round trip.
func fill(t *testing.T, v reflect.Value, n *int) {
	t.Helper()
	for i := range v.NumField() {
		f := v.Field(i)
		*n++
		switch f.Kind() {
		case reflect.String:
			f.SetString(v.Type().Field(i).Name + string(rune('a'+*n%26)))
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(*n * 1001))
		case reflect.Uint64:
			f.SetUint(uint64(*n * 7))
		case reflect.Struct:
			if f.Type() == reflect.TypeFor[time.Time]() {
				f.Set(reflect.ValueOf(time.Date(2030, 1, 2, 3, 4, *n, *n*1000+7, time.UTC)))
				continue
			}
			fill(t, f, n)
		default:
			t.Fatalf("fill: field %s of kind %s", v.Type().Field(i).Name, f.Kind())
		}
	}
}

func TestCodecRoundTrip(t *testing.T) {
	var m otpbot.Message
	n := 0
	fill(t, reflect.ValueOf(&m).Elem(), &n)
	got, err := decodeMessage(encodeMessage(m))
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("message: got %+v, %v\nwant %+v", got, err, m)
	}

	// The usual shape: the fields that follow from others are left out
	// and come back.
	now := time.Date(2030, 1, 2, 3, 4, 5, 6, time.FixedZone("", 3*3600))
	ev := otpbot.Event{ID: "upay:1", Group: "upay:1", Provider: otpbot.ProviderUPay, Name: "3DS_OTP",
		Kind: otpbot.KindCode, CardID: "C1", Code: "123456", ReceivedAt: now, ExpiresAt: now.Add(time.Minute)}
	target := otpbot.Target{ChatID: -100, ThreadID: 4}
	usual := otpbot.Message{ID: otpbot.MessageKey(ev.Group, target), Group: ev.Group, Target: target, Event: ev,
		State: otpbot.StateLive, UpdatedAt: now.UTC()}
	v := encodeMessage(usual)
	if js, _ := json.Marshal(usual); len(v)*4 > len(js) {
		t.Errorf("a message takes %d bytes, its JSON %d", len(v), len(js))
	}
	got, err = decodeMessage(v)
	if err != nil || !reflect.DeepEqual(got, usual) {
		t.Fatalf("usual message: got %+v, %v\nwant %+v", got, err, usual)
	}
	if _, off := got.Event.ReceivedAt.Zone(); off != 3*3600 {
		t.Errorf("a time's zone offset is lost: %d", off)
	}

	var h otpbot.HistoryEntry
	n = 0
	fill(t, reflect.ValueOf(&h).Elem(), &n)
	if got, err := decodeHistory(encodeHistory(h)); err != nil || !reflect.DeepEqual(got, h) {
		t.Fatalf("history: got %+v, %v\nwant %+v", got, err, h)
	}

	var r taskRecord
	n = 0
	fill(t, reflect.ValueOf(&r).Elem(), &n)
	if got, err := decodeTask(encodeTask(r)); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("task: got %+v, %v\nwant %+v", got, err, r)
	}
	slot := taskRecord{Task: otpbot.Task{ID: otpbot.TaskID(usual.ID, otpbot.TaskSend), Kind: otpbot.TaskSend,
		Priority: otpbot.PriorityCode, MessageID: usual.ID, Target: target, Due: now.UTC(), Created: now.UTC()}, Gen: 9}
	if got, err := decodeTask(encodeTask(slot)); err != nil || !reflect.DeepEqual(got, slot) {
		t.Fatalf("slot task: got %+v, %v\nwant %+v", got, err, slot)
	}

	// A damaged value is an error, not a half-read record.
	for _, bad := range [][]byte{encodeMessage(usual)[:20], {codecV1, 200, 1}, {9}} {
		if _, err := decodeMessage(bad); !errors.Is(err, errCorrupt) {
			t.Errorf("decode %v: %v, want errCorrupt", bad, err)
		}
	}
}

// TestOpenReadsJSONRecords: the messages, tasks and history entries of a
// file written before the binary form (JSON values) still read, and a
// message rewritten after the change is stored in the new form.
func TestOpenReadsJSONRecords(t *testing.T) {
	clock := storetest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	opts := storetest.DefaultOptions(clock.Now)
	path := filepath.Join(t.TempDir(), "otpbot.db")
	s, err := Open(path, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := fixture(t, s, clock.Now())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Rewrite every message, task and history entry as JSON.
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	rewritten := 0
	err = db.Update(func(tx *bbolt.Tx) error {
		asJSON := func(b *bbolt.Bucket, decode func(k, v []byte) (any, error)) error {
			var keys, vals [][]byte
			if err := b.ForEach(func(k, v []byte) error {
				rec, err := decode(k, v)
				if err != nil {
					return err
				}
				js, err := json.Marshal(rec)
				keys, vals = append(keys, clone(k)), append(vals, js)
				return err
			}); err != nil {
				return err
			}
			for i := range keys {
				if err := b.Put(keys[i], vals[i]); err != nil {
					return err
				}
			}
			rewritten += len(keys)
			return nil
		}
		if err := asJSON(tx.Bucket(bMsgs), func(k, v []byte) (any, error) {
			if len(k) == taskKeyLen {
				return decodeTask(v)
			}
			return decodeMessage(v)
		}); err != nil {
			return err
		}
		return asJSON(tx.Bucket(bHist), func(_, v []byte) (any, error) { return decodeHistory(v) })
	})
	if cerr := db.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	if rewritten != 2+2+2 { // two messages and their tasks; the entry under the card and under events
		t.Fatalf("%d records rewritten as JSON", rewritten)
	}

	again, err := Open(path, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	sameContents(t, again, ev)
	jobs, err := again.Claim(t.Context(), clock.Now(), time.Minute, 10)
	if err != nil || len(jobs) != 2 || jobs[0].Message == nil || jobs[0].Message.Event.Code != ev.Code {
		t.Fatalf("Claim: %+v, %v", jobs, err)
	}
	m := *jobs[0].Message
	m.TelegramID, m.UpdatedAt = 5, m.UpdatedAt.Add(time.Second)
	if err := again.CompleteMessage(t.Context(), jobs[0], jobs[0].Message.UpdatedAt, m); err != nil {
		t.Fatal(err)
	}
	if err := again.db.View(func(tx *bbolt.Tx) error {
		k, _ := messageKey(tx, m.ID)
		if v := tx.Bucket(bMsgs).Get(k); isJSON(v) {
			t.Errorf("a message written now is JSON")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := again.Message(t.Context(), m.ID); err != nil || !ok || got.TelegramID != 5 {
		t.Fatalf("Message: %+v %v %v", got, ok, err)
	}
}
