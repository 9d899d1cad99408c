package bottest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// apiError is a failed call's answer: Telegram's JSON error envelope, or,
// with page set, an HTML page of its nginx front end.
type apiError struct {
	code       int
	desc       string
	retryAfter int
	migrateTo  int64
	page       string
}

// observed is what a call did, for Standalone's observer.
type observed struct {
	params map[string]string
	// acted is when the fake acted on the call (zero if it never did).
	acted time.Time
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) { s.serveCall(w, r, nil) }

// serveCall answers one call the way it travels: held (Hold) and delayed
// (SetLatency) while the client may still give up, then half the round
// trip on its way to Telegram, acted on, and the other half on the way
// back. Once on its way it is acted on even if the client gives up: the
// request has left, and only the answer is lost.
func (s *Server) serveCall(w http.ResponseWriter, r *http.Request, obs *observed) {
	token, method, ok := parsePath(r.URL.Path)
	if !ok {
		writeJSON(w, 404, map[string]any{"ok": false, "error_code": 404, "description": "Not Found"})
		return
	}
	params, err := readParams(r)
	if err != nil {
		writeJSON(w, 400, map[string]any{"ok": false, "error_code": 400, "description": "Bad Request: " + err.Error()})
		return
	}
	if obs != nil {
		obs.params = params
	}
	if !s.await(r.Context(), method) {
		return
	}
	there, back := s.drawTrip()
	// On its way the request is out of the client's hands: it arrives
	// and is acted on even if the client gives up.
	if !s.travel(context.Background(), there) {
		return
	}
	a := s.act(r.Context(), token, method, params)
	if obs != nil {
		obs.acted = a.at
	}
	if !s.travel(r.Context(), back) {
		return // nobody is listening for the answer any more
	}
	a.write(w)
}

// await holds a call while Hold or SetLatency says so; false when the
// client gave up meanwhile (the call is then never acted on) or the
// server closes.
func (s *Server) await(ctx context.Context, method string) bool {
	s.mu.Lock()
	latency := s.latency
	hold := s.holds[method]
	if hold != nil {
		s.held[method]++
	}
	s.mu.Unlock()
	if hold != nil {
		gone := false
		select {
		case <-hold:
		case <-s.closing:
		case <-ctx.Done():
			// The client gave up (a cut-off call): the request is never
			// acted on, as if it had not reached Telegram.
			gone = true
		}
		s.mu.Lock()
		s.held[method]--
		s.notify()
		s.mu.Unlock()
		if gone {
			return false
		}
	}
	if latency > 0 && method != "getUpdates" {
		return s.travel(ctx, latency)
	}
	return true
}

// answer is the outcome of a call the fake acted on.
type answer struct {
	at     time.Time
	result any
	aerr   *apiError
	drop   bool
}

// act performs the call: records it, applies the outage, faults and
// limits, and changes the fake's state.
func (s *Server) act(ctx context.Context, token, method string, params map[string]string) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := answer{at: time.Now()}
	idx, gen := len(s.calls), s.forgets
	s.calls = append(s.calls, Call{Method: method, Params: params, Time: a.at})
	switch {
	case s.token != "" && token != s.token:
		a.aerr = &apiError{code: 401, desc: "Unauthorized"}
	case s.downSet && s.down == 0:
		a.drop = true
	case s.downSet:
		a.aerr = outage(s.down)
	default:
		if a.aerr = s.checkSchema(idx, method, params); a.aerr == nil {
			a.aerr = s.takeFault(method)
		}
	}
	if a.aerr == nil && !a.drop {
		if method == "getUpdates" {
			s.mu.Unlock()
			a.result, a.aerr = s.getUpdates(ctx, params)
			s.mu.Lock()
		} else {
			a.result, a.aerr = s.dispatch(method, params)
		}
	}
	if a.aerr != nil {
		if gen == s.forgets && idx < len(s.calls) {
			s.calls[idx].Code = a.aerr.code
		}
		if a.aerr.code == 429 {
			s.count429++
		}
	}
	s.notify()
	return a
}

