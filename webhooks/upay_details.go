package webhooks

import "github.com/otpbot/otpbot"

// The detail objects of the UPay events, one type per event (see upay.go
// for the envelope and the parser).

// UPayCardTransaction is the detail of the card transaction events
// (docs/upay.md#card-transactions):
// CC_CONSUME, CC_REFUND, CC_WITHDRAW_CASH, CC_REDEEM, CC_RECHARGE, and
// CC_AUTHORIZATION, whose fields are unpublished and read in this shape
// (docs/upay.md#cc_authorization).
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

func (d *UPayCardTransaction) fields() []field {
	return []field{
		idField("detail.cardId", &d.CardID, routing), cardField("detail.cardNumber", &d.CardNumber, required),
		idField("detail.orderNo", &d.OrderNo, required), idField("detail.customerNo", &d.CustomerNo, routing),
		idField("detail.type", &d.Type, required), idField("detail.status", &d.Status, required),
		amountField("detail.amount", &d.Amount, required), idField("detail.direction", &d.Direction, required),
		textField("detail.merchantName", &d.MerchantName, optional),
		currencyField("detail.currency", &d.Currency, required),
		timeField("detail.transactionAt", &d.TransactionAt, required),
		idField("detail.transactionId", &d.TransactionID, required),
		amountField("detail.originalAmount", &d.OriginalAmount, optional),
		currencyField("detail.originalCurrency", &d.OriginalCurrency, optional),
		textField("detail.reason", &d.Reason, optional),
	}
}

func (d *UPayCardTransaction) fill(ev *otpbot.Event) {
	ev.CardID, ev.CustomerNo = d.CardID.String(), d.CustomerNo.String()
	ev.CardLast4 = otpbot.MaskCard(string(d.CardNumber))
	ev.Amount, ev.Currency, ev.Merchant = amount(d.Amount, d.Currency), currency(d.Currency), d.MerchantName.String()
	ev.Status = statusWord(d.Status, upayTransactionStatus)
	ev.Type, ev.Direction = d.Type.String(), d.Direction.String()
	ev.OriginalAmount, ev.OriginalCurrency = amount(d.OriginalAmount, d.OriginalCurrency), currency(d.OriginalCurrency)
	ev.Reason = d.Reason.String()
	ev.OccurredAt, _ = d.TransactionAt.Time()
}

// UPay3DSOTP is the detail of 3DS_OTP (docs/upay.md#3ds_otp): a 3-D Secure
// code.
type UPay3DSOTP struct {
	CardID     Scalar     `json:"cardId"`
	CardNumber CardNumber `json:"cardNumber"`
	CustomerNo Scalar     `json:"customerNo"`
	Code       Secret     `json:"3dsCode"`
	OrderNo    Scalar     `json:"orderNo"`
}

func (d *UPay3DSOTP) fields() []field {
	return []field{
		idField("detail.cardId", &d.CardID, routing), cardField("detail.cardNumber", &d.CardNumber, required),
		idField("detail.customerNo", &d.CustomerNo, routing),
		secretField("detail.3dsCode", &d.Code, essential, MaxIDBytes),
		idField("detail.orderNo", &d.OrderNo, required),
	}
}

func (d *UPay3DSOTP) fill(ev *otpbot.Event) {
	ev.CardID, ev.CustomerNo = d.CardID.String(), d.CustomerNo.String()
	ev.CardLast4 = otpbot.MaskCard(string(d.CardNumber))
	ev.Code = string(d.Code)
}

// UPay3DSConfirm is the detail of 3DS_CONFIRM (docs/upay.md#3ds_confirm): a
// confirmation code
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

func (d *UPay3DSConfirm) fields() []field {
	return []field{
		idField("detail.cardId", &d.CardID, routing), cardField("detail.cardNumber", &d.CardNumber, required),
		idField("detail.customerNo", &d.CustomerNo, routing),
		secretField("detail.validateCode", &d.ValidateCode, essential, MaxIDBytes),
		textField("detail.merchants", &d.Merchants, required),
		timeField("detail.transactionTime", &d.TransactionTime, required),
		amountField("detail.amount", &d.Amount, required),
		currencyField("detail.transactionCurrency", &d.TransactionCurrency, required),
	}
}

