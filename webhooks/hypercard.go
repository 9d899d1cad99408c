package webhooks

import "github.com/otpbot/otpbot"

// HyperCard's common push event (the notify_type pushes, docs/hypercard.md)
// as Go types. Pushes are flat JSON objects told apart by notify_type; every
// field is a Scalar (or CardNumber / Secret) because HyperCard sends numbers
// as strings in its own examples; fields HyperCard adds later are ignored.

// HyperCard notify types: all nine of HyperCard's push document
// (docs/hypercard.md#notify-types).
const (
	HyperCardOpenCardType     = "OPEN_CARD"
	HyperCardRechargeType     = "RECHARGE"
	HyperCardOperationType    = "OPERATION"
	HyperCardConsumeType      = "CONSUME"
	HyperCardBuyCoinType      = "BUY_COIN"
	HyperCardCancelCardType   = "CANCEL_CARD"
	HyperCardAuth3DSType      = "AUTH_3DS"
	HyperCardOptCodeType      = "OPT_CODE"
	HyperCardConfigChangeType = "CARD_CONFIG_CHANGE"
)

// HyperCardPush is what every HyperCard push has: its notify type.
type HyperCardPush struct {
	NotifyType Scalar `json:"notify_type"`
}

// HyperCardOpenCard is OPEN_CARD (docs/hypercard.md#open_card): the result
// of a card application. Its contact fields are read so that every field
// HyperCard documents is checked, but never leave the parser.
type HyperCardOpenCard struct {
	CardTypeID Scalar `json:"card_type_id"`
	Email      Scalar `json:"email"`
	Mobile     Scalar `json:"mobile"`
	MobileCode Scalar `json:"mobile_code"`
	Result     Scalar `json:"result"` // 1 success, 2 failure
	Remark     Scalar `json:"remark"`
	MCTradeNo  Scalar `json:"mc_trade_no"`
}

func (d *HyperCardOpenCard) fields() []field {
	return []field{
		idField("card_type_id", &d.CardTypeID, required), textField("email", &d.Email, required),
		idField("mobile", &d.Mobile, required), idField("mobile_code", &d.MobileCode, required),
		idField("result", &d.Result, required), textField("remark", &d.Remark, optional),
		idField("mc_trade_no", &d.MCTradeNo, optional),
	}
}

// fill: a failed application names no card, so no cardholder chat hears
// of it; it carries an Alert for ops.
func (d *HyperCardOpenCard) fill(ev *otpbot.Event) {
	ev.Status = statusWord(d.Result, hyperCardResult)
	ev.CardType, ev.Remark = d.CardTypeID.String(), d.Remark.String()
	if n, ok := d.Result.Int(); ok && n == 2 {
		ev.Alert = "card application failed"
	}
}

// hasUniqueID: an application's mc_trade_no, when it has one.
func (d *HyperCardOpenCard) hasUniqueID() bool { return d.MCTradeNo != "" }

// HyperCardRecharge is RECHARGE (docs/hypercard.md#recharge): the result of
// a card recharge.
type HyperCardRecharge struct {
	CardID    Scalar `json:"card_id"`
	MCTradeNo Scalar `json:"mc_trade_no"`
	Result    Scalar `json:"result"` // 1 success, 2 failure
	Remark    Scalar `json:"remark"`
}

func (d *HyperCardRecharge) fields() []field {
	return []field{
		idField("card_id", &d.CardID, routing), idField("mc_trade_no", &d.MCTradeNo, required),
		idField("result", &d.Result, required), textField("remark", &d.Remark, optional),
	}
}

func (d *HyperCardRecharge) fill(ev *otpbot.Event) {
	ev.CardID = d.CardID.String()
	ev.Status = statusWord(d.Result, hyperCardResult)
	ev.Remark = d.Remark.String()
}

// hasUniqueID: the recharge's mc_trade_no.
func (d *HyperCardRecharge) hasUniqueID() bool { return d.MCTradeNo != "" }

// HyperCardOperation is OPERATION (docs/hypercard.md#operation): the result
// of a card operation request.
type HyperCardOperation struct {
	CardID        Scalar `json:"card_id"`
	RequestNumber Scalar `json:"request_number"`
	// OperateStatus: 0 in operation, 1 third party success, 2 fail,
	// 98 pending payment, 99 waiting for third party.
	OperateStatus Scalar `json:"operate_status"`
}

func (d *HyperCardOperation) fields() []field {
	return []field{
		idField("card_id", &d.CardID, routing), idField("request_number", &d.RequestNumber, required),
		idField("operate_status", &d.OperateStatus, required),
	}
}

func (d *HyperCardOperation) fill(ev *otpbot.Event) {
	ev.CardID = d.CardID.String()
	ev.Status = statusWord(d.OperateStatus, hyperCardOperateStatus)
}

// hasUniqueID: the operation's request_number.
func (d *HyperCardOperation) hasUniqueID() bool { return d.RequestNumber != "" }

