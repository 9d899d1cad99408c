package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const (
	// browserDeadline bounds each wait on the page: generous, for a
	// loaded two-core machine.
	browserDeadline = 30 * time.Second
	// demoScreenshot is the README's picture of the demo page; -update
	// rewrites it.
	demoScreenshot = "../../docs/demo.png"
	// chromiumPath is where Debian's chromium package puts the browser.
	chromiumPath = "/usr/bin/chromium"
)

// demoBrowser is one headless Chromium with one tab, closed at the end of
// the test.
type demoBrowser struct {
	ctx context.Context // the tab
}

// newDemoBrowser starts headless Chromium with a fresh profile.
func newDemoBrowser(t *testing.T) *demoBrowser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	if _, err := os.Stat(chromiumPath); err == nil {
		opts = append(opts, chromedp.ExecPath(chromiumPath))
	}
	// The browser lives as long as the first action's context: the tab's
	// own, bounded as a whole rather than per action.
	life, cancelLife := context.WithTimeout(context.Background(), 3*time.Minute)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(life, opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelLife()
	})
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(420, 900)); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return &demoBrowser{ctx: ctx}
}

// do runs steps, failing the test when they do not finish within
// browserDeadline.
func (b *demoBrowser) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := b.try(what, steps...); err != nil {
		t.Fatal(err)
	}
}

func (b *demoBrowser) try(what string, steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.ctx, browserDeadline)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// browserGet runs a and returns its value, failing the test when it does
// not finish within browserDeadline.
func browserGet[T any](t *testing.T, b *demoBrowser, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserDeadline)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// pageCheck is the script behind press: "done" once done holds, "again"
// when the page's toast says the press came too early, "" otherwise.
const pageCheck = `(() => {
	if (%s) return "done";
	const t = document.getElementById("toast");
	if (!t.hidden && t.textContent.includes("no longer active")) return "again";
	return "";
})()`

// press clicks the button at XPath button until the JavaScript condition
// done holds. A press that reaches the bot before it recorded the message
// it just sent (a few milliseconds after the page shows it) is answered
// "no longer active", and a click can land as a countdown refresh
// replaces the message; either is pressed again.
func (b *demoBrowser) press(t *testing.T, what, button, done string) {
	t.Helper()
	var last error
	for range 5 {
		// Clears a toast left by an earlier press, so that only this
		// press's answer counts.
		b.do(t, what, chromedp.Evaluate[chromedp.Void](`document.getElementById("toast").hidden = true`))
		if last = b.try(what+": click", chromedp.Click(chromedp.Search(button))); last != nil {
			continue
		}
		got := browserGet(t, b, what, chromedp.Poll[string](fmt.Sprintf(pageCheck, done), chromedp.WithPollingTimeout(browserDeadline)))
		if got == "done" {
			return
		}
		last = fmt.Errorf("%s: the press was answered \"no longer active\"", what)
	}
	t.Fatal(last)
}

// msgXPath is the XPath of the selected chat's messages matching cond.
func msgXPath(cond string) string {
	return `//div[@id="messages"]/div[contains(concat(" ", @class, " "), " msg ")][` + cond + `]`
}

// buttonXPath is the XPath of the button labelled with text under the
// message with id.
func buttonXPath(id, text string) string {
	return msgXPath(`@data-id="`+id+`"`) + `/div[@class="keyboard"]//button[contains(., "` + text + `")]`
}

// TestDemoInABrowser opens the demo's page in headless Chromium and uses
// it as a reader would: the welcome code counts down, "Used it — hide"
// takes it away, an AUTH_3DS sent from the panel is approved in Alice's
// chat. The page at a phone's size is the README's screenshot.
func TestDemoInABrowser(t *testing.T) {
	d := startDemo(t)
	b := newDemoBrowser(t)

	welcome := msgXPath(`.//code and contains(., "3-D Secure code") and contains(., "expires in")`)
	b.do(t, "the welcome code counting down",
		chromedp.Navigate(d.url+"/demo"),
		chromedp.WaitVisible(chromedp.Search(welcome)),
	)
	html := browserGet(t, b, "the welcome message", chromedp.OuterHTML(chromedp.Search(welcome)))
	id := browserGet(t, b, "the welcome message's id", chromedp.AttributeValue(chromedp.Search(welcome), "data-id")).Value
	m := codeRE.FindStringSubmatch(html)
	if m == nil || id == "" {
		t.Fatalf("the welcome message (data-id %q) shows no code:\n%s", id, html)
	}
	code := m[1]
	b.press(t, "Used it — hide", buttonXPath(id, "Used it"), fmt.Sprintf(
		`![...document.querySelectorAll("#messages .msg")].every((m) => !m.textContent.includes(%q))`, code))

	// The panel sends HyperCard's AUTH_3DS for C1, the card linked to
	// Alice's chat.
	sample := `//div[@id="samples-hypercard"]/button[normalize-space(.)="AUTH_3DS"]`
	b.do(t, "the panel's AUTH_3DS",
		chromedp.Click(chromedp.ID("panelToggle")),
		chromedp.WaitVisible(chromedp.Search(sample)),
		chromedp.SetValue(chromedp.ID("card"), "C1"),
		chromedp.Click(chromedp.Search(sample)),
	)
	request := msgXPath(`div[@class="keyboard"]//button[contains(., "Approve")]`)
	b.do(t, "the approval request in Alice's chat",
		chromedp.WaitNotVisible(chromedp.ID("panel")), // a push on a phone closes the panel
		chromedp.Click(chromedp.Search(`//nav[@id="chats"]/button[starts-with(normalize-space(.), "Alice")]`)),
		chromedp.WaitVisible(chromedp.Search(request)),
	)
	id = browserGet(t, b, "the approval request's id", chromedp.AttributeValue(chromedp.Search(request), "data-id")).Value
	sel := fmt.Sprintf(`document.querySelector('#messages .msg[data-id="%s"]')`, id)
	b.press(t, "Approve", buttonXPath(id, "Approve"), sel+`?.textContent.includes("Confirm approve")`)
	b.press(t, "Confirm approve", buttonXPath(id, "Confirm approve"), sel+`?.textContent.includes("Approved by @alice")`)

	shot := browserGet(t, b, "the screenshot", chromedp.FullScreenshot(100))
	checkScreenshot(t, shot)
	if err := os.WriteFile(filepath.Join(t.TempDir(), "demo.png"), shot, 0o600); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(demoScreenshot, shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// checkScreenshot: shot is a PNG at least the phone's width.
func checkScreenshot(t *testing.T, shot []byte) {
	t.Helper()
	cfg, err := png.DecodeConfig(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if cfg.Width < 400 || cfg.Height < 800 || cfg.Width > 2000 || cfg.Height > 4000 {
		t.Errorf("the screenshot is %d×%d; want about 420×900", cfg.Width, cfg.Height)
	}
}
