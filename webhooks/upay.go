package webhooks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/otpbot/otpbot"
)

// The UPay push document (specs/000_01b5ba90e4513639.txt) as Go types. Every
// field of every event is here, as Scalar (or CardNumber / Secret), so that
// numbers may arrive as JSON numbers or strings; unknown fields are ignored.

// UPay event names: the fourteen of the push document (§1) plus CE_EVENT and
// CC_AUTHORIZATION, which UPay's other pages name (PROVIDERS.md).
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

// UPayPush is the envelope of every UPay push (document §2). All four
// scalar fields are required.
type UPayPush struct {
	Event     Scalar `json:"event"`     // event name
	Trace     Scalar `json:"trace"`     // the same for every push of one transaction
	OrderNo   Scalar `json:"orderNo"`   // globally unique: the push's identity
	Timestamp Scalar `json:"timestamp"` // push time, milliseconds
	// Detail is the event-specific object, decoded by event name.
	Detail json.RawMessage `json:"detail"`
}

// UPayCardTransaction is the detail of the card transaction events (§2.1):
// CC_CONSUME, CC_REFUND, CC_WITHDRAW_CASH, CC_REDEEM, CC_RECHARGE, and
// CC_AUTHORIZATION, whose format UPay publishes elsewhere in this shape.
type UPayCardTransaction struct {
	CardID     Scalar     `json:"cardId"`
	CardNumber CardNumber `json:"cardNumber"`
	OrderNo    Scalar     `json:"orderNo"`
	CustomerNo Scalar     `json:"customerNo"`
	// Type: 1 recharge/mortgage, 2 consumption, 3 refund, 4 withdrawal,
	// 5 redemption, 6 management fee.
	Type Scalar `json:"type"`
	// Status: 1 successful, 2 failed, 3 processing, 4 credited, 5 not
	// credited, 6 payment failed, 7 canceled.
	Status           Scalar `json:"status"`
	Amount           Scalar `json:"amount"`
	Direction        Scalar `json:"direction"` // income or expenditure (codes undocumented)
	MerchantName     Scalar `json:"merchantName"`
	Currency         Scalar `json:"currency"`
	TransactionAt    Scalar `json:"transactionAt"`
	TransactionID    Scalar `json:"transactionId"`
	OriginalAmount   Scalar `json:"originalAmount"`
	OriginalCurrency Scalar `json:"originalCurrency"`
	Reason           Scalar `json:"reason"` // cause of failure
}

func (d *UPayCardTransaction) required() []field {
	return []field{
		{"detail.cardId", d.CardID}, {"detail.cardNumber", Scalar(d.CardNumber)},
		{"detail.orderNo", d.OrderNo}, {"detail.customerNo", d.CustomerNo},
		{"detail.type", d.Type}, {"detail.status", d.Status}, {"detail.amount", d.Amount},
		{"detail.direction", d.Direction}, {"detail.currency", d.Currency},
		{"detail.transactionAt", d.TransactionAt}, {"detail.transactionId", d.TransactionID},
	}
}

func (d *UPayCardTransaction) fill(ev *otpbot.Event) {
	ev.CardID, ev.CustomerNo = d.CardID.String(), d.CustomerNo.String()
	ev.CardLast4 = otpbot.MaskCard(string(d.CardNumber))
	ev.Amount, ev.Currency, ev.Merchant = d.Amount.String(), d.Currency.String(), d.MerchantName.String()
	ev.Status = statusWord(d.Status, upayTransactionStatus)
	ev.Reason = d.Reason.String()
	ev.OccurredAt, _ = d.TransactionAt.Time()
}

// UPay3DSOTP is the detail of 3DS_OTP (§2.2): a 3-D Secure code.
type UPay3DSOTP struct {
	CardID     Scalar     `json:"cardId"`
	CardNumber CardNumber `json:"cardNumber"`
	CustomerNo Scalar     `json:"customerNo"`
	Code       Secret     `json:"3dsCode"`
	OrderNo    Scalar     `json:"orderNo"`
}

func (d *UPay3DSOTP) required() []field {
	return []field{
		{"detail.cardId", d.CardID}, {"detail.cardNumber", Scalar(d.CardNumber)},
		{"detail.customerNo", d.CustomerNo}, {"detail.3dsCode", Scalar(d.Code)},
		{"detail.orderNo", d.OrderNo},
	}
}

