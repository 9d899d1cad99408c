package webhooks

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/otpbot/otpbot"
	"github.com/prometheus/client_golang/prometheus"
)

// now is the server's clock in the HTTP tests.
var now = time.Date(2025, 8, 15, 9, 0, 0, 0, time.UTC)

// fakeIngester stands in for the store: it remembers what it ingested and
// answers like a store would (a repeated ID is a duplicate, a code expired
// at its receipt is expired), or fails with err when set.
type fakeIngester struct {
	mu     sync.Mutex
	events []otpbot.Event
	seen   map[string]bool
	err    error
}

func (f *fakeIngester) Ingest(_ context.Context, ev otpbot.Event) (otpbot.IngestResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return otpbot.IngestResult{}, f.err
	}
	f.events = append(f.events, ev)
	if f.seen == nil {
		f.seen = map[string]bool{}
	}
	if f.seen[ev.ID] {
		return otpbot.IngestResult{Duplicate: true}, nil
	}
	f.seen[ev.ID] = true
	switch ev.Kind {
	case otpbot.KindCode, otpbot.KindApproval:
		if ev.Expired(ev.ReceivedAt) {
			return otpbot.IngestResult{Outcome: otpbot.OutcomeExpired}, nil
		}
		if ev.CardID == "UNLINKED" {
			return otpbot.IngestResult{Outcome: otpbot.OutcomeUnrouted}, nil
		}
		return otpbot.IngestResult{Outcome: otpbot.OutcomeQueued, Targets: []otpbot.Target{{ChatID: 1}}}, nil
	case otpbot.KindRejected:
		return otpbot.IngestResult{Outcome: otpbot.OutcomeRejected}, nil
	}
	return otpbot.IngestResult{Outcome: otpbot.OutcomeRecorded}, nil
}

func (f *fakeIngester) ingested() []otpbot.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]otpbot.Event(nil), f.events...)
}

// eventLog records the events handed to a fake hook, safe for the
// server's goroutines.
type eventLog struct {
	mu     sync.Mutex
	events []otpbot.Event
}

func (l *eventLog) record(ev otpbot.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
}

func (l *eventLog) recorded() []otpbot.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]otpbot.Event(nil), l.events...)
}

// fakeReporter records what ops would be told: reports, and the degraded
// pushes (it implements DegradedReporter).
type fakeReporter struct {
	eventLog
	degraded eventLog
	fields   [][]string // of each Degraded call, under degraded.mu
}

func (f *fakeReporter) Report(_ context.Context, ev otpbot.Event, _ otpbot.IngestResult) {
	f.record(ev)
}

func (f *fakeReporter) Degraded(_ context.Context, ev otpbot.Event, fields []string) {
	f.degraded.record(ev)
	f.degraded.mu.Lock()
	defer f.degraded.mu.Unlock()
	f.fields = append(f.fields, fields)
}

func (f *fakeReporter) reported() []otpbot.Event { return f.recorded() }

// degradedCalls returns the fields of each Degraded call so far.
func (f *fakeReporter) degradedCalls() [][]string {
	f.degraded.mu.Lock()
	defer f.degraded.mu.Unlock()
	return append([][]string(nil), f.fields...)
}

// syncBuffer is a log sink the server's goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a real webhook server with a fake store behind it.
type env struct {
	srv  *httptest.Server
	ing  *fakeIngester
	rep  *fakeReporter
	reg  *prometheus.Registry
	logs *syncBuffer
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	return newEnvWith(t, cfg, nil)
}

// newEnvWith is newEnv whose handler Options are amended by opts (when not
// nil) before the server starts.
func newEnvWith(t *testing.T, cfg Config, opts func(*Options)) *env {
	t.Helper()
	e := &env{ing: &fakeIngester{}, rep: &fakeReporter{}, reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	if cfg.IDSecret == nil {
		cfg.IDSecret = testIDSecret
	}
	o := Options{
		Logger:     slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:        func() time.Time { return now },
		Registerer: e.reg,
		Reporter:   e.rep,
	}
	if opts != nil {
		opts(&o)
	}
	h, err := New(cfg, e.ing, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r := mux.NewRouter()
	h.Register(r)
	e.srv = httptest.NewServer(r)
	t.Cleanup(e.srv.Close)
	return e
}

// response is what the provider got back.
type response struct {
	status int
	body   string
}

// post sends a push the way a platform would, through a real client.
func (e *env) post(t *testing.T, path string, body []byte, header map[string]string) response {
	t.Helper()
	return e.do(t, http.MethodPost, path, body, header)
}

func (e *env) do(t *testing.T, method, path string, body []byte, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, string(b)}
}

// pushes reads otpbot_pushes_total for one label set (0 when absent).
func (e *env) pushes(t *testing.T, provider, event, outcome string) float64 {
	t.Helper()
	families, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"provider": provider, "event": event, "outcome": outcome}
	for _, f := range families {
		if f.GetName() != "otpbot_pushes_total" {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// ingestObservations counts otpbot_ingest_seconds samples of a provider.
func (e *env) ingestObservations(t *testing.T, provider string) uint64 {
	t.Helper()
	families, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "otpbot_ingest_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == provider {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}

// readTestdata reads a test body.
func readTestdata(provider, name string) ([]byte, error) {
	return os.ReadFile(filepath.Join("testdata", provider, name))
}

// withToken appends ?token= to a path.
func withToken(path, token string) string { return path + "?token=" + url.QueryEscape(token) }

// isUPayAck and isHyperCardAck say whether a response acknowledges a push.
func isUPayAck(r response) bool { return r.status == http.StatusOK && r.body == "SUCCESS" }

func isHyperCardAck(r response) bool {
	return r.status == http.StatusOK && r.body == `{"code":1,"msg":"ok","data":{}}`
}
