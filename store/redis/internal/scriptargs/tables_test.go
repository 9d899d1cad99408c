package scriptargs

import (
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var updateArgs = flag.Bool("update", false, "rewrite ../../scriptargs_*_gen.go from the argument tables")

// The argument tables of the scripts: one per script, the only place an
// argument's position is written. store/redis/scriptargs_*_gen.go are
// generated from them (go test ./store/redis/internal/scriptargs -update;
// this package is apart so that it runs while package redis does not
// compile against a changed table): for each
// script a Go struct whose argv method lays its fields out in table order,
// and a Lua header that names ARGV[i] the same way, so Go and Lua cannot
// disagree on a position.
//
// A script's fixed arguments come first (ARGV[1] on): a plain name is one
// argument, "name:shape" the fields of a shape (a Lua table in the script,
// a NAMERec struct in Go). Its lists follow, each a count and then its items
// ("name:shape" items take the shape's fields each).

// argShape is a record of arguments passed as a group: a message, a task.
type argShape struct {
	name   string
	fields []string
}

// argTable is the argument table of one script.
type argTable struct {
	script string   // the script's Go name without "Script"
	fixed  []string // ARGV[1] on
	lists  []string // after the fixed ones, each a count then its items
}

var argShapes = []argShape{
	// A message (putMsg): its id, chat, head JSON, head JSON without
	// rendered, rendered, event JSON, state, updated, final ('0'/'1'),
	// and how long (ms) a final one is kept.
	{"msg", []string{"id", "chat", "head", "headBare", "rendered", "evJSON", "state", "updated", "final", "gc"}},
	// A task (putTask): id, priority, due µs, due RFC 3339, created µs,
	// JSON, message id.
	{"task", []string{"id", "prio", "score", "at", "cscore", "json", "msgID"}},
	// A target a sharded ingest routed to, with its link's name of the card.
	{"target", []string{"t", "name"}},
	// A message state and the one a push moves it to (otpbot.NextState).
	{"state", []string{"from", "to"}},
	// A task claimIDs leases: its priority and id.
	{"pick", []string{"prio", "id"}},
}

// genFiles are the generated files, in package redis: the shapes and the
// outbox's scripts in one, the other scripts in the other, so that each
// stays short enough to read.
var genFiles = []struct {
	path   string
	shapes bool
	tables []argTable
}{
	{"../../scriptargs_outbox_gen.go", true, outboxTables},
	{"../../scriptargs_store_gen.go", false, storeTables},
}

// outboxTables are the scripts of the outbox: claims, completions, the
// queue's reads and the layout check.
var outboxTables = []argTable{
	{"claim", []string{"B", "nprio", "now", "untilScore", "untilAt", "max", "tok"}, nil},
	{"complete", []string{"B", "taskID", "lease", "hasMsg", "msg:msg", "instance"}, []string{"tasks:task"}},
	{"completeMessage", []string{"B", "taskID", "lease", "prevUpdated", "msg:msg", "instance"}, []string{"tasks:task"}},
	{"retry", []string{"B", "taskID", "lease", "taskJSON", "dueScore", "dueAt", "instance"}, nil},
	{"enqueue", []string{"B", "instance"}, []string{"tasks:task"}},
	{"nextDue", []string{"B", "nprio"}, nil},
	{"pending", []string{"B", "nprio"}, nil},
	{"updateMessage", []string{"B", "prevUpdated", "msg:msg", "instance"}, []string{"tasks:task"}},
	{"redactExpired", []string{"B", "prevUpdated", "evJSON", "updated"}, nil},
	{"putMessage", []string{"B", "msg:msg"}, nil},
	{"layout", []string{"B", "want", "seen", "nprio"}, nil},
	{"peek", []string{"B", "nprio", "now", "max"}, nil},
	{"claimIDs", []string{"B", "now", "untilScore", "untilAt", "tok"}, []string{"picks:pick"}},
}

// storeTables are the other scripts: links, invites, history, a push's
// routing and ingest, coordination, the installation secret, chats.
var storeTables = []argTable{
	{"link", []string{"B", "key", "target", "chat", "linkJSON", "broken", "reason"}, nil},
	{"unlink", []string{"B", "key", "target", "chat"}, nil},
	{"linksForKey", []string{"B", "key"}, nil},
	{"linksForChat", []string{"B"}, nil},
	{"markBroken", []string{"B", "target", "reason"}, nil},
	{"createInvite", []string{"B", "hash", "inviteJSON", "expiry", "key", "keyJSON", "gc"}, nil},
	{"redeemInvite", []string{"B", "hash", "now", "target", "chat", "linkRest"}, nil},
	{"importHistory", []string{"B", "at", "entry", "cap", "hcut", "gc", "seq"}, []string{"keys"}},
	{"route", []string{"B", "route", "cardKey"}, []string{"keys"}},
	{"ingest", []string{
		"B", "id", "now", "ddcut", "ddgc", "route", "group",
		"evJSON", "redJSON", "msgTail", "sendTail", "updTail",
		"dueScore", "dueAt", "atUs", "nowStr", "queuedTail", "otherTail",
		"hcut", "cap", "hgc", "codePrio", "updatePrio",
		"seq", "given", "cardKey", "newState", "instance", "groupJSON", "prune",
	}, []string{"keys", "targets:target", "hkeys", "moves:state"}},
	{"once", []string{"now", "expiry", "gc"}, nil},
	{"acquireLease", []string{"owner", "now", "expiry", "gc"}, nil},
	{"releaseLease", []string{"owner"}, nil},
	{"importSecret", []string{"secret", "cut"}, nil},
	{"setChat", []string{"field", "value", "chat"}, nil},
}

// TestScriptArgsGenerated fails when a generated file is not what the
// tables above generate (-update rewrites them).
func TestScriptArgsGenerated(t *testing.T) {
	shapes, err := checkShapes()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range genFiles {
		src, err := genScriptArgs(shapes, f.shapes, f.tables)
		if err != nil {
			t.Fatal(err)
		}
		if *updateArgs {
			if err := os.WriteFile(f.path, src, 0o600); err != nil {
				t.Fatal(err)
			}
			continue
		}
		cur, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(cur, src) {
			t.Fatalf("store/redis/%s is stale: go test ./store/redis/internal/scriptargs -update", strings.TrimPrefix(f.path, "../../"))
		}
	}
}

var luaIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

var luaKeywords = strings.Fields(`and break do else elseif end false for function if in local nil not or
repeat return then true until while`)

// goName is the Go field name of a Lua argument name.
func goName(s string) string {
	if s == "id" {
		return "ID"
	}
	if s == "json" {
		return "JSON"
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// splitArg splits "name:shape" (shape "" for a plain argument).
func splitArg(a string) (name, shape string) {
	name, shape, _ = strings.Cut(a, ":")
	return name, shape
}

// checkShapes returns the shapes by name, once their field names are
// checked.
func checkShapes() (map[string]argShape, error) {
	shapes := map[string]argShape{}
	for _, sh := range argShapes {
		shapes[sh.name] = sh
		for _, f := range sh.fields {
			if !luaIdent.MatchString(f) || slices.Contains(luaKeywords, f) {
				return nil, fmt.Errorf("shape %s: %q is no Lua name", sh.name, f)
			}
		}
	}
	return shapes, nil
}

// genScriptArgs generates one file: the shapes' code when withShapes, and
// the code of tables.
func genScriptArgs(shapes map[string]argShape, withShapes bool, tables []argTable) ([]byte, error) {
	var b strings.Builder
	b.WriteString("// Code generated by TestScriptArgsGenerated from the tables in internal/scriptargs; DO NOT EDIT.\n\npackage redis\n")
	for _, sh := range argShapes {
		if !withShapes {
			break
		}
		fmt.Fprintf(&b, "\n// %sRec is a %s passed to a script (the %q shape).\ntype %sRec struct {\n", sh.name, sh.name, sh.name, sh.name)
		for _, f := range sh.fields {
			fmt.Fprintf(&b, "\t%s any\n", goName(f))
		}
		fmt.Fprintf(&b, "}\n\nfunc (a *%sRec) appendTo(v []any) []any {\n\treturn append(v", sh.name)
		for _, f := range sh.fields {
			fmt.Fprintf(&b, ", a.%s", goName(f))
		}
		b.WriteString(")\n}\n")
		// The Lua decoder of the shape: a table of the fields from ARGV[i].
		fmt.Fprintf(&b, "\n// lua%sAt reads a %s from ARGV[i] on.\nconst lua%sAt = `local function %sAt(i)\n  return {", goName(sh.name), sh.name, goName(sh.name), sh.name)
		for j, f := range sh.fields {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s = ARGV[i + %d]", f, j)
		}
		b.WriteString("}\nend\n`\n")
	}
	for _, tb := range tables {
		if err := genTable(&b, tb, shapes); err != nil {
			return nil, err
		}
	}
	return format.Source([]byte(b.String()))
}

func genTable(b *strings.Builder, tb argTable, shapes map[string]argShape) error {
	seen := map[string]bool{}
	var fields, argv, lua, need []string // need: the shape decoders the header uses
	var plain []string                   // a run of plain fixed arguments
	var plainAt int
	flush := func() {
		for len(plain) > 0 {
			k := min(len(plain), 4)
			var at []string
			for j := range k {
				at = append(at, fmt.Sprintf("ARGV[%d]", plainAt+j))
			}
			lua = append(lua, "local "+strings.Join(plain[:k], ", ")+" = "+strings.Join(at, ", "))
			var gn, gv []string
			for _, n := range plain[:k] {
				gn = append(gn, goName(n))
				gv = append(gv, "a."+goName(n))
			}
			fields = append(fields, strings.Join(gn, ", ")+" any")
			argv = append(argv, "v = append(v, "+strings.Join(gv, ", ")+")")
			plain, plainAt = plain[k:], plainAt+k
		}
	}
	checkName := func(name string) error {
		if !luaIdent.MatchString(name) || slices.Contains(luaKeywords, name) || seen[name] {
			return fmt.Errorf("%s: %q is no Lua name or is repeated", tb.script, name)
		}
		seen[name] = true
		return nil
	}
	pos := 1
	for _, a := range tb.fixed {
		name, shape := splitArg(a)
		if err := checkName(name); err != nil {
			return err
		}
		if shape == "" {
			if len(plain) == 0 {
				plainAt = pos
			}
			plain = append(plain, name)
			pos++
			continue
		}
		flush()
		sh, ok := shapes[shape]
		if !ok {
			return fmt.Errorf("%s: unknown shape %q", tb.script, shape)
		}
		fields = append(fields, goName(name)+" "+shape+"Rec")
		argv = append(argv, "v = a."+goName(name)+".appendTo(v)")
		lua = append(lua, fmt.Sprintf("local %s = %sAt(%d)", name, shape, pos))
		need = append(need, shape)
		pos += len(sh.fields)
	}
	flush()
	fixed := pos - 1
	var size []string
	if len(tb.lists) > 0 {
		var names []string
		for _, l := range tb.lists {
			name, _ := splitArg(l)
			names = append(names, name)
		}
		lua = append(lua, "local "+strings.Join(names, ", ")+" = "+strings.TrimSuffix(strings.Repeat("{}, ", len(names)), ", "))
		lua = append(lua, "do", fmt.Sprintf("  local i, n = %d, 0", pos))
	}
	for _, l := range tb.lists {
		name, shape := splitArg(l)
		if err := checkName(name); err != nil {
			return err
		}
		g := goName(name)
		if shape == "" {
			fields = append(fields, g+" []any")
			argv = append(argv, fmt.Sprintf("v = append(append(v, len(a.%s)), a.%s...)", g, g))
			size = append(size, fmt.Sprintf("1 + len(a.%s)", g))
			lua = append(lua, fmt.Sprintf("  n = tonumber(ARGV[i]); for k = 1, n do %s[k] = ARGV[i + k] end; i = i + 1 + n", name))
			continue
		}
		sh, ok := shapes[shape]
		if !ok {
			return fmt.Errorf("%s: unknown shape %q", tb.script, shape)
		}
		w := len(sh.fields)
		fields = append(fields, g+" []"+shape+"Rec")
		argv = append(argv, fmt.Sprintf("v = append(v, len(a.%s))", g),
			fmt.Sprintf("for i := range a.%s { v = a.%s[i].appendTo(v) }", g, g))
		size = append(size, fmt.Sprintf("1 + %d*len(a.%s)", w, g))
		lua = append(lua, fmt.Sprintf("  n = tonumber(ARGV[i]); for k = 1, n do %s[k] = %sAt(i + 1 + (k - 1) * %d) end; i = i + 1 + %d * n", name, shape, w, w))
		need = append(need, shape)
	}
	if len(tb.lists) > 0 {
		lua = append(lua, "end")
	}
	slices.Sort(need)
	var header []string
	for _, sh := range slices.Compact(need) {
		header = append(header, "` + lua"+goName(sh)+"At + `")
	}
	header = append(header, lua...)

	s := tb.script
	fmt.Fprintf(b, "\n// %sArgs are the arguments of %sScript, in the order of its table.\ntype %sArgs struct {\n", s, s, s)
	for _, f := range fields {
		fmt.Fprintf(b, "\t%s\n", f)
	}
	fmt.Fprintf(b, "}\n\n// argv returns the arguments as the script takes them (ARGV).\nfunc (a *%sArgs) argv() []any {\n", s)
	fmt.Fprintf(b, "\tv := make([]any, 0, %s)\n", strings.Join(append([]string{fmt.Sprint(fixed)}, size...), " + "))
	for _, l := range argv {
		fmt.Fprintf(b, "\t%s\n", l)
	}
	b.WriteString("\treturn v\n}\n")
	fmt.Fprintf(b, "\n// lua%sArgs names the arguments of %sScript (see %sArgs).\nconst lua%sArgs = `\n%s\n`\n",
		goName(s), s, s, goName(s), strings.Join(header, "\n"))
	return nil
}
