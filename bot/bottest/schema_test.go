package bottest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
)

// The embedded schema is whole: every parameter and field names a
// primitive or a type it defines, so that a refreshed copy that lost a
// type fails here rather than refusing requests at random.
func TestSchemaResolvesEveryType(t *testing.T) {
	sc, err := loadSchema()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sc.version, "Bot API ") {
		t.Errorf("version %q", sc.version)
	}
	resolves := func(te string) bool {
		for strings.HasPrefix(te, "Array of ") {
			te = strings.TrimPrefix(te, "Array of ")
		}
		if _, prim := primitive(nil, te); prim {
			return true
		}
		return sc.types[te] != nil
	}
	for _, set := range []map[string]*apiObject{sc.methods, sc.types} {
		for _, o := range set {
			for name, f := range o.fields {
				for _, te := range f.types {
					if !resolves(te) {
						t.Errorf("%s.%s: type %q is not in the schema", o.name, name, te)
					}
				}
			}
			for _, st := range o.subtypes {
				if !resolves(st) {
					t.Errorf("%s: subtype %q is not in the schema", o.name, st)
				}
			}
		}
	}
	for _, m := range []string{"sendmessage", "editmessagetext", "editmessagereplymarkup", "deletemessage",
		"answercallbackquery", "getupdates", "setwebhook", "deletewebhook", "getme", "setmycommands"} {
		if sc.methods[m] == nil {
			t.Errorf("method %s is missing", m)
		}
	}
}

// A JSON body is checked like a form: objects inside it field by field,
// a null taken as absent.
func TestSchemaChecksJSONBodies(t *testing.T) {
	s := New(t)
	cases := []struct {
		name string
		body string
		code int
	}{
		{"today's parameters", `{"chat_id":5,"text":"x","link_preview_options":{"is_disabled":true},` +
			`"reply_parameters":{"message_id":1,"allow_sending_without_reply":true},"entities":null,` +
			`"reply_markup":{"inline_keyboard":[[{"text":"Copy","copy_text":{"text":"1234"}}]]}}`, 200},
		{"a removed parameter", `{"chat_id":5,"text":"x","disable_web_page_preview":true}`, 400},
		{"a copy_text button with a number", `{"chat_id":5,"text":"x",` +
			`"reply_markup":{"inline_keyboard":[[{"text":"Copy","copy_text":{"text":1234}}]]}}`, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(s.URL()+"/bot1:x/sendMessage", "application/json", bytes.NewBufferString(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var env struct {
				OK          bool   `json:"ok"`
				Description string `json:"description"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, env.Description, tc.code)
			}
			refused := s.TakeRefused()
			if (tc.code == 200 && len(refused) != 0) || (tc.code != 200 && (len(refused) != 1 || refused[0].Refusal != env.Description)) {
				t.Errorf("refused %+v after %q", refused, env.Description)
			}
		})
	}
}

// testdata/README.md names the version of the schema kept beside it, so
// that a refresh that forgets to say so fails here.
func TestSchemaReadmeNamesItsVersion(t *testing.T) {
	sc, err := loadSchema()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("testdata/README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "**"+sc.version+"**") {
		t.Errorf("testdata/README.md does not name the schema's version %q", sc.version)
	}
}
