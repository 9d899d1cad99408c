package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// ErrorClass says what a caller should do about a failed Telegram call. The
// delivery loop switches on it, so no code outside this file matches
// Telegram's error texts.
type ErrorClass int

// The error classes.
const (
	// ClassRetryable: 5xx, timeouts, network errors, a broken response, or a
	// rejected token (a configuration problem an operator fixes; the work
	// must not be dropped meanwhile). Retry with backoff.
	ClassRetryable ErrorClass = iota + 1
	// ClassRateLimited: 429; wait APIError.RetryAfter before the next call
	// in the same scope.
	ClassRateLimited
	// ClassGone: Telegram refuses the target for good (chat not found, bot
	// blocked or kicked, user deactivated, topic closed or deleted). Stop
	// sending there and mark the link broken.
	ClassGone
	// ClassNotModified: an edit would not change the message. Success.
	ClassNotModified
	// ClassBadRequest: any other 4xx; retrying the same request will fail
	// the same way.
	ClassBadRequest
	// ClassMigrated: the group was upgraded to a supergroup,
	// APIError.MigrateTo; the same request to that chat works.
	ClassMigrated
)

// String names the class; it is also the outcome label of the call metric.
func (c ErrorClass) String() string {
	switch c {
	case ClassRetryable:
		return "retryable"
	case ClassRateLimited:
		return "rate_limited"
	case ClassGone:
		return "gone"
	case ClassNotModified:
		return "not_modified"
	case ClassBadRequest:
		return "bad_request"
	case ClassMigrated:
		return "migrated"
	}
	return "unknown"
}

// APIError is a failed Telegram call. Its text never contains the bot token:
// library and transport errors embed the request URL, and the token is in
// that URL, so every description is scrubbed before it is stored here.
type APIError struct {
	// Method is the Bot API method called ("sendMessage").
	Method string
	Class  ErrorClass
	// Code is Telegram's error_code (HTTP-like), 0 for transport errors.
	Code        int
	Description string
	// RetryAfter is Telegram's parameters.retry_after for a 429.
	RetryAfter time.Duration
	// MigrateTo is Telegram's parameters.migrate_to_chat_id: the
	// supergroup the group was upgraded to (ClassMigrated).
	MigrateTo int64
	// cause is kept only when it is a context error, so that
	// errors.Is(err, context.Canceled) works; raw transport errors are not
	// kept because they print the URL (and so the token).
	cause error
}

// Error describes the failure without the token.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("telegram ")
	if e.Method != "" {
		b.WriteString(e.Method)
		b.WriteString(": ")
	}
	if e.Code != 0 {
		fmt.Fprintf(&b, "%d ", e.Code)
	}
	b.WriteString(e.Description)
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	b.WriteString(" [")
	b.WriteString(e.Class.String())
	b.WriteString("]")
	return b.String()
}

// Unwrap exposes a context error (cancellation, deadline) behind the failure.
func (e *APIError) Unwrap() error { return e.cause }

// ClassOf returns the class of a Telegram call error: the APIError's class,
// ClassRetryable for any other non-nil error, 0 for nil.
func ClassOf(err error) ErrorClass {
	if err == nil {
		return 0
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Class
	}
	return ClassRetryable
}

// RetryAfterOf returns the wait Telegram asked for, 0 when it asked none.
func RetryAfterOf(err error) time.Duration {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.RetryAfter
	}
	return 0
}

// goneMarkers are the descriptions (lower-cased) of 400s that mean the
// target itself is unusable, as opposed to a malformed request.
var goneMarkers = []string{
	"chat not found",
	"user is deactivated",
	"topic_closed",
	"topic_deleted",
	"message thread not found",
	"bot was blocked",
	"bot was kicked",
	"bot is not a member",
	"chat_write_forbidden",
	"have no rights to send",
	"not enough rights to send",
	"group chat was upgraded",
	"peer_id_invalid",
}

// classifyAPI maps Telegram's error_code and description to a class.
func classifyAPI(code int, description string) ErrorClass {
	d := strings.ToLower(description)
	switch {
	case code == 429:
		return ClassRateLimited
	case code >= 500 || code == 0:
		return ClassRetryable
	case strings.Contains(d, "message is not modified"):
		return ClassNotModified
	case code == 403:
		// Every 403 of the Bot API means "you may not write there":
		// blocked, kicked, deactivated, can't initiate a conversation.
		return ClassGone
	case code == 401 || code == 404:
		// A rejected token (401, or 404 for a malformed one) is not the
		// target's fault; keep the work until an operator fixes it.
		return ClassRetryable
	case code == 409:
		// Conflict: another poller or an active webhook; transient.
		return ClassRetryable
	}
	for _, m := range goneMarkers {
		if strings.Contains(d, m) {
			return ClassGone
		}
	}
	return ClassBadRequest
}

// toAPIError turns what the library returned into an *APIError with the
// token scrubbed. ctx is the call's context, so a cancelled call reports
// context.Canceled rather than a network error.
func toAPIError(ctx context.Context, method, token string, err error) *APIError {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	var te *tgbotapi.Error
	if errors.As(err, &te) {
		e := &APIError{
			Method:      method,
			Code:        te.Code,
			Description: scrub(te.Message, token),
			Class:       classifyAPI(te.Code, te.Message),
		}
		if e.Class == ClassRateLimited {
			e.RetryAfter = time.Duration(te.RetryAfter) * time.Second
			if e.RetryAfter <= 0 {
				e.RetryAfter = time.Second
			}
		}
		if te.MigrateToChatID != 0 {
			// Without the new id the group is simply gone (goneMarkers).
			e.Class, e.MigrateTo = ClassMigrated, te.MigrateToChatID
		}
		return e
	}
	e := &APIError{Method: method, Class: ClassRetryable, Description: scrub(transportText(err), token)}
	if cerr := ctx.Err(); cerr != nil {
		e.cause = cerr
		e.Description = cerr.Error()
	} else if errors.Is(err, context.DeadlineExceeded) {
		e.cause = context.DeadlineExceeded
	}
	return e
}

// transportText describes a transport or decoding failure without the URL
// where possible: *url.Error prints "Post \"URL\": cause", and only the
// cause is useful.
func transportText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	var se *json.SyntaxError
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout: " + err.Error()
	case errors.As(err, &se):
		return "malformed response: " + err.Error()
	}
	return err.Error()
}

// scrub removes every spelling of the token from s.
func scrub(s, token string) string {
	if token == "" {
		return s
	}
	for _, t := range []string{token, url.PathEscape(token), url.QueryEscape(token)} {
		s = strings.ReplaceAll(s, t, "<token>")
	}
	return s
}
