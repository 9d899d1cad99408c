package webhooks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/otpbot/otpbot"
)

// UPay's pushes as Go types (docs/upay.md; upay_details.go holds the
// details). Every field of every event is here, as Scalar (or CardNumber /
// Secret), so that numbers may arrive as JSON numbers or strings; unknown
// fields are ignored.

// UPay event names (docs/upay.md#events): the fourteen of UPay's push
// document plus CE_EVENT and CC_AUTHORIZATION, which UPay names in its other
// published pages.
const (
	UPayCardConsume       = "CC_CONSUME"
	UPayCardRefund        = "CC_REFUND"
	UPayCardWithdrawCash  = "CC_WITHDRAW_CASH"
	UPayCardRedeem        = "CC_REDEEM"
	UPayCardRecharge      = "CC_RECHARGE"
	UPay3DSOTPEvent       = "3DS_OTP"
	UPay3DSConfirmEvent   = "3DS_CONFIRM"
	UPayRechargeApplied   = "CR_RECHARGE"
	UPayCardApplied       = "CA_APPLY"
	UPayVerify            = "NE_VERIFY"
	UPayKYCEvent          = "KS_KYC"
	UPayCardStatusChanged = "CSC_STATUS_CHANGE"
	UPayMaterialFlow      = "MF_MATERIAL_FLOW"
	UPayCardApproved      = "CS_APPROVED"
	UPayCardEventName     = "CE_EVENT"
	UPayAuthorization     = "CC_AUTHORIZATION"
)

// UPayPush is the envelope of every UPay push (docs/upay.md#envelope). The
// document requires all four scalar fields; a code event is still delivered without
// trace, orderNo or timestamp (see vet).
type UPayPush struct {
	Event     Scalar `json:"event"`     // event name
	Trace     Scalar `json:"trace"`     // the same for every push of one transaction
	OrderNo   Scalar `json:"orderNo"`   // globally unique: the push's identity
	Timestamp Scalar `json:"timestamp"` // push time, milliseconds
	// Detail is the event-specific object, decoded by event name.
	Detail json.RawMessage `json:"detail"`
}

// detail is one event's typed detail.
type detail interface {
	// fields lists every field of the detail in the document's order, with
	// its bound and whether it is required (see vet).
	fields() []field
	// fill copies the detail into the event, after vet.
	fill(ev *otpbot.Event)
}

// eventSpec is what a known event name means: a fresh typed detail to
// decode into, the kind of event, and whether the detail's required fields
// are enforced (not for events UPay publishes outside the push document;
// their envelope is still the global format, required fields and all).
type eventSpec struct {
	detail detail
	kind   otpbot.Kind
	strict bool
}

// upayEvent returns the spec of a known (normalised) event name; ok is false
// for an unknown name, whose spec reads just the common routing fields.
func upayEvent(name string) (spec eventSpec, ok bool) {
	switch name {
	case UPayCardConsume, UPayCardRefund, UPayCardWithdrawCash, UPayCardRedeem, UPayCardRecharge:
		return eventSpec{new(UPayCardTransaction), otpbot.KindInfo, true}, true
	case UPayAuthorization:
		return eventSpec{new(UPayCardTransaction), otpbot.KindInfo, false}, true
	case UPay3DSOTPEvent:
		return eventSpec{new(UPay3DSOTP), otpbot.KindCode, true}, true
	case UPay3DSConfirmEvent:
		return eventSpec{new(UPay3DSConfirm), otpbot.KindCode, true}, true
	case UPayVerify:
		return eventSpec{new(UPayVerification), otpbot.KindCode, true}, true
	case UPayRechargeApplied:
		return eventSpec{new(UPayRechargeApply), otpbot.KindInfo, true}, true
	case UPayCardApplied:
		return eventSpec{new(UPayCardApply), otpbot.KindInfo, true}, true
	case UPayKYCEvent:
		return eventSpec{new(UPayKYC), otpbot.KindInfo, true}, true
	case UPayCardStatusChanged:
		return eventSpec{new(UPayCardStatusChange), otpbot.KindInfo, true}, true
	case UPayMaterialFlow:
		return eventSpec{new(UPayLogistics), otpbot.KindInfo, true}, true
	case UPayCardApproved:
		return eventSpec{new(UPayCardActivated), otpbot.KindInfo, true}, true
	case UPayCardEventName:
		return eventSpec{new(UPayCardEvent), otpbot.KindInfo, false}, true
	}
	return eventSpec{new(upayUnknown), otpbot.KindUnknown, false}, false
}

// ParseUPay turns a UPay push body (plain JSON, already authenticated and,
// if it was, decrypted) into an event received at received.
//
// It fails with ErrMalformed only when the body is not a JSON object or has
// no event name. An unknown event name gives KindUnknown. A code event
// (3DS_OTP, 3DS_CONFIRM, NE_VERIFY) is rejected (KindRejected, Reason
// naming the field) only without its code or without both its card id and
// customer number; any other field it lacks or has malformed is left out
// and the code delivered. Any other known event missing a required field
// is rejected. A value too long to be real (see MaxIDBytes) rejects any
// push, and the event keeps only a marked prefix of it.
//
// The identity is "upay:" + the outer orderNo; when orderNo is missing (or
// too long) it is "upay:hmac:" + the keyed hash (see Parser.IDSecret) of the
// canonical form of the envelope fields and the event's documented detail
// fields, so that a retry that gained a field is still a repeat (the whole
// body for an unknown event, whose fields are not known).
// A code lives the codes' TTL from the push's timestamp, counted on
// UPay's clock (request.age): for this unsigned parse, from receipt
// unless the timestamp is within DefaultUPayTolerance before it. It fails
// with another error than ErrMalformed when p has no IDSecret.
func (p Parser) ParseUPay(body []byte, received time.Time) (otpbot.Event, error) {
	r, err := p.parseUPay(body, request{received: received, tolerance: DefaultUPayTolerance})
	return r.ev, err
}

