package webhooks

import (
	"fmt"
	"strings"
	"time"

	"github.com/otpbot/otpbot"
)

// Parsing a HyperCard push (the types are in hypercard.go).

// ParseHyperCard turns a HyperCard push body (already authenticated) into
// an event received at received, as an unsigned push (see
// Parser.parseHyperCard for what a signature adds).
//
// It fails with ErrMalformed when the body is not a JSON object or names
// no notify_type. An unknown notify type gives KindUnknown.
// OPT_CODE and AUTH_3DS are rejected (KindRejected, Reason naming the
// field) only without their code (resp. auth_id) or card_id; any other
// field they lack or have malformed is left out and the push delivered (a
// missing create_time: the codes' TTL from receipt; a missing
// expired_time: the same). Any other known type missing a required field
// is rejected. A value too long to be real (see MaxIDBytes) rejects any
// push, and the event keeps only a marked prefix of it.
//
// HyperCard pushes carry no id, so the identity is "hypercard:" + the
// keyed hash (see Parser.IDSecret) of the string HyperCard's signature
// covers, made of the fields this notify type is documented with
// (hyperCardID): a retry of the same push is a repeat even when it gained
// a field HyperCard added since, a replay the signature cannot tell from
// the original (a number re-sent as a string) is a repeat too, and a
// change to a known field (a new auth_result) is a new push. For an
// unknown notify type no field is known and the whole body counts. A
// history event whose body has no unique id of its own (CONSUME,
// CANCEL_CARD...) adds what tells one occurrence from the next (see
// request.occurrence): two transactions of one card are two events.
// AUTH_3DS pushes share the group "hypercard:AUTH_3DS:<auth_id>" and
// their auth_result is read through p.AuthResults; an OPT_CODE code
// lives the codes' TTL from create_time, counted on HyperCard's clock
// (request.age).
func (p Parser) ParseHyperCard(body []byte, received time.Time) (otpbot.Event, error) {
	r, err := p.parseHyperCard(body, request{received: received, tolerance: DefaultHyperCardTolerance})
	return r.ev, err
}

// parseHyperCard is ParseHyperCard for a push that arrived as rq says: a
// signed push's timestamp header dates its code, and its nonce and
// timestamp tell its occurrence.
func (p Parser) parseHyperCard(body []byte, rq request) (parsed, error) {
	if err := p.checkSecret(); err != nil {
		return parsed{}, err
	}
	var push HyperCardPush
	if err := decodeBody(body, &push); err != nil {
		return parsed{}, err
	}
	if strings.TrimSpace(push.NotifyType.String()) == "" {
		// The contract answers a body without its event name 400 (see
		// docs/contract.md), as for UPay: no push to record.
		return parsed{}, fmt.Errorf("%w: no notify_type", ErrMalformed)
	}
	spec, known := hyperCardEvent(otpbot.NormalizeName(strings.TrimSpace(push.NotifyType.String())))
	if err := decodeObject(body, spec.detail); err != nil {
		// Unreachable after decodeBody, but a parser must not trust that.
		return parsed{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	sum, err := p.hyperCardIdentity(body, &push, spec, known, rq)
	if err != nil {
		return parsed{}, err
	}
	env := vet([]field{idField("notify_type", &push.NotifyType, required)}, spec.kind, known)
	det := vet(spec.detail.fields(), spec.kind, known)

	name := strings.TrimSpace(push.NotifyType.String())
	ev := otpbot.Event{
		ID: "hypercard:" + sum, Provider: otpbot.ProviderHyperCard, Name: name, Kind: spec.kind,
		ReceivedAt: rq.received,
	}
	ev.Group = ev.ID
	if known {
		ev.Name = otpbot.NormalizeName(name)
	}
	spec.detail.fill(&ev)
	p.hyperCardTimes(&ev, spec.detail, rq)
	switch {
	case env.reject != "":
		reject(&ev, env.reject)
	case det.reject != "":
		reject(&ev, det.reject)
	}
	var degraded []string
	if ev.Kind.Pushed() {
		degraded = append(env.degraded, det.degraded...)
	}
	return parsed{ev: ev, known: known, degraded: degraded}, nil
}

// uniqueID is a detail whose body may carry an id of its own, unique per
// event (a trade or request number): its content alone then tells one
// event from the next.
type uniqueID interface{ hasUniqueID() bool }

// hyperCardIdentity is the keyed hash that identifies a push (see
// ParseHyperCard): of the signed string of its documented fields (the
// whole body for an unknown type) and, for a history event without a
// unique id, of its occurrence. A code or approval request keeps the
// identity of its contents alone, which its code and times make unique.
func (p Parser) hyperCardIdentity(body []byte, push *HyperCardPush, spec eventSpec, known bool, rq request) (string, error) {
	var fields shape // unknown type: the whole body
	if known {
		fields = knownShape(push, spec.detail)
	}
	occurrence := ""
	if u, ok := spec.detail.(uniqueID); !spec.kind.Pushed() && (!ok || !u.hasUniqueID()) {
		occurrence = rq.occurrence()
	}
	sum, err := hyperCardID(p.IDSecret, body, fields, occurrence)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return sum, nil
}

// hyperCardTimes sets when a code or approval request expires, counted on
// HyperCard's clock where the push says it: an OPT_CODE lives the codes'
// TTL from create_time (or from receipt without it); an AUTH_3DS expires
// at expired_time, which for a signed push is read as a time left from
// its signed timestamp, and without it lives the codes' TTL from receipt.
func (p Parser) hyperCardTimes(ev *otpbot.Event, d detail, rq request) {
	switch ev.Kind {
	case otpbot.KindCode: // OPT_CODE
		p.setCodeExpiry(ev, ev.OccurredAt, rq)
	case otpbot.KindApproval: // AUTH_3DS
		if a, ok := d.(*HyperCardAuth3DS); ok {
			ev.AuthState = p.authState(a.AuthResult)
		}
		switch {
		case ev.ExpiresAt.IsZero():
			ev.ExpiresAt = rq.received.Add(p.Codes.ttl(ev.Name))
		case rq.signed():
			ev.ExpiresAt = rq.received.Add(ev.ExpiresAt.Sub(rq.signedAt))
		}
	}
}