func (d *UPay3DSOTP) fill(ev *otpbot.Event) {
	ev.CardID, ev.CustomerNo = d.CardID.String(), d.CustomerNo.String()
	ev.CardLast4 = otpbot.MaskCard(string(d.CardNumber))
	ev.Code, ev.CodeLabel = string(d.Code), "3-D Secure code"
}

// UPay3DSConfirm is the detail of 3DS_CONFIRM (§2.3): a confirmation code
// for a named purchase.
type UPay3DSConfirm struct {
	CardID              Scalar     `json:"cardId"`
	CardNumber          CardNumber `json:"cardNumber"`
	CustomerNo          Scalar     `json:"customerNo"`
	ValidateCode        Secret     `json:"validateCode"`
	Merchants           Scalar     `json:"merchants"` // merchant name
	TransactionTime     Scalar     `json:"transactionTime"`
	Amount              Scalar     `json:"amount"`
	TransactionCurrency Scalar     `json:"transactionCurrency"`
}

func (d *UPay3DSConfirm) required() []field {
	return []field{
		{"detail.cardId", d.CardID}, {"detail.cardNumber", Scalar(d.CardNumber)},
		{"detail.customerNo", d.CustomerNo}, {"detail.validateCode", Scalar(d.ValidateCode)},
		{"detail.merchants", d.Merchants}, {"detail.transactionTime", d.TransactionTime},
		{"detail.amount", d.Amount}, {"detail.transactionCurrency", d.TransactionCurrency},
	}
}

func (d *UPay3DSConfirm) fill(ev *otpbot.Event) {
	ev.CardID, ev.CustomerNo = d.CardID.String(), d.CustomerNo.String()
	ev.CardLast4 = otpbot.MaskCard(string(d.CardNumber))
	ev.Code, ev.CodeLabel = string(d.ValidateCode), "3-D Secure confirmation code"
	ev.Merchant, ev.Amount, ev.Currency = d.Merchants.String(), d.Amount.String(), d.TransactionCurrency.String()
	ev.OccurredAt, _ = d.TransactionTime.Time()
}

// UPayCardApply is the detail of CA_APPLY (§2.4): a card application was
// submitted.
type UPayCardApply struct {
	CardID      Scalar `json:"cardId"`
	OrderNo     Scalar `json:"orderNo"`
	CustomerNo  Scalar `json:"customerNo"`
	Amount      Scalar `json:"amount"`
	Status      Scalar `json:"status"` // 1 paid, 2 pending payment
	SubscribeAt Scalar `json:"subscribeAt"`
}

func (d *UPayCardApply) required() []field {
	return []field{
		{"detail.cardId", d.CardID}, {"detail.orderNo", d.OrderNo},
		{"detail.customerNo", d.CustomerNo}, {"detail.amount", d.Amount},
		{"detail.status", d.Status}, {"detail.subscribeAt", d.SubscribeAt},
	}
}

func (d *UPayCardApply) fill(ev *otpbot.Event) {
	ev.CardID, ev.CustomerNo, ev.Amount = d.CardID.String(), d.CustomerNo.String(), d.Amount.String()
	ev.Status = statusWord(d.Status, upayPaymentStatus)
	ev.OccurredAt, _ = d.SubscribeAt.Time()
}

// UPayRechargeApply is the detail of CR_RECHARGE (§2.5): a card recharge
// application was submitted.
type UPayRechargeApply struct {
	CardID      Scalar     `json:"cardId"`
	OrderNo     Scalar     `json:"orderNo"`
	CustomerNo  Scalar     `json:"customerNo"`
	CardNumber  CardNumber `json:"cardNumber"`
	Amount      Scalar     `json:"amount"`
	Status      Scalar     `json:"status"` // 8 pending payment
	SubscribeAt Scalar     `json:"subscribeAt"`
}

func (d *UPayRechargeApply) required() []field {
	return []field{
		{"detail.cardId", d.CardID}, {"detail.orderNo", d.OrderNo},
		{"detail.customerNo", d.CustomerNo}, {"detail.cardNumber", Scalar(d.CardNumber)},
		{"detail.amount", d.Amount}, {"detail.status", d.Status},
		{"detail.subscribeAt", d.SubscribeAt},
	}
}

