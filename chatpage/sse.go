package chatpage

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

// keepAlive is how often an idle stream gets a comment, so that a proxy or
// the browser does not take it for dead.
const keepAlive = 15 * time.Second

// events streams what the page shows, as server-sent events: "reset" with
// the chat list, "message" for every message shown, "ready"; after that
// "message" (new or changed), "delete", "chat" (a chat appeared), "toast"
// (a callback answer) and "push" (how a webhook answered a sample). A
// browser that reconnects gets the snapshot again.
func (p *Page) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// The server's write timeout is for requests; a stream stays open.
	_ = rc.SetWriteDeadline(time.Time{})
	sub, snapshot := p.hub.subscribe()
	if sub == nil {
		http.Error(w, "stopping", http.StatusServiceUnavailable)
		return
	}
	defer p.hub.unsubscribe(sub)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "retry: 1000\n\n")
	for _, ev := range snapshot {
		writeEvent(w, ev)
	}
	if rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-p.done:
			return
		case <-tick.C:
			_, _ = io.WriteString(w, ": ping\n\n")
		case ev, ok := <-sub.ch:
			if !ok {
				return
			}
			writeEvent(w, ev)
			// Send what else is queued in the same write.
			for more := true; more; {
				select {
				case ev, ok := <-sub.ch:
					if !ok {
						_ = rc.Flush()
						return
					}
					writeEvent(w, ev)
				default:
					more = false
				}
			}
		}
		if rc.Flush() != nil {
			return
		}
	}
}

// writeEvent writes one event; its JSON data holds no newline.
func writeEvent(w io.Writer, ev event) {
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, ev.data)
}
