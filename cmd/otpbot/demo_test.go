package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// demoLineRE is the one line otpbot demo prints.
var demoLineRE = regexp.MustCompile(`^otpbot demo: open (http://127\.0\.0\.1:\d+)/demo\n$`)

// demoRun is `otpbot demo` run in-process through run().
type demoRun struct {
	t       *testing.T
	cancel  context.CancelFunc
	done    chan error
	stdout  *syncBuffer
	stderr  *syncBuffer
	tmp     string // the TMPDIR it was given
	url     string
	stopped bool
}

// startDemo runs `otpbot demo -listen 127.0.0.1:0` with its own TMPDIR
// and waits for its line.
func startDemo(t *testing.T) *demoRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &demoRun{t: t, cancel: cancel, done: make(chan error, 1), stdout: &syncBuffer{}, stderr: &syncBuffer{}, tmp: t.TempDir()}
	env := map[string]string{"TMPDIR": d.tmp}
	go func() {
		d.done <- run(ctx, []string{"otpbot", "demo", "-listen", "127.0.0.1:0"}, envMap(env), d.stdout, d.stderr)
	}()
	t.Cleanup(func() {
		if !d.stopped {
			_ = d.stop()
		}
		if t.Failed() {
			t.Logf("demo stderr:\n%s", d.stderr)
		}
	})
	waitUntil(t, "the demo's line", func() bool {
		select {
		case err := <-d.done:
			d.stopped = true
			t.Fatalf("demo exited at start: %v\n%s", err, d.stderr)
		default:
		}
		return strings.HasSuffix(d.stdout.String(), "\n")
	})
	m := demoLineRE.FindStringSubmatch(d.stdout.String())
	if m == nil {
		t.Fatalf("demo printed %q; want one line %q", d.stdout.String(), "otpbot demo: open http://127.0.0.1:PORT/demo")
	}
	d.url = m[1]
	return d
}

// stop cancels the demo (what SIGINT does through main) and returns
// run's error.
func (d *demoRun) stop() error {
	d.t.Helper()
	d.stopped = true
	d.cancel()
	select {
	case err := <-d.done:
		return err
	case <-time.After(30 * time.Second):
		d.t.Fatalf("demo did not stop within 30s\n%s", d.stderr)
		return nil
	}
}

// post sends a JSON request to the page's API and decodes the answer.
func (d *demoRun) post(t *testing.T, path string, body, answer any) int {
	t.Helper()
	data, _ := json.Marshal(body)
	resp, err := http.Post(d.url+"/demo/api/"+path, "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if answer != nil {
		if err := json.Unmarshal(raw, answer); err != nil {
			t.Fatalf("POST %s answered %d %q: %v", path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

// sseEvent is one server-sent event.
type sseEvent struct {
	name string
	data []byte
}

// demoMessage is a "message" event's data.
type demoMessage struct {
	Chat    int64  `json:"chat"`
	ID      int    `json:"id"`
	From    int64  `json:"from"`
	HTML    string `json:"html"`
	Edited  bool   `json:"edited"`
	Buttons [][]struct {
		Text string `json:"text"`
		Data string `json:"data"`
		Copy string `json:"copy"`
	} `json:"buttons"`
}

// button returns the callback data of the button whose text contains
// text, "" when there is none.
func (m demoMessage) button(text string) string {
	for _, row := range m.Buttons {
		for _, b := range row {
			if strings.Contains(b.Text, text) {
				return b.Data
			}
		}
	}
	return ""
}

// eventStream is an open /demo/events.
type eventStream struct {
	events chan sseEvent
}

func (d *demoRun) openEvents() *eventStream {
	d.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.url+"/demo/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		d.t.Fatalf("/demo/events answered %d %s", resp.StatusCode, ct)
	}
	s := &eventStream{events: make(chan sseEvent, 256)}
	go func() {
		defer close(s.events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data = []byte(line[len("data: "):])
			}
		}
	}()
	return s
}

// next returns the next event named name whose data satisfies match,
// skipping others; it fails after waitDeadline or when the stream ends.
func (s *eventStream) next(t *testing.T, name, what string, match func([]byte) bool) []byte {
	t.Helper()
	return s.nextEvent(t, what, func(ev sseEvent) bool { return ev.name == name && match(ev.data) }).data
}

// nextEvent returns the next event satisfying match.
func (s *eventStream) nextEvent(t *testing.T, what string, match func(sseEvent) bool) sseEvent {
	t.Helper()
	deadline := time.NewTimer(waitDeadline)
	defer deadline.Stop()
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("the event stream ended while waiting for %s", what)
			}
			if match(ev) {
				return ev
			}
		case <-deadline.C:
			t.Fatalf("no event with %s within %s", what, waitDeadline)
		}
	}
}