func (d *UPayRechargeApply) fill(ev *otpbot.Event) {
	ev.CardID, ev.CustomerNo, ev.Amount = d.CardID.String(), d.CustomerNo.String(), d.Amount.String()
	ev.CardLast4 = otpbot.MaskCard(string(d.CardNumber))
	ev.Status = statusWord(d.Status, upayPaymentStatus)
	ev.OccurredAt, _ = d.SubscribeAt.Time()
}

// UPayVerification is the detail of NE_VERIFY (§2.6): a verification code,
// or for type 3DS_CONFIRM_LINK a confirmation link, for the purpose named
// by Type (§2.7).
type UPayVerification struct {
	CardID     Scalar     `json:"cardId"`
	OrderNo    Scalar     `json:"orderNo"`
	Code       Secret     `json:"code"`
	CardNumber CardNumber `json:"cardNumber"`
	Type       Scalar     `json:"type"`
	CustomerNo Scalar     `json:"customerNo"`
}

func (d *UPayVerification) required() []field {
	return []field{
		{"detail.cardId", d.CardID}, {"detail.orderNo", d.OrderNo},
		{"detail.code", Scalar(d.Code)}, {"detail.cardNumber", Scalar(d.CardNumber)},
		{"detail.type", d.Type}, {"detail.customerNo", d.CustomerNo},
	}
}

// The verification types of §2.7.
const (
	UPayVerify3DSConfirmLink = "3DS_CONFIRM_LINK"
	UPayVerify3DSCode        = "3DS_VERIFICATION_CODE"
	UPayVerifyCardActivation = "CARD_ACTIVATION"
	UPayVerifyLockUnlock     = "LOCK_UNLOCK_CARD"
	UPayVerifyPwdModify      = "TX_WDR_PWD_MODIFY"
	UPayVerifyPwdSet         = "TX_WDR_PWD_SET"
	UPayVerifyViewCard       = "CAT_CARD"
)

// upayVerificationLabel says what a NE_VERIFY code is for, per §2.7.
func upayVerificationLabel(typ string) string {
	switch otpbot.NormalizeName(typ) {
	case UPayVerify3DSConfirmLink:
		return "3-D Secure confirmation link"
	case UPayVerify3DSCode:
		return "3-D Secure verification code"
	case UPayVerifyCardActivation:
		return "Card activation"
	case UPayVerifyLockUnlock:
		return "Card lock/unlock"
	case UPayVerifyPwdModify:
		return "Change of transaction (cash withdrawal) password"
	case UPayVerifyPwdSet:
		return "Setting of transaction (cash withdrawal) password"
	case UPayVerifyViewCard:
		return "Viewing the card"
	}
	return "Verification code"
}

func (d *UPayVerification) fill(ev *otpbot.Event) {
	ev.CardID, ev.CustomerNo = d.CardID.String(), d.CustomerNo.String()
	ev.CardLast4 = otpbot.MaskCard(string(d.CardNumber))
	ev.CodeLabel = upayVerificationLabel(d.Type.String())
	if otpbot.NormalizeName(d.Type.String()) == UPayVerify3DSConfirmLink {
		ev.Link = string(d.Code) // shown as a button, not as a code to copy
	} else {
		ev.Code = string(d.Code)
	}
}

// UPayKYC is the detail of KS_KYC (§2.8): the final result of a KYC check.
type UPayKYC struct {
	CustomerNo   Scalar `json:"customerNo"`
	DocumentType Scalar `json:"documentType"` // 1 id card, 2 passport, 3 living
	Status       Scalar `json:"status"`       // 1 pass, 2 refuse (3 processing, 4 none: never pushed)
}

func (d *UPayKYC) required() []field {
	return []field{
		{"detail.customerNo", d.CustomerNo}, {"detail.documentType", d.DocumentType},
		{"detail.status", d.Status},
	}
}

func (d *UPayKYC) fill(ev *otpbot.Event) {
	ev.CustomerNo = d.CustomerNo.String()
	ev.Status = statusWord(d.Status, upayKYCStatus)
}

