package templates

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/text/language"
)

// The template files: builtin/<lang>/*.tmpl are compiled in, English
// (builtin/en) complete and every other built-in language translating
// all of it; templates.dir/<lang>/*.tmpl override one template of one
// language (templates.dir/*.tmpl, the layout before languages, override
// English). A language's templates are English's, with its own built-in
// files laid over them, then the operator's English files (for what the
// language does not translate), then the operator's files for it.
// So a template resolves to the language's override, else its built-in,
// else English's override, else English's built-in; and a file that
// defines pieces ({{define}}) replaces only the pieces it defines.

//go:embed builtin
var builtin embed.FS

// ext is the file name extension of a template; the name is the file name
// without it.
const ext = ".tmpl"

// base is the language every other falls back on.
const base = "en"

// files are template texts by language and name.
type files map[string]map[string]string

func (f files) add(lang, name, text string) {
	if f[lang] == nil {
		f[lang] = map[string]string{}
	}
	f[lang][name] = text
}

// readBuiltin reads the compiled-in templates.
func readBuiltin() (files, error) {
	out := files{}
	langs, err := fs.ReadDir(builtin, "builtin")
	if err != nil {
		return nil, fmt.Errorf("templates: read built-in: %w", err)
	}
	for _, l := range langs {
		entries, err := fs.ReadDir(builtin, "builtin/"+l.Name())
		if err != nil {
			return nil, fmt.Errorf("templates: read built-in %s: %w", l.Name(), err)
		}
		for _, e := range entries {
			b, err := fs.ReadFile(builtin, "builtin/"+l.Name()+"/"+e.Name())
			if err != nil {
				return nil, fmt.Errorf("templates: read built-in %s/%s: %w", l.Name(), e.Name(), err)
			}
			out.add(l.Name(), strings.TrimSuffix(e.Name(), ext), string(b))
		}
	}
	if len(out[base]) == 0 {
		return nil, fmt.Errorf("templates: no built-in %s templates", base)
	}
	return out, nil
}

// readDir reads the operator's overrides: dir/*.tmpl (English) and
// dir/<lang>/*.tmpl. known are the template names (English's): an
// override must have one of them, so that a typo does not silently leave
// the built-in in place; a folder must be named by a language tag.
func readDir(dir string, known map[string]string) (files, error) {
	out := files{}
	if dir == "" {
		return out, nil
	}
	// A missing folder is a configuration error, not "no overrides".
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("templates: dir: %w", err)
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if !e.IsDir() {
			if strings.HasSuffix(e.Name(), ext) {
				if err := readOverride(out, base, path, known); err != nil {
					return nil, err
				}
			}
			continue
		}
		tag, err := language.Parse(e.Name())
		if err != nil {
			return nil, fmt.Errorf("templates: %s is not named by a language (en, ru, pt-BR...): %w", path, err)
		}
		matches, err := filepath.Glob(filepath.Join(path, "*"+ext))
		if err != nil {
			return nil, fmt.Errorf("templates: dir %s: %w", path, err)
		}
		for _, m := range matches {
			if err := readOverride(out, tag.String(), m, known); err != nil {
				return nil, err
			}
		}
		if len(matches) == 0 {
			out[tag.String()] = map[string]string{} // a language with English's texts
		}
	}
	return out, nil
}

// renamedTemplates maps the earlier names of built-in templates to their
// names now, so an override written for an earlier version keeps working.
var renamedTemplates = map[string]string{"thread_reply": "follow_up"}

func readOverride(out files, lang, path string, known map[string]string) error {
	name := strings.TrimSuffix(filepath.Base(path), ext)
	if now, ok := renamedTemplates[name]; ok {
		name = now
	}
	if _, ok := known[name]; !ok {
		return fmt.Errorf("templates: %s overrides no built-in template (known: %s)", path, strings.Join(sortedKeys(known), ", "))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("templates: %w", err)
	}
	out.add(lang, name, string(b))
	return nil
}

// layers returns the files a language's templates are parsed from, in
// order: English built-in, English overrides, the language's built-in,
// the language's overrides.
func layers(lang string, built, over files) []layer {
	var out []layer
	add := func(where string, f map[string]string) {
		for _, name := range sortedKeys(f) {
			out = append(out, layer{where: where, name: name, text: f[name]})
		}
	}
	add("built-in en", built[base])
	add("templates.dir en", over[base])
	if lang != base {
		add("built-in "+lang, built[lang])
		add("templates.dir "+lang, over[lang])
	}
	return out
}

// layer is one file of a language's templates.
type layer struct {
	where, name, text string
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