// HyperCardConsume is CONSUME (docs/hypercard.md#consume): a new card
// transaction exists (without its amount; the merchant looks it up).
type HyperCardConsume struct {
	CardID Scalar `json:"card_id"`
}

func (d *HyperCardConsume) fields() []field { return []field{idField("card_id", &d.CardID, routing)} }

func (d *HyperCardConsume) fill(ev *otpbot.Event) { ev.CardID = d.CardID.String() }

// HyperCardBuyCoin is BUY_COIN (docs/hypercard.md#buy_coin): the result of a
// crypto coin purchase.
type HyperCardBuyCoin struct {
	CardID    Scalar `json:"card_id"`
	MCTradeNo Scalar `json:"mc_trade_no"`
	Status    Scalar `json:"status"` // 0 pending, 1 success, 2 fail
	TxID      Scalar `json:"tx_id"`
	Reason    Scalar `json:"reason"`
}

func (d *HyperCardBuyCoin) fields() []field {
	return []field{
		idField("card_id", &d.CardID, routing), idField("mc_trade_no", &d.MCTradeNo, required),
		idField("status", &d.Status, required), idField("tx_id", &d.TxID, required),
		textField("reason", &d.Reason, optional),
	}
}

func (d *HyperCardBuyCoin) fill(ev *otpbot.Event) {
	ev.CardID = d.CardID.String()
	ev.Status = statusWord(d.Status, hyperCardTxStatus)
	ev.Reason = d.Reason.String()
}

// hasUniqueID: the purchase's tx_id.
func (d *HyperCardBuyCoin) hasUniqueID() bool { return d.TxID != "" }

// HyperCardCancelCard is CANCEL_CARD (docs/hypercard.md#cancel_card): a card
// was cancelled and its balance refunded.
type HyperCardCancelCard struct {
	CardID       Scalar `json:"card_id"`
	RefundAmount Scalar `json:"refund_amount"`
}

func (d *HyperCardCancelCard) fields() []field {
	return []field{idField("card_id", &d.CardID, routing), amountField("refund_amount", &d.RefundAmount, required)}
}

// fill: the refund has no currency in the push; its amount is shown with
// the decimals it was written with.
func (d *HyperCardCancelCard) fill(ev *otpbot.Event) {
	ev.CardID, ev.Amount = d.CardID.String(), amount(d.RefundAmount, "")
	ev.Status = "cancelled"
}

// HyperCardAuth3DS is AUTH_3DS (docs/hypercard.md#auth_3ds): a purchase
// waiting for the cardholder's approval until ExpiredTime. A later push with the same AuthID carries a
// changed AuthResult.
type HyperCardAuth3DS struct {
	AuthID                      Scalar     `json:"auth_id"`
	CardID                      Scalar     `json:"card_id"`
	CardNo                      CardNumber `json:"card_no"`
	TxnCurrency                 Scalar     `json:"txn_currency"`
	TxnAmount                   Scalar     `json:"txn_amount"`
	CardAcceptorMerchantName    Scalar     `json:"card_acceptor_merchant_name"`
	CardAcceptorLocationCountry Scalar     `json:"card_acceptor_location_country"`
	AuthResult                  Scalar     `json:"auth_result"` // codes unpublished (docs/hypercard.md#auth_result)
	ExpiredTime                 Scalar     `json:"expired_time"`
	CreatedTime                 Scalar     `json:"created_Time"`
	UpdatedTime                 Scalar     `json:"updated_Time"`
	AppCardID                   Scalar     `json:"app_card_id"`
	App3DSAuthTransactionID     Scalar     `json:"app3ds_auth_transaction_id"`
}

func (d *HyperCardAuth3DS) fields() []field {
	// The document's Required cell for card_id reads "string"
	// (docs/hypercard.md#auth_3ds); it is taken as required because the
	// request cannot be routed without it.
	return []field{
		idField("auth_id", &d.AuthID, essential), idField("card_id", &d.CardID, routing),
		cardField("card_no", &d.CardNo, required),
		currencyField("txn_currency", &d.TxnCurrency, required), amountField("txn_amount", &d.TxnAmount, required),
		textField("card_acceptor_merchant_name", &d.CardAcceptorMerchantName, required),
		textField("card_acceptor_location_country", &d.CardAcceptorLocationCountry, required),
		intField("auth_result", &d.AuthResult, required), timeField("expired_time", &d.ExpiredTime, required),
		timeField("created_Time", &d.CreatedTime, required), timeField("updated_Time", &d.UpdatedTime, required),
		idField("app_card_id", &d.AppCardID, optional),
		idField("app3ds_auth_transaction_id", &d.App3DSAuthTransactionID, optional),
	}
}