// UPayCardStatusChange is the detail of CSC_STATUS_CHANGE (§2.9).
type UPayCardStatusChange struct {
	CardID     Scalar     `json:"cardId"`
	CardNumber CardNumber `json:"cardNumber"`
	Status     Scalar     `json:"status"` // see upayCardStatus
	OrderNo    Scalar     `json:"orderNo"`
	CustomerNo Scalar     `json:"customerNo"`
}

func (d *UPayCardStatusChange) required() []field {
	return []field{
		{"detail.cardId", d.CardID}, {"detail.cardNumber", Scalar(d.CardNumber)},
		{"detail.status", d.Status}, {"detail.orderNo", d.OrderNo},
		{"detail.customerNo", d.CustomerNo},
	}
}

func (d *UPayCardStatusChange) fill(ev *otpbot.Event) {
	ev.CardID, ev.CustomerNo = d.CardID.String(), d.CustomerNo.String()
	ev.CardLast4 = otpbot.MaskCard(string(d.CardNumber))
	ev.Status = statusWord(d.Status, upayCardStatus)
}

// UPayLogistics is the detail of MF_MATERIAL_FLOW (§2.10): a physical card
// was dispatched.
type UPayLogistics struct {
	DispatchTime         Scalar `json:"dispatchTime"`
	LogisticsOrderNo     Scalar `json:"logisticsOrderNo"`
	LogisticsCompanyName Scalar `json:"logisticsCompanyName"`
	RecipientAddress     Scalar `json:"recipientAddress"`
	LogisticsImage       Scalar `json:"logisticsImage"`
	CardID               Scalar `json:"cardId"`
}

func (d *UPayLogistics) required() []field {
	return []field{
		{"detail.dispatchTime", d.DispatchTime}, {"detail.logisticsOrderNo", d.LogisticsOrderNo},
		{"detail.logisticsCompanyName", d.LogisticsCompanyName},
		{"detail.recipientAddress", d.RecipientAddress}, {"detail.logisticsImage", d.LogisticsImage},
		{"detail.cardId", d.CardID},
	}
}

func (d *UPayLogistics) fill(ev *otpbot.Event) {
	ev.CardID = d.CardID.String()
	ev.Status = "dispatched"
	// The document types dispatchTime as a String without a format: a Unix
	// time is used when it is one, else the push timestamp stands.
	ev.OccurredAt, _ = d.DispatchTime.Time()
}

// UPayCardActivated is the detail of CS_APPROVED (§2.11): a card was
// activated.
type UPayCardActivated struct {
	OrderNo    Scalar     `json:"orderNo"`
	CardID     Scalar     `json:"cardId"`
	CardNumber CardNumber `json:"cardNumber"`
	CustomerNo Scalar     `json:"customerNo"`
	CardStatus Scalar     `json:"cardStatus"` // read with the §2.9 card status codes
}

func (d *UPayCardActivated) required() []field {
	return []field{
		{"detail.orderNo", d.OrderNo}, {"detail.cardId", d.CardID},
		{"detail.cardNumber", Scalar(d.CardNumber)}, {"detail.customerNo", d.CustomerNo},
		{"detail.cardStatus", d.CardStatus},
	}
}

func (d *UPayCardActivated) fill(ev *otpbot.Event) {
	ev.CardID, ev.CustomerNo = d.CardID.String(), d.CustomerNo.String()
	ev.CardLast4 = otpbot.MaskCard(string(d.CardNumber))
	ev.Status = statusWord(d.CardStatus, upayCardStatus)
}

// UPayCardEvent is the detail of CE_EVENT (card frozen / unfrozen), which
// UPay names outside the push document without publishing its fields: the
// usual card fields are read when present and none is required.
type UPayCardEvent struct {
	CardID     Scalar     `json:"cardId"`
	CardNumber CardNumber `json:"cardNumber"`
	CustomerNo Scalar     `json:"customerNo"`
	OrderNo    Scalar     `json:"orderNo"`
	Type       Scalar     `json:"type"`
	Status     Scalar     `json:"status"` // kept as received: its codes are unpublished
	Reason     Scalar     `json:"reason"`
}

func (d *UPayCardEvent) required() []field { return nil } // fields unpublished