// pressUntil presses a button of m as user until m changes as want does.
// A press that reaches the bot before it recorded the message it just sent
// (a few milliseconds after the fake shows it: no person is that quick) is
// answered "no longer active"; it is pressed again then.
func (d *demoRun) pressUntil(t *testing.T, events *eventStream, user int64, m demoMessage, data, what string, want func(demoMessage) bool) demoMessage {
	t.Helper()
	for range 5 {
		if st := d.post(t, "press", map[string]any{"chat": m.Chat, "user": user, "message": m.ID, "data": data}, nil); st != http.StatusOK {
			t.Fatalf("press answered %d", st)
		}
		var got demoMessage
		ev := events.nextEvent(t, what, func(ev sseEvent) bool {
			if ev.name == "toast" {
				return bytes.Contains(ev.data, []byte("no longer active"))
			}
			var v demoMessage
			if ev.name != "message" || json.Unmarshal(ev.data, &v) != nil || v.Chat != m.Chat || v.ID != m.ID || !want(v) {
				return false
			}
			got = v
			return true
		})
		if ev.name == "message" {
			return got
		}
	}
	t.Fatalf("%s: every press was answered \"no longer active\"", what)
	return demoMessage{}
}

// message waits for a "message" event in chat satisfying match.
func (s *eventStream) message(t *testing.T, chat int64, what string, match func(demoMessage) bool) demoMessage {
	t.Helper()
	var m demoMessage
	s.next(t, "message", what, func(data []byte) bool {
		var v demoMessage
		if json.Unmarshal(data, &v) != nil || v.Chat != chat || !match(v) {
			return false
		}
		m = v
		return true
	})
	return m
}

// codeOf is the code in a code message's HTML.
var codeRE = regexp.MustCompile(`<code>(\d{6})</code>`)

// TestDemo runs `otpbot demo` and uses its page as a reader would: the
// page and its event stream, a code arriving on the first visit, a sample
// push from the panel arriving in its chat, "Used it — hide", an approval
// answered at the fake HyperCard API, every sample, a command; then a stop
// removes every file it created.
func TestDemo(t *testing.T) {
	d := startDemo(t)

	status, page := get(t, d.url+"/demo")
	if status != http.StatusOK || !strings.Contains(page, "<title>otpbot demo</title>") || !strings.Contains(page, "/demo/static/page.js") {
		t.Fatalf("/demo answered %d:\n%s", status, page)
	}
	if status, js := get(t, d.url+"/demo/static/page.js"); status != http.StatusOK || !strings.Contains(js, "EventSource") {
		t.Errorf("/demo/static/page.js answered %d", status)
	}
	checkDemoFiles(t, d.tmp)

	events := d.openEvents()
	events.next(t, "reset", "the chat list", func(data []byte) bool {
		return bytes.Contains(data, []byte(`"title":"Alice"`)) && bytes.Contains(data, []byte(`"title":"Travel team"`))
	})
	// The first visit brings a code, without a click.
	welcome := events.message(t, demoAlice, "the welcome code", func(m demoMessage) bool { return codeRE.MatchString(m.HTML) })
	if !strings.Contains(welcome.HTML, "3-D Secure code") || !strings.Contains(welcome.HTML, "expires in") {
		t.Errorf("welcome message:\n%s", welcome.HTML)
	}

	t.Run("a sample push arrives and Used it hides it", func(t *testing.T) { demoPushAndHide(t, d, events) })
	t.Run("an approval is answered at HyperCard", func(t *testing.T) { demoApprove(t, d, events) })
	t.Run("every sample is acknowledged", func(t *testing.T) { demoEverySample(t, d, events) })
	t.Run("a command gets its reply", func(t *testing.T) { demoCommand(t, d, events) })

	if err := d.stop(); err != nil {
		t.Fatalf("run returned %v after a stop; want nil", err)
	}
	if left, _ := os.ReadDir(d.tmp); len(left) != 0 {
		t.Errorf("the demo left %v in its TMPDIR", left)
	}
	if !demoLineRE.MatchString(d.stdout.String()) {
		t.Errorf("stdout is %q; want only the demo's line", d.stdout.String())
	}
}