func (d *UPay3DSConfirm) fill(ev *otpbot.Event) {
	ev.CardID, ev.CustomerNo = d.CardID.String(), d.CustomerNo.String()
	ev.CardLast4 = otpbot.MaskCard(string(d.CardNumber))
	ev.Code = string(d.ValidateCode)
	ev.Merchant, ev.Amount = d.Merchants.String(), amount(d.Amount, d.TransactionCurrency)
	ev.Currency = currency(d.TransactionCurrency)
	ev.OccurredAt, _ = d.TransactionTime.Time()
}

// UPayCardApply is the detail of CA_APPLY (docs/upay.md#ca_apply): a card
// application was
// submitted.
type UPayCardApply struct {
	CardID      Scalar `json:"cardId"`
	OrderNo     Scalar `json:"orderNo"`
	CustomerNo  Scalar `json:"customerNo"`
	Amount      Scalar `json:"amount"`
	Status      Scalar `json:"status"` // 1 paid, 2 pending payment
	SubscribeAt Scalar `json:"subscribeAt"`
}

func (d *UPayCardApply) fields() []field {
	return []field{
		idField("detail.cardId", &d.CardID, routing), idField("detail.orderNo", &d.OrderNo, required),
		idField("detail.customerNo", &d.CustomerNo, routing), amountField("detail.amount", &d.Amount, required),
		idField("detail.status", &d.Status, required), timeField("detail.subscribeAt", &d.SubscribeAt, required),
	}
}

// fill: the amount has no currency in the push; it is shown with the
// decimals it was written with.
func (d *UPayCardApply) fill(ev *otpbot.Event) {
	ev.CardID, ev.CustomerNo, ev.Amount = d.CardID.String(), d.CustomerNo.String(), amount(d.Amount, "")
	ev.Status = statusWord(d.Status, upayPaymentStatus)
	ev.OccurredAt, _ = d.SubscribeAt.Time()
}

// UPayRechargeApply is the detail of CR_RECHARGE (docs/upay.md#cr_recharge):
// a card recharge
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

func (d *UPayRechargeApply) fields() []field {
	return []field{
		idField("detail.cardId", &d.CardID, routing), idField("detail.orderNo", &d.OrderNo, required),
		idField("detail.customerNo", &d.CustomerNo, routing), cardField("detail.cardNumber", &d.CardNumber, required),
		amountField("detail.amount", &d.Amount, required), idField("detail.status", &d.Status, required),
		timeField("detail.subscribeAt", &d.SubscribeAt, required),
	}
}

// fill: the amount has no currency in the push; it is shown with the
// decimals it was written with.
func (d *UPayRechargeApply) fill(ev *otpbot.Event) {
	ev.CardID, ev.CustomerNo, ev.Amount = d.CardID.String(), d.CustomerNo.String(), amount(d.Amount, "")
	ev.CardLast4 = otpbot.MaskCard(string(d.CardNumber))
	ev.Status = statusWord(d.Status, upayPaymentStatus)
	ev.OccurredAt, _ = d.SubscribeAt.Time()
}

// UPayVerification is the detail of NE_VERIFY (docs/upay.md#ne_verify): a
// verification code, or for type 3DS_CONFIRM_LINK a confirmation link, for
// the purpose named by Type (docs/upay.md#verification-types).
type UPayVerification struct {
	CardID     Scalar     `json:"cardId"`
	OrderNo    Scalar     `json:"orderNo"`
	Code       Secret     `json:"code"`
	CardNumber CardNumber `json:"cardNumber"`
	Type       Scalar     `json:"type"`
	CustomerNo Scalar     `json:"customerNo"`
}

func (d *UPayVerification) fields() []field {
	// The code of a 3DS_CONFIRM_LINK is a web address, not a short code.
	max := MaxIDBytes
	if otpbot.NormalizeName(d.Type.String()) == UPayVerify3DSConfirmLink {
		max = MaxLinkBytes
	}
	return []field{
		idField("detail.cardId", &d.CardID, routing), idField("detail.orderNo", &d.OrderNo, required),
		secretField("detail.code", &d.Code, essential, max), cardField("detail.cardNumber", &d.CardNumber, required),
		idField("detail.type", &d.Type, required), idField("detail.customerNo", &d.CustomerNo, routing),
	}
}

