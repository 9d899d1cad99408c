package bottest

import (
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

type apiError struct {
	code       int
	desc       string
	retryAfter int
	migrateTo  int64
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
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
		case <-r.Context().Done():
			// The client gave up (a cut-off call): the request is never
			// acted on, as if it had not reached Telegram.
			gone = true
		}
		s.mu.Lock()
		s.held[method]--
		s.notify()
		s.mu.Unlock()
		if gone {
			return
		}
	}
	if latency > 0 && method != "getUpdates" {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		}
	}
	s.mu.Lock()
	call := Call{Method: method, Params: params, Time: time.Now()}
	idx := len(s.calls)
	s.calls = append(s.calls, call)
	var result any
	var aerr *apiError
	drop := false
	switch {
	case s.token != "" && token != s.token:
		aerr = &apiError{code: 401, desc: "Unauthorized"}
	case s.downSet && s.down == 0:
		drop = true
	case s.downSet:
		aerr = &apiError{code: s.down, desc: http.StatusText(s.down)}
	default:
		aerr = s.takeFault(method)
	}
	if aerr == nil && !drop {
		if method == "getUpdates" {
			s.mu.Unlock()
			result, aerr = s.getUpdates(r.Context(), params)
			s.mu.Lock()
		} else {
			result, aerr = s.dispatch(method, params)
		}
	}
	if aerr != nil {
		s.calls[idx].Code = aerr.code
		if aerr.code == 429 {
			s.count429++
		}
	}
	s.notify()
	s.mu.Unlock()

	if drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		writeJSON(w, 502, map[string]any{"ok": false, "error_code": 502, "description": "Bad Gateway"})
		return
	}
	if aerr != nil {
		body := map[string]any{"ok": false, "error_code": aerr.code, "description": aerr.desc}
		if aerr.retryAfter > 0 {
			body["parameters"] = map[string]any{"retry_after": aerr.retryAfter}
		}
		if aerr.migrateTo != 0 {
			body["parameters"] = map[string]any{"migrate_to_chat_id": aerr.migrateTo}
		}
		writeJSON(w, aerr.code, body)
		return
	}
	writeJSON(w, 200, map[string]any{"ok": true, "result": result})
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
		delete(c.msgs, m.ID)
		return true, nil
	case "answerCallbackQuery":
		if p["callback_query_id"] == "" {
			return nil, &apiError{code: 400, desc: "Bad Request: query is too old and response timeout expired or query ID is invalid"}
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
