package bottest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// Observation is one Bot API call as a Standalone server saw it, handed to
// the observer set with Observe once the call was answered.
type Observation struct {
	Method string
	// ChatID is the call's chat_id (0 when it has none).
	ChatID int64
	// Text is the call's text parameter (sendMessage, editMessageText).
	Text string
	// Received is when the request arrived, before the server read it:
	// when the bot sent it.
	Received time.Time
	// Acted is when the fake acted on it (a sent message exists from
	// then): Received plus half the round trip (WithRoundTrip) and any
	// hold. Zero when it was never acted on.
	Acted time.Time
	// Status is the HTTP status answered (200, 429, 400...), 0 when no
	// answer went back (a dropped connection, or a client that gave up).
	Status int
}

// Standalone is the fake Bot API run outside a test (a load tool, a demo):
// the same Server, with the same options (WithRoundTrip,
// WithTelegramLimits...) and setters, plus an observer of every call.
// Close it when done.
type Standalone struct {
	*Server
	observe atomic.Pointer[func(Observation)]
}

// standaloneTB lets New run without a test: New only asks the test to
// mark helpers and to close the server at the end, and Start's caller
// closes it instead. Any other method panics (nil embedded TB), which
// Start reports as an error.
type standaloneTB struct{ testing.TB }

func (standaloneTB) Helper()        {}
func (standaloneTB) Cleanup(func()) {}

// Start starts a fake Bot API outside a test, on a loopback port.
func Start(opts ...Option) (st *Standalone, err error) {
	defer func() {
		// httptest panics when it cannot listen.
		if r := recover(); r != nil {
			st, err = nil, fmt.Errorf("bottest: start: %v", r)
		}
	}()
	s := New(standaloneTB{}, opts...)
	st = &Standalone{Server: s}
	// Serve through the observer: swap the test server New started (no
	// client knows its address yet) for one that wraps the same handler.
	s.srv.Close()
	s.srv = httptest.NewServer(http.HandlerFunc(st.serve))
	return st, nil
}

// Observe sets fn to be called after every call is answered (nil stops
// observing). fn runs on the request's goroutine and must be quick and
// safe for concurrent use.
func (st *Standalone) Observe(fn func(Observation)) {
	if fn == nil {
		st.observe.Store(nil)
		return
	}
	st.observe.Store(&fn)
}

// serve lets the Server answer the call and tells the observer what it
// did.
func (st *Standalone) serve(w http.ResponseWriter, r *http.Request) {
	fn := st.observe.Load()
	_, method, _ := parsePath(r.URL.Path)
	if fn == nil || method == "getUpdates" {
		st.Server.serve(w, r)
		return
	}
	obs := Observation{Method: method, Received: time.Now()}
	var did observed
	rec := &statusRecorder{ResponseWriter: w}
	st.Server.serveCall(rec, r, &did)
	obs.Status, obs.Acted = rec.status, did.acted
	obs.Text = did.params["text"]
	_, _ = fmt.Sscan(did.params["chat_id"], &obs.ChatID)
	(*fn)(obs)
}

// statusRecorder remembers the status written (0 for none); it can still
// be hijacked, which the server does to simulate a dropped connection.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("bottest: connection cannot be hijacked")
	}
	r.status = 0 // no answer at all
	return h.Hijack()
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
