package telegram

// The callback_data of the buttons otpbot puts under its messages: "name"
// or "name:arg" (at most 64 bytes, Telegram's limit); the name picks the
// handler of a press.
const (
	// CallbackHide is the "Used it" button under a live code: pressing it
	// hides the code in that chat at once.
	CallbackHide = "hide"
	// CallbackApprove and CallbackDecline are the buttons under a
	// HyperCard approval request.
	CallbackApprove = "approve"
	CallbackDecline = "decline"
)