// demoPushAndHide: an OPT_CODE from the panel is acknowledged by the real
// HyperCard endpoint and shows in the group its card is linked to; Bob's
// "Used it — hide" edits the code out.
func demoPushAndHide(t *testing.T, d *demoRun, events *eventStream) {
	var res struct {
		Status int    `json:"status"`
		Answer string `json:"answer"`
	}
	if st := d.post(t, "push", map[string]string{"sample": "hypercard/opt_code", "card": "C2"}, &res); st != http.StatusOK {
		t.Fatalf("push answered %d", st)
	}
	if res.Status != http.StatusOK || !strings.Contains(res.Answer, `"code":1`) {
		t.Errorf("the HyperCard webhook answered %d %q; want 200 and code 1", res.Status, res.Answer)
	}
	m := events.message(t, demoTeam, "the one-time code", func(m demoMessage) bool {
		return strings.Contains(m.HTML, "One-time code") && codeRE.MatchString(m.HTML)
	})
	code := codeRE.FindStringSubmatch(m.HTML)[1]
	hide := m.button("Used it")
	if hide == "" {
		t.Fatalf("the code message has no Used it button: %+v", m.Buttons)
	}
	hidden := d.pressUntil(t, events, demoBob, m, hide, "the code hidden", func(v demoMessage) bool { return strings.Contains(v.HTML, "code hidden") })
	if strings.Contains(hidden.HTML, code) || len(hidden.Buttons) != 0 || !hidden.Edited {
		t.Errorf("after Used it the message still shows the code or buttons: %+v", hidden)
	}
}

// demoApprove: an AUTH_3DS shows Approve; Approve, then Confirm, is
// answered at the fake HyperCard API and the message says who approved.
func demoApprove(t *testing.T, d *demoRun, events *eventStream) {
	d.post(t, "push", map[string]string{"sample": "hypercard/auth_3ds_pending", "card": "C1"}, nil)
	m := events.message(t, demoAlice, "the approval request", func(m demoMessage) bool { return m.button("Approve") != "" })
	c := d.pressUntil(t, events, demoAlice, m, m.button("Approve"), "the confirmation", func(v demoMessage) bool { return v.button("Confirm") != "" })
	done := d.pressUntil(t, events, demoAlice, c, c.button("Confirm"), "the decision", func(v demoMessage) bool { return strings.Contains(v.HTML, "Approved by @alice") })
	if len(done.Buttons) != 0 {
		t.Errorf("the decided request still has buttons: %+v", done.Buttons)
	}
}

// demoEverySample: every sample of the panel gets its platform's
// acknowledgement; a code for a card linked nowhere reaches the ops chat.
func demoEverySample(t *testing.T, d *demoRun, events *eventStream) {
	for _, sample := range pageSamples() {
		var res struct {
			Status int    `json:"status"`
			Answer string `json:"answer"`
		}
		d.post(t, "push", map[string]string{"sample": sample.ID, "card": "C9"}, &res)
		ack := "SUCCESS"
		if sample.Provider == "hypercard" {
			ack = `{"code":1,"msg":"ok","data":{}}`
		}
		if res.Status != http.StatusOK || res.Answer != ack {
			t.Errorf("%s answered %d %q; want 200 %s", sample.ID, res.Status, res.Answer, ack)
		}
	}
	events.message(t, demoOps, "an ops report", func(m demoMessage) bool { return m.From == 0 })
}