// The verification types (docs/upay.md#verification-types).
const (
	UPayVerify3DSConfirmLink = "3DS_CONFIRM_LINK"
	UPayVerify3DSCode        = "3DS_VERIFICATION_CODE"
	UPayVerifyCardActivation = "CARD_ACTIVATION"
	UPayVerifyLockUnlock     = "LOCK_UNLOCK_CARD"
	UPayVerifyPwdModify      = "TX_WDR_PWD_MODIFY"
	UPayVerifyPwdSet         = "TX_WDR_PWD_SET"
	UPayVerifyViewCard       = "CAT_CARD"
)

func (d *UPayVerification) fill(ev *otpbot.Event) {
	ev.CardID, ev.CustomerNo = d.CardID.String(), d.CustomerNo.String()
	ev.CardLast4 = otpbot.MaskCard(string(d.CardNumber))
	ev.Type = otpbot.NormalizeName(d.Type.String())
	if otpbot.NormalizeName(d.Type.String()) == UPayVerify3DSConfirmLink {
		ev.Link = string(d.Code) // shown as a button, not as a code to copy
	} else {
		ev.Code = string(d.Code)
	}
}

// UPayKYC is the detail of KS_KYC (docs/upay.md#ks_kyc): the final result of
// a KYC check.
type UPayKYC struct {
	CustomerNo   Scalar `json:"customerNo"`
	DocumentType Scalar `json:"documentType"` // 1 id card, 2 passport, 3 living
	Status       Scalar `json:"status"`       // 1 pass, 2 refuse (3 processing, 4 none: never pushed)
}

func (d *UPayKYC) fields() []field {
	return []field{
		idField("detail.customerNo", &d.CustomerNo, routing), idField("detail.documentType", &d.DocumentType, required),
		idField("detail.status", &d.Status, required),
	}
}

func (d *UPayKYC) fill(ev *otpbot.Event) {
	ev.CustomerNo, ev.Type = d.CustomerNo.String(), d.DocumentType.String()
	ev.Status = statusWord(d.Status, upayKYCStatus)
}

// UPayCardStatusChange is the detail of CSC_STATUS_CHANGE
// (docs/upay.md#csc_status_change).
type UPayCardStatusChange struct {
	CardID     Scalar     `json:"cardId"`
	CardNumber CardNumber `json:"cardNumber"`
	Status     Scalar     `json:"status"` // see upayCardStatus
	OrderNo    Scalar     `json:"orderNo"`
	CustomerNo Scalar     `json:"customerNo"`
}

func (d *UPayCardStatusChange) fields() []field {
	return []field{
		idField("detail.cardId", &d.CardID, routing), cardField("detail.cardNumber", &d.CardNumber, required),
		idField("detail.status", &d.Status, required), idField("detail.orderNo", &d.OrderNo, required),
		idField("detail.customerNo", &d.CustomerNo, routing),
	}
}

func (d *UPayCardStatusChange) fill(ev *otpbot.Event) {
	ev.CardID, ev.CustomerNo = d.CardID.String(), d.CustomerNo.String()
	ev.CardLast4 = otpbot.MaskCard(string(d.CardNumber))
	ev.Status = statusWord(d.Status, upayCardStatus)
}

// UPayLogistics is the detail of MF_MATERIAL_FLOW
// (docs/upay.md#mf_material_flow): a physical card
// was dispatched.
type UPayLogistics struct {
	DispatchTime         Scalar `json:"dispatchTime"`
	LogisticsOrderNo     Scalar `json:"logisticsOrderNo"`
	LogisticsCompanyName Scalar `json:"logisticsCompanyName"`
	RecipientAddress     Scalar `json:"recipientAddress"`
	LogisticsImage       Scalar `json:"logisticsImage"`
	CardID               Scalar `json:"cardId"`
}

func (d *UPayLogistics) fields() []field {
	return []field{
		// A String without a format: a text, read as a time when it is one.
		textField("detail.dispatchTime", &d.DispatchTime, required),
		idField("detail.logisticsOrderNo", &d.LogisticsOrderNo, required),
		textField("detail.logisticsCompanyName", &d.LogisticsCompanyName, required),
		textField("detail.recipientAddress", &d.RecipientAddress, required),
		linkField("detail.logisticsImage", &d.LogisticsImage, required),
		idField("detail.cardId", &d.CardID, routing),
	}
}

