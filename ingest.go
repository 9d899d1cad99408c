package otpbot

import (
	"bytes"
	"fmt"
	"time"
)

// IngestOutcome is the rule both stores follow for what a push becomes,
// before any link is looked at: a rejected push is recorded as rejected,
// one that is not pushed to chats (history only) as recorded, a code or
// approval request that expired by at (its receipt) as expired; any other
// is routed to the chats of its keys, Unrouted until a link is found
// (then Queued).
func IngestOutcome(ev Event, at time.Time) (outcome Outcome, route bool) {
	switch {
	case ev.Kind == KindRejected:
		return OutcomeRejected, false
	case !ev.Kind.Pushed():
		return OutcomeRecorded, false
	case ev.Expired(at):
		return OutcomeExpired, false
	}
	return OutcomeUnrouted, true
}

// ImportedKey returns the installation key among recs (nil when there is
// none), for a store's Import: a wrong size or two different keys are an
// error.
func ImportedKey(recs []Record) ([]byte, error) {
	var key []byte
	for _, r := range recs {
		if r.InstallationKey == nil {
			continue
		}
		if len(r.InstallationKey) != InstallationKeySize {
			return nil, fmt.Errorf("imported installation key is %d bytes, want %d", len(r.InstallationKey), InstallationKeySize)
		}
		if key != nil && !bytes.Equal(key, r.InstallationKey) {
			return nil, fmt.Errorf("%w: the records hold two different installation keys", ErrKeyConflict)
		}
		key = r.InstallationKey
	}
	return key, nil
}