// parsed is a push as the handler needs it: the event, whether its name is
// one the parser knows, and the fields a delivered code or approval
// request lacks (see verdict).
type parsed struct {
	ev       otpbot.Event
	known    bool
	degraded []string
}

// parseUPay is ParseUPay for a push that arrived as rq says: a signed
// push's X-UPA-TIMESTAMP dates its code on UPay's clock.
func (p Parser) parseUPay(body []byte, rq request) (parsed, error) {
	if err := p.checkSecret(); err != nil {
		return parsed{}, err
	}
	var push UPayPush
	if err := decodeBody(body, &push); err != nil {
		return parsed{}, err
	}
	if strings.TrimSpace(push.Event.String()) == "" {
		return parsed{}, fmt.Errorf("%w: no event", ErrMalformed)
	}
	spec, known := upayEvent(otpbot.NormalizeName(strings.TrimSpace(push.Event.String())))
	id, err := p.upayID(body, &push, spec, known) // before vet, which cuts what is too long
	if err != nil {
		return parsed{}, err
	}
	detailErr := decodeObject(push.Detail, spec.detail)
	// The envelope is required of every known event, even one whose detail
	// fields are unpublished.
	env := vet([]field{
		idField("event", &push.Event, required), idField("trace", &push.Trace, required),
		idField("orderNo", &push.OrderNo, required), timeField("timestamp", &push.Timestamp, required),
	}, spec.kind, known)
	var det verdict
	if detailErr == nil {
		det = vet(spec.detail.fields(), spec.kind, spec.strict)
	}

	name := strings.TrimSpace(push.Event.String())
	ev := otpbot.Event{
		ID: id, Group: id, Provider: otpbot.ProviderUPay, Name: name, Kind: spec.kind,
		Trace: push.Trace.String(), ReceivedAt: rq.received,
	}
	if known {
		ev.Name = otpbot.NormalizeName(name)
	}
	if detailErr == nil {
		spec.detail.fill(&ev)
	}
	pushed, _ := push.Timestamp.Time()
	if ev.OccurredAt.IsZero() {
		ev.OccurredAt = pushed
	}
	if spec.kind == otpbot.KindCode {
		// The push's timestamp is when UPay sent the code.
		p.setCodeExpiry(&ev, pushed, rq)
	}
	switch {
	case env.reject != "":
		reject(&ev, env.reject)
	case known && detailErr != nil:
		reject(&ev, "detail is not an object")
	case det.reject != "":
		reject(&ev, det.reject)
	}
	var degraded []string
	if ev.Kind.Pushed() {
		degraded = append(env.degraded, det.degraded...)
	}
	return parsed{ev: ev, known: known, degraded: degraded}, nil
}

// upayID is the identity of a UPay push: its orderNo, or when it has none
// that can be real, the keyed hash of its known fields.
func (p Parser) upayID(body []byte, push *UPayPush, spec eventSpec, known bool) (string, error) {
	if push.OrderNo != "" && len(push.OrderNo) <= MaxIDBytes {
		return "upay:" + push.OrderNo.String(), nil
	}
	var fields shape // unknown event: the whole body
	if known {
		fields = knownShape(push)
		fields["detail"] = knownShape(spec.detail)
	}
	sum, err := bodyID(p.IDSecret, body, fields)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return "upay:hmac:" + sum, nil
}

// decodeBody unmarshals a push body, which must be one JSON object.
func decodeBody(body []byte, v any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	if err := json.Unmarshal(trimmed, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// upayTransactionStatus reads a card transaction's status
// (docs/upay.md#transaction-status).
func upayTransactionStatus(n int64) string {
	switch n {
	case 1:
		return "successful"
	case 2:
		return "failed"
	case 3:
		return "processing"
	case 4:
		return "credited"
	case 5:
		return "not credited"
	case 6:
		return "payment failed"
	case 7:
		return "canceled"
	}
	return ""
}

// upayPaymentStatus reads CA_APPLY's and CR_RECHARGE's payment status
// (docs/upay.md#ca_apply, docs/upay.md#cr_recharge).
func upayPaymentStatus(n int64) string {
	switch n {
	case 1:
		return "paid"
	case 2, 8:
		return "pending payment"
	}
	return ""
}

// upayKYCStatus reads KS_KYC's status (docs/upay.md#ks_kyc).
func upayKYCStatus(n int64) string {
	switch n {
	case 1:
		return "passed"
	case 2:
		return "refused"
	case 3:
		return "processing"
	case 4:
		return "none"
	}
	return ""
}

// upayCardStatus reads the card status of CSC_STATUS_CHANGE and CS_APPROVED
// (docs/upay.md#card-status).
func upayCardStatus(n int64) string {
	switch n {
	case 1:
		return "normal"
	case 2:
		return "to be activated"
	case 3:
		return "frozen"
	case 4:
		return "locked"
	case 5:
		return "destroyed"
	case 6:
		return "under application"
	case 7:
		return "activating"
	case 8:
		return "locking"
	case 9:
		return "unlocking"
	case 10:
		return "destroying"
	case 13:
		return "rejected"
	case 14:
		return "cancelled"
	case 15:
		return "replacing"
	case 16:
		return "replaced"
	}
	return ""
}