// fill keeps what a cardholder needs to follow the card (tracking number
// and company), never the address or the photo.
func (d *UPayLogistics) fill(ev *otpbot.Event) {
	ev.CardID = d.CardID.String()
	ev.Status = "dispatched"
	ev.Tracking, ev.Carrier = d.LogisticsOrderNo.String(), d.LogisticsCompanyName.String()
	// The document types dispatchTime as a String without a format
	// (docs/upay.md#mf_material_flow): a Unix time or a
	// "2006-01-02 15:04:05" is used when it is one, else the push
	// timestamp stands.
	ev.OccurredAt, _ = d.DispatchTime.Time()
}

// UPayCardActivated is the detail of CS_APPROVED (docs/upay.md#cs_approved):
// a card was
// activated.
type UPayCardActivated struct {
	OrderNo    Scalar     `json:"orderNo"`
	CardID     Scalar     `json:"cardId"`
	CardNumber CardNumber `json:"cardNumber"`
	CustomerNo Scalar     `json:"customerNo"`
	CardStatus Scalar     `json:"cardStatus"` // read with the card status codes (docs/upay.md#card-status)
}

func (d *UPayCardActivated) fields() []field {
	return []field{
		idField("detail.orderNo", &d.OrderNo, required), idField("detail.cardId", &d.CardID, routing),
		cardField("detail.cardNumber", &d.CardNumber, required), idField("detail.customerNo", &d.CustomerNo, routing),
		idField("detail.cardStatus", &d.CardStatus, required),
	}
}

func (d *UPayCardActivated) fill(ev *otpbot.Event) {
	ev.CardID, ev.CustomerNo = d.CardID.String(), d.CustomerNo.String()
	ev.CardLast4 = otpbot.MaskCard(string(d.CardNumber))
	ev.Status = statusWord(d.CardStatus, upayCardStatus)
}

// UPayCardEvent is the detail of CE_EVENT (card frozen / unfrozen,
// docs/upay.md#ce_event), which UPay names outside its push document
// without publishing its fields: the usual card fields are read when
// present and none is required.
type UPayCardEvent struct {
	CardID     Scalar     `json:"cardId"`
	CardNumber CardNumber `json:"cardNumber"`
	CustomerNo Scalar     `json:"customerNo"`
	OrderNo    Scalar     `json:"orderNo"`
	Type       Scalar     `json:"type"`
	Status     Scalar     `json:"status"` // kept as received: its codes are unpublished
	Reason     Scalar     `json:"reason"`
}

// fields: unpublished, so none is required (eventSpec.strict is false).
func (d *UPayCardEvent) fields() []field {
	return []field{
		idField("detail.cardId", &d.CardID, routing), cardField("detail.cardNumber", &d.CardNumber, optional),
		idField("detail.customerNo", &d.CustomerNo, routing), idField("detail.orderNo", &d.OrderNo, optional),
		idField("detail.type", &d.Type, optional), idField("detail.status", &d.Status, optional),
		textField("detail.reason", &d.Reason, optional),
	}
}

func (d *UPayCardEvent) fill(ev *otpbot.Event) {
	ev.CardID, ev.CustomerNo = d.CardID.String(), d.CustomerNo.String()
	ev.CardLast4 = otpbot.MaskCard(string(d.CardNumber))
	ev.Status, ev.Reason, ev.Type = d.Status.String(), d.Reason.String(), d.Type.String()
}

// upayUnknown reads the routing fields UPay details commonly carry, for an
// event name we do not know: it is recorded in history under its card or
// customer.
type upayUnknown struct {
	CardID     Scalar     `json:"cardId"`
	CardNumber CardNumber `json:"cardNumber"`
	CustomerNo Scalar     `json:"customerNo"`
}

func (d *upayUnknown) fields() []field {
	return []field{
		idField("detail.cardId", &d.CardID, routing), cardField("detail.cardNumber", &d.CardNumber, optional),
		idField("detail.customerNo", &d.CustomerNo, routing),
	}
}

func (d *upayUnknown) fill(ev *otpbot.Event) {
	ev.CardID, ev.CustomerNo = d.CardID.String(), d.CustomerNo.String()
	ev.CardLast4 = otpbot.MaskCard(string(d.CardNumber))
}
