package main

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from the code and docs/demo.png from the demo page")

const (
	exampleConfig = "../../config.example.yaml"
	configDoc     = "../../docs/configuration.md"
)

// yamlLeaves lists the key paths of a YAML document; maps under a key of
// map type (codes.ttl_by_event) count as one key.
func yamlLeaves(t *testing.T, data []byte) []string {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	mapKeys := map[string]bool{}
	for _, f := range configFields() {
		if f.typ.Kind() == reflect.Map {
			mapKeys[f.path] = true
		}
	}
	var out []string
	var walk func(m map[string]any, prefix string)
	walk = func(m map[string]any, prefix string) {
		for k, v := range m {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			if sub, ok := v.(map[string]any); ok && !mapKeys[p] {
				walk(sub, p)
				continue
			}
			out = append(out, p)
		}
	}
	walk(doc, "")
	sort.Strings(out)
	return out
}

func TestExampleConfigListsEveryKeyWithItsDefault(t *testing.T) {
	data, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range configFields() {
		want = append(want, f.path)
	}
	sort.Strings(want)
	if got := yamlLeaves(t, data); !reflect.DeepEqual(got, want) {
		t.Errorf("config.example.yaml keys differ from the code's\n got: %v\nwant: %v", got, want)
	}
	cfg, err := decodeConfig(exampleConfig, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Defaults()) {
		t.Errorf("config.example.yaml does not hold the defaults:\n got %+v\nwant %+v", cfg, Defaults())
	}
}

func TestEveryKeyIsDocumented(t *testing.T) {
	known := map[string]bool{}
	for _, f := range configFields() {
		known[f.path] = true
		if strings.TrimSpace(keyDocs[f.path]) == "" {
			t.Errorf("key %s has no entry in keyDocs", f.path)
		}
	}
	for k := range keyDocs {
		if !known[k] {
			t.Errorf("keyDocs documents %s, which is not a key", k)
		}
	}
}

// TestConfigurationDoc keeps docs/configuration.md equal to what the code
// generates; -update rewrites it.
func TestConfigurationDoc(t *testing.T) {
	want := configurationDoc()
	if *update {
		if err := os.MkdirAll(filepath.Dir(configDoc), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(configDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatalf("%v (run: go generate ./cmd/otpbot)", err)
	}
	if string(got) != want {
		t.Errorf("docs/configuration.md is stale: run `go generate ./cmd/otpbot`")
	}
	for _, f := range configFields() {
		if !strings.Contains(want, "`"+f.env()+"`") {
			t.Errorf("doc lacks %s", f.env())
		}
	}
}