// write sends the answer: the JSON envelope, an HTML error page, or,
// for a dropped connection, nothing at all.
func (a answer) write(w http.ResponseWriter) {
	switch {
	case a.drop:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		writeJSON(w, 502, map[string]any{"ok": false, "error_code": 502, "description": "Bad Gateway"})
	case a.aerr != nil && a.aerr.page != "":
		writeHTML(w, a.aerr.code, a.aerr.page)
	case a.aerr != nil:
		body := map[string]any{"ok": false, "error_code": a.aerr.code, "description": a.aerr.desc}
		if a.aerr.retryAfter > 0 {
			body["parameters"] = map[string]any{"retry_after": a.aerr.retryAfter}
		}
		if a.aerr.migrateTo != 0 {
			body["parameters"] = map[string]any{"migrate_to_chat_id": a.aerr.migrateTo}
		}
		writeJSON(w, a.aerr.code, body)
	default:
		writeJSON(w, 200, map[string]any{"ok": true, "result": a.result})
	}
}

func parsePath(p string) (token, method string, ok bool) {
	rest, found := strings.CutPrefix(p, "/bot")
	if !found {
		return "", "", false
	}
	token, method, ok = strings.Cut(rest, "/")
	return token, method, ok && method != ""
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// readParams merges query, form and JSON body parameters, as Telegram
// accepts all three.
func readParams(r *http.Request) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range r.URL.Query() {
		out[k] = v[0]
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var m map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil && err != io.EOF {
			return nil, fmt.Errorf("malformed JSON: %w", err)
		}
		for k, v := range m {
			var s string
			if json.Unmarshal(v, &s) == nil {
				out[k] = s
			} else {
				out[k] = string(v)
			}
		}
	case "multipart/form-data":
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			return nil, err
		}
		for k, v := range r.MultipartForm.Value {
			out[k] = v[0]
		}
	default:
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, err
		}
		for k, v := range vals {
			out[k] = v[0]
		}
	}
	return out, nil
}

func (s *Server) dispatch(method string, p map[string]string) (any, *apiError) {
	switch method {
	case "getMe":
		return map[string]any{"id": BotID, "is_bot": true, "first_name": "otpbot test", "username": BotUsername,
			"can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false}, nil
	case "sendMessage":
		return s.sendMessage(p)
	case "editMessageText", "editMessageReplyMarkup":
		return s.editMessage(method, p)
	case "deleteMessage":
		c, m, aerr := s.target(p)
		if aerr != nil {
			return nil, aerr
		}
		if m == nil {
			return nil, &apiError{code: 400, desc: "Bad Request: message to delete not found"}
		}
		if aerr := s.flood(c); aerr != nil {
			return nil, aerr
		}
		delete(c.msgs, m.ID)
		return true, nil
	case "answerCallbackQuery":
		if p["callback_query_id"] == "" {
			return nil, &apiError{code: 400, desc: "Bad Request: query is too old and response timeout expired or query ID is invalid"}
		}
		if aerr := s.flood(nil); aerr != nil {
			return nil, aerr
		}
		return true, nil
	case "setWebhook":
		if p["url"] == "" {
			s.webhook, s.secret = "", ""
			return true, nil
		}
		if _, err := url.ParseRequestURI(p["url"]); err != nil {
			return nil, &apiError{code: 400, desc: "Bad Request: bad webhook: invalid URL"}
		}
		s.webhook, s.secret = p["url"], p["secret_token"]
		return true, nil
	case "deleteWebhook":
		s.webhook, s.secret = "", ""
		if p["drop_pending_updates"] == "true" {
			s.updates = nil
		}
		return true, nil
	case "getWebhookInfo":
		return map[string]any{"url": s.webhook, "has_custom_certificate": false, "pending_update_count": len(s.updates)}, nil
	case "setMyCommands", "deleteMyCommands":
		return true, nil
	}
	return nil, &apiError{code: 404, desc: "Not Found: method not found"}
}

// target resolves chat_id and message_id; s.mu must be held.
func (s *Server) target(p map[string]string) (*chat, *Message, *apiError) {
	id, err := strconv.ParseInt(p["chat_id"], 10, 64)
	if err != nil || id == 0 {
		return nil, nil, &apiError{code: 400, desc: "Bad Request: chat not found"}
	}
	c := s.chat(id)
	if p["message_id"] == "" {
		return c, nil, nil
	}
	mid, err := strconv.Atoi(p["message_id"])
	if err != nil {
		return nil, nil, &apiError{code: 400, desc: "Bad Request: message identifier is not specified"}
	}
	return c, c.msgs[mid], nil
}
