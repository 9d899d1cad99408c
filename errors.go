package otpbot

import "errors"

// Sentinel errors shared by every store, matched with errors.Is.
var (
	// ErrNotFound: the thing asked for does not exist (or has expired).
	ErrNotFound = errors.New("not found")
	// ErrLeaseLost: a job's lease ran out and another worker may own it.
	ErrLeaseLost = errors.New("lease lost")
	// ErrConflict: the stored value changed since it was read.
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: the store cannot be reached; the caller should answer
	// 503 so the provider retries.
	ErrUnavailable = errors.New("store unavailable")
	// ErrSecretConflict is returned by Import when the imported installation
	// key differs from the target's own and the target holds dedupe marks
	// made with its own (see Porter). Import into a fresh store instead.
	ErrSecretConflict = errors.New("installation secret conflict")
	// ErrNotLinkable: a link or invite for a key no chat can be linked to
	// (Key.Linkable: EventsKey, an empty id).
	ErrNotLinkable = errors.New("key cannot be linked")
)