// demoCommand: a command written as Alice shows, and the bot answers it;
// Bob cannot write in Alice's private chat.
func demoCommand(t *testing.T, d *demoRun, events *eventStream) {
	var sent struct{ ID int }
	if st := d.post(t, "send", map[string]any{"chat": demoAlice, "user": demoAlice, "text": "/links"}, &sent); st != http.StatusOK {
		t.Fatalf("send answered %d", st)
	}
	events.message(t, demoAlice, "the user's message", func(m demoMessage) bool { return m.ID == sent.ID && m.From == demoAlice })
	events.message(t, demoAlice, "the reply", func(m demoMessage) bool { return m.From == 0 && strings.Contains(m.HTML, "C1") && m.ID > sent.ID })
	if st := d.post(t, "send", map[string]any{"chat": demoAlice, "user": demoBob, "text": "/links"}, nil); st != http.StatusForbidden {
		t.Errorf("Bob writing in Alice's private chat answered %d; want 403", st)
	}
}

// checkDemoFiles: the demo's files are in one directory of tmp, 0700,
// each file 0600.
func checkDemoFiles(t *testing.T, tmp string) {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(tmp, "otpbot-demo-*"))
	if len(dirs) != 1 {
		t.Fatalf("demo directories in TMPDIR: %v; want one", dirs)
	}
	err := filepath.WalkDir(dirs[0], func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if e.IsDir() {
			want = 0o700
		}
		if perm := info.Mode().Perm(); perm != want {
			t.Errorf("%s has mode %o; want %o", path, perm, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDemoRefusesNonLoopback: an address others could reach is a usage
// error (exit 2) before anything is created.
func TestDemoRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:8080", ":8080", "192.0.2.1:8080", "[::]:8080", "example.com:8080", "8080"} {
		t.Run(addr, func(t *testing.T) {
			tmp := t.TempDir()
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"otpbot", "demo", "-listen", addr}, envMap(map[string]string{"TMPDIR": tmp}), &stdout, &stderr)
			var ue *usageError
			if !errors.As(err, &ue) || exitCode(err) != exitConfig {
				t.Fatalf("run = %v; want a usage error (exit 2)", err)
			}
			if addr != "8080" && !strings.Contains(err.Error(), "loopback only") {
				t.Errorf("error %q does not say the demo binds loopback only", err)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 || stdout.Len() != 0 {
				t.Errorf("a refused demo created %v and printed %q", left, stdout.String())
			}
		})
	}
}

// TestDemoBinaryCtrlC: the built binary prints its line, answers on the
// page, and on SIGINT (Ctrl-C) exits 0 having removed everything it
// created.
func TestDemoBinaryCtrlC(t *testing.T) {
	tmp := t.TempDir()
	cmd := exec.Command(otpbotBinary(t), "demo", "-listen", "127.0.0.1:0")
	cmd.Env = baseEnv(map[string]string{"TMPDIR": tmp})
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	waitUntil(t, "the demo's line", func() bool { return strings.HasSuffix(stdout.String(), "\n") })
	m := demoLineRE.FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("demo printed %q\n%s", stdout.String(), stderr)
	}
	if status, _ := get(t, m[1]+"/demo"); status != http.StatusOK {
		t.Errorf("/demo answered %d", status)
	}
	checkDemoFiles(t, tmp)
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("demo exited with %v after SIGINT; want status 0\n%s", err, stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("demo did not exit within 30s of SIGINT\n%s", stderr)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("the demo left %v in its TMPDIR", left)
	}
	if strings.Contains(stderr.String(), "level=ERROR") {
		t.Errorf("demo logged an error:\n%s", stderr)
	}
}