func (d *UPayCardEvent) fill(ev *otpbot.Event) {
	ev.CardID, ev.CustomerNo = d.CardID.String(), d.CustomerNo.String()
	ev.CardLast4 = otpbot.MaskCard(string(d.CardNumber))
	ev.Status, ev.Reason = d.Status.String(), d.Reason.String()
}

// upayUnknown reads the routing fields UPay details commonly carry, for an
// event name we do not know: it is recorded in history under its card or
// customer.
type upayUnknown struct {
	CardID     Scalar     `json:"cardId"`
	CardNumber CardNumber `json:"cardNumber"`
	CustomerNo Scalar     `json:"customerNo"`
}

func (d *upayUnknown) required() []field { return nil }

func (d *upayUnknown) fill(ev *otpbot.Event) {
	ev.CardID, ev.CustomerNo = d.CardID.String(), d.CustomerNo.String()
	ev.CardLast4 = otpbot.MaskCard(string(d.CardNumber))
}

// detail is one event's typed detail.
type detail interface {
	// required lists the fields the document marks required, in its order.
	required() []field
	// fill copies the detail into the event.
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
// no event name. An unknown event name gives KindUnknown; a known event
// missing a required field gives KindRejected with Reason naming the field.
// The identity is "upay:" + the outer orderNo; when orderNo is missing it
// is "upay:hmac:" + the keyed hash (see Parser.IDKey) of the canonical form
// of the envelope fields and the event's documented detail fields, so that
// a retry that gained a field is still a repeat (the whole body for an
// unknown event, whose fields are not known).
// Codes expire the codes' TTL after receipt. It fails with another error
// than ErrMalformed when p has no IDKey.
func (p Parser) ParseUPay(body []byte, received time.Time) (otpbot.Event, error) {
	if err := p.checkKey(); err != nil {
		return otpbot.Event{}, err
	}
	var push UPayPush
	if err := decodeBody(body, &push); err != nil {
		return otpbot.Event{}, err
	}
	name := strings.TrimSpace(push.Event.String())
	if name == "" {
		return otpbot.Event{}, fmt.Errorf("%w: no event", ErrMalformed)
	}
	ev := otpbot.Event{
		Provider:   otpbot.ProviderUPay,
		Name:       name,
		Trace:      push.Trace.String(),
		ReceivedAt: received,
	}
	spec, known := upayEvent(otpbot.NormalizeName(name))
	if push.OrderNo != "" {
		ev.ID = "upay:" + push.OrderNo.String()
	} else {
		var fields shape // unknown event: the whole body
		if known {
			fields = knownShape(&push)
			fields["detail"] = knownShape(spec.detail)
		}
		sum, err := bodyID(p.IDKey, body, fields)
		if err != nil {
			return otpbot.Event{}, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		ev.ID = "upay:hmac:" + sum
	}
	ev.Group = ev.ID

	ev.Kind = spec.kind
	if known {
		ev.Name = otpbot.NormalizeName(name)
	}
	detailErr := decodeObject(push.Detail, spec.detail)
	if detailErr == nil {
		spec.detail.fill(&ev)
	}
	if ev.OccurredAt.IsZero() {
		ev.OccurredAt, _ = push.Timestamp.Time()
	}
	if spec.kind == otpbot.KindCode {
		ev.ExpiresAt = received.Add(p.Codes.ttl(ev.Name))
	}
	if !known {
		return ev, nil
	}
	envelope := firstMissing(
		field{"event", push.Event}, field{"trace", push.Trace},
		field{"orderNo", push.OrderNo}, field{"timestamp", push.Timestamp},
	)
	switch {
	case envelope != "":
		reject(&ev, "missing required field "+envelope)
	case detailErr != nil:
		reject(&ev, "detail is not an object")
	case spec.strict:
		if missing := firstMissing(spec.detail.required()...); missing != "" {
			reject(&ev, "missing required field "+missing)
		}
	}
	return ev, nil
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

// upayTransactionStatus reads §2.1's transaction status.
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

// upayPaymentStatus reads §2.4's and §2.5's payment status.
func upayPaymentStatus(n int64) string {
	switch n {
	case 1:
		return "paid"
	case 2, 8:
		return "pending payment"
	}
	return ""
}

// upayKYCStatus reads §2.8's KYC status.
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

// upayCardStatus reads §2.9's card status.
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