func (d *HyperCardAuth3DS) fill(ev *otpbot.Event) {
	ev.CardID = d.CardID.String()
	ev.CardLast4 = otpbot.MaskCard(string(d.CardNo))
	ev.Amount, ev.Currency = amount(d.TxnAmount, d.TxnCurrency), currency(d.TxnCurrency)
	ev.Merchant, ev.Country = d.CardAcceptorMerchantName.String(), d.CardAcceptorLocationCountry.String()
	ev.AuthID = d.AuthID.String()
	if n, ok := d.AuthResult.Int(); ok {
		ev.AuthResult = int(n)
	}
	ev.OccurredAt, _ = d.CreatedTime.Time()
	ev.ExpiresAt, _ = d.ExpiredTime.Time()
	if d.AuthID != "" {
		// Every push about one request shares a message; the ID (a keyed
		// body hash) still differs when auth_result changes, so an update is
		// not taken for a repeat.
		ev.Group = "hypercard:" + HyperCardAuth3DSType + ":" + d.AuthID.String()
	}
}

// HyperCardOptCode is OPT_CODE (docs/hypercard.md#opt_code): a one-time code
// for the card.
type HyperCardOptCode struct {
	CardID     Scalar `json:"card_id"`
	Code       Secret `json:"code"`
	CreateTime Scalar `json:"create_time"`
}

func (d *HyperCardOptCode) fields() []field {
	return []field{
		idField("card_id", &d.CardID, routing), secretField("code", &d.Code, essential, MaxIDBytes),
		timeField("create_time", &d.CreateTime, required),
	}
}

func (d *HyperCardOptCode) fill(ev *otpbot.Event) {
	ev.CardID = d.CardID.String()
	ev.Code = string(d.Code)
	ev.OccurredAt, _ = d.CreateTime.Time()
}

// HyperCardConfigChange is CARD_CONFIG_CHANGE
// (docs/hypercard.md#card_config_change): a card type's configuration
// changed.
type HyperCardConfigChange struct {
	CardTypeID Scalar `json:"card_type_id"`
	ModifyTime Scalar `json:"modify_time"`
}

func (d *HyperCardConfigChange) fields() []field {
	return []field{idField("card_type_id", &d.CardTypeID, required), timeField("modify_time", &d.ModifyTime, required)}
}

func (d *HyperCardConfigChange) fill(ev *otpbot.Event) {
	ev.CardType = d.CardTypeID.String()
	ev.OccurredAt, _ = d.ModifyTime.Time()
}

// hyperCardUnknown reads the routing fields of a notify type we do not know,
// so it is recorded in history under its card.
type hyperCardUnknown struct {
	CardID Scalar     `json:"card_id"`
	CardNo CardNumber `json:"card_no"`
}

func (d *hyperCardUnknown) fields() []field {
	return []field{idField("card_id", &d.CardID, routing), cardField("card_no", &d.CardNo, optional)}
}

func (d *hyperCardUnknown) fill(ev *otpbot.Event) {
	ev.CardID = d.CardID.String()
	ev.CardLast4 = otpbot.MaskCard(string(d.CardNo))
}

// hyperCardEvent returns the spec of a known (normalised) notify type; ok is
// false for an unknown one.
func hyperCardEvent(name string) (spec eventSpec, ok bool) {
	switch name {
	case HyperCardOpenCardType:
		return eventSpec{new(HyperCardOpenCard), otpbot.KindInfo, true}, true
	case HyperCardRechargeType:
		return eventSpec{new(HyperCardRecharge), otpbot.KindInfo, true}, true
	case HyperCardOperationType:
		return eventSpec{new(HyperCardOperation), otpbot.KindInfo, true}, true
	case HyperCardConsumeType:
		return eventSpec{new(HyperCardConsume), otpbot.KindInfo, true}, true
	case HyperCardBuyCoinType:
		return eventSpec{new(HyperCardBuyCoin), otpbot.KindInfo, true}, true
	case HyperCardCancelCardType:
		return eventSpec{new(HyperCardCancelCard), otpbot.KindInfo, true}, true
	case HyperCardAuth3DSType:
		return eventSpec{new(HyperCardAuth3DS), otpbot.KindApproval, true}, true
	case HyperCardOptCodeType:
		return eventSpec{new(HyperCardOptCode), otpbot.KindCode, true}, true
	case HyperCardConfigChangeType:
		return eventSpec{new(HyperCardConfigChange), otpbot.KindInfo, true}, true
	}
	return eventSpec{new(hyperCardUnknown), otpbot.KindUnknown, false}, false
}

// hyperCardResult reads OPEN_CARD's and RECHARGE's result.
func hyperCardResult(n int64) string {
	switch n {
	case 1:
		return "successful"
	case 2:
		return "failed"
	}
	return ""
}

// hyperCardOperateStatus reads OPERATION's operate_status.
func hyperCardOperateStatus(n int64) string {
	switch n {
	case 0:
		return "in operation"
	case 1:
		return "successful"
	case 2:
		return "failed"
	case 98:
		return "pending payment"
	case 99:
		return "waiting for third party"
	}
	return ""
}

// hyperCardTxStatus reads BUY_COIN's status.
func hyperCardTxStatus(n int64) string {
	switch n {
	case 0:
		return "pending"
	case 1:
		return "successful"
	case 2:
		return "failed"
	}
	return ""
}
