package bottest

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// schemaJSON is the Bot API's published schema: every method with its
// parameters and every type with its fields, scraped from Telegram's
// documentation by PaulSonOfLars/telegram-bot-api-spec (MIT).
// testdata/README.md says which version is kept and how to refresh it:
// `make bot-api-schema` runs this go:generate line.
//
//go:generate sh -c "curl -fsSL -o testdata/telegram-bot-api.json.tmp https://raw.githubusercontent.com/PaulSonOfLars/telegram-bot-api-spec/main/api.json && mv testdata/telegram-bot-api.json.tmp testdata/telegram-bot-api.json"
//go:embed testdata/telegram-bot-api.json
var schemaJSON []byte

// schema is the part of the published schema the fake checks requests
// against: names, types, and which parameters and fields are required.
type schema struct {
	// version is the schema's "Bot API 10.1".
	version string
	// methods are keyed by lower-case name: Telegram's method names are
	// case-insensitive.
	methods map[string]*apiObject
	types   map[string]*apiObject
}

// apiObject is a method (its parameters) or a type (its fields, or the
// subtypes it stands for when it is abstract, like BotCommandScope).
type apiObject struct {
	name     string
	fields   map[string]apiField
	required []string
	subtypes []string
	// tag and tagValue name the field that tells a subtype from its
	// siblings and the value it must have ("type": "chat"), "" when the
	// documentation names none.
	tag, tagValue string
}

// apiField is one parameter or field: its alternative types, each a
// schema type name or a primitive (String, Integer, Float, Boolean,
// InputFile), possibly wrapped in "Array of ".
type apiField struct {
	types    []string
	required bool
}

// tagRE finds the value a subtype's tag must have in its description:
// `Scope type, must be chat`, `Type of the reaction, always "emoji"`.
var tagRE = regexp.MustCompile(`(?:must be|always) "?([A-Za-z_]+)"?\s*$`)

// loadSchema parses the embedded schema.
func loadSchema() (*schema, error) {
	type rawField struct {
		Name        string   `json:"name"`
		Types       []string `json:"types"`
		Required    bool     `json:"required"`
		Description string   `json:"description"`
	}
	type rawObject struct {
		Name      string     `json:"name"`
		Fields    []rawField `json:"fields"`
		Subtypes  []string   `json:"subtypes"`
		SubtypeOf []string   `json:"subtype_of"`
	}
	var raw struct {
		Version string               `json:"version"`
		Methods map[string]rawObject `json:"methods"`
		Types   map[string]rawObject `json:"types"`
	}
	if err := json.Unmarshal(schemaJSON, &raw); err != nil {
		return nil, fmt.Errorf("bottest: Bot API schema: %w", err)
	}
	if raw.Version == "" || len(raw.Methods) == 0 || len(raw.Types) == 0 {
		return nil, fmt.Errorf("bottest: Bot API schema: no version, methods or types")
	}
	convert := func(ro rawObject) *apiObject {
		o := &apiObject{name: ro.Name, fields: make(map[string]apiField, len(ro.Fields)), subtypes: ro.Subtypes}
		for _, f := range ro.Fields {
			o.fields[f.Name] = apiField{types: f.Types, required: f.Required}
			if f.Required {
				o.required = append(o.required, f.Name)
			}
			if m := tagRE.FindStringSubmatch(f.Description); m != nil && len(ro.SubtypeOf) > 0 &&
				f.Required && slices.Equal(f.Types, []string{"String"}) {
				o.tag, o.tagValue = f.Name, m[1]
			}
		}
		return o
	}
	sc := &schema{version: raw.Version, methods: map[string]*apiObject{}, types: map[string]*apiObject{}}
	for _, m := range raw.Methods {
		sc.methods[strings.ToLower(m.Name)] = convert(m)
	}
	for _, t := range raw.Types {
		sc.types[t.Name] = convert(t)
	}
	return sc, nil
}
