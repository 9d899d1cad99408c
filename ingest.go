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

// ImportedSecret returns the installation secret among recs (nil when there is
// none), for a store's Import: a wrong size or two different keys are an
// error.
func ImportedSecret(recs []Record) ([]byte, error) {
	var key []byte
	for _, r := range recs {
		if r.InstallationSecret == nil {
			continue
		}
		if len(r.InstallationSecret) != InstallationSecretSize {
			return nil, fmt.Errorf("imported installation secret is %d bytes, want %d", len(r.InstallationSecret), InstallationSecretSize)
		}
		if key != nil && !bytes.Equal(key, r.InstallationSecret) {
			return nil, fmt.Errorf("%w: the records hold two different installation secrets", ErrSecretConflict)
		}
		key = r.InstallationSecret
	}
	return key, nil
}
