package bottest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// schemaError is a request the schema refuses: where (a parameter, then
// fields and indexes within its JSON) and why.
type schemaError struct {
	path string
	msg  string
}

func (e *schemaError) Error() string { return e.path + ": " + e.msg }

// check refuses a request the published schema does not define, the way
// a strict Telegram would: an unknown method (404, as Telegram answers
// one), and with 400 an unknown parameter, a missing required one, or a
// value of the wrong type — a JSON-serialized parameter (reply_markup,
// link_preview_options, reply_parameters...) checked field by field
// through the schema's types, unknown and missing fields included. It
// says nothing of what the schema cannot tell (text length, one kind of
// button per button...): the fake's methods check that.
func (sc *schema) check(method string, params map[string]string) *apiError {
	m := sc.methods[strings.ToLower(method)]
	if m == nil {
		return &apiError{code: 404, desc: fmt.Sprintf("Not Found: method %s is not in %s", method, sc.version)}
	}
	bad := func(format string, args ...any) *apiError {
		return &apiError{code: 400, desc: "Bad Request: " + m.name + ": " + fmt.Sprintf(format, args...) + " (" + sc.version + ")"}
	}
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if _, ok := m.fields[k]; !ok {
			return bad("unknown parameter %q", k)
		}
	}
	for _, k := range m.required {
		if _, ok := params[k]; !ok {
			return bad("required parameter %q is missing", k)
		}
	}
	for _, k := range names {
		if err := sc.param(k, m.fields[k].types, params[k]); err != nil {
			return bad("%v", err)
		}
	}
	return nil
}

// param checks one parameter's value as it arrived: a string (form and
// query values, and JSON strings), or the JSON text of a JSON body's
// number, object or array. An empty value, and a JSON-serialized one
// that is null (the library sends "null" for an unset list), is taken
// as absent, as Telegram takes it; what an empty required value means
// (an empty text...) is for the method to say.
func (sc *schema) param(name string, types []string, v string) *schemaError {
	if v == "" {
		return nil
	}
	var objects []string
	for _, t := range types {
		switch t {
		case "String", "InputFile":
			return nil
		case "Integer":
			if _, err := strconv.ParseInt(v, 10, 64); err == nil {
				return nil
			}
		case "Float":
			if _, err := strconv.ParseFloat(v, 64); err == nil {
				return nil
			}
		case "Boolean":
			if _, err := strconv.ParseBool(v); err == nil {
				return nil
			}
		default:
			objects = append(objects, t)
		}
	}
	if len(objects) == 0 {
		return &schemaError{path: name, msg: fmt.Sprintf("%q is not %s", v, strings.Join(types, " or "))}
	}
	dec := json.NewDecoder(strings.NewReader(v))
	dec.UseNumber()
	var val any
	if err := dec.Decode(&val); err != nil || dec.More() {
		return &schemaError{path: name, msg: "can't parse JSON-serialized " + strings.Join(objects, " or ")}
	}
	if val == nil {
		return nil
	}
	return sc.value(val, objects, name)
}

// value checks a decoded JSON value against alternative types; when none
// fits it reports the error of the alternative the value most resembles.
func (sc *schema) value(v any, types []string, path string) *schemaError {
	var best *schemaError
	bestScore := -1
	for _, t := range types {
		err := sc.one(v, t, path)
		if err == nil {
			return nil
		}
		if s := sc.resemblance(v, t); s > bestScore {
			best, bestScore = err, s
		}
	}
	return best
}

// one checks v against a single type expression.
func (sc *schema) one(v any, t, path string) *schemaError {
	if inner, ok := strings.CutPrefix(t, "Array of "); ok {
		arr, ok := v.([]any)
		if !ok {
			return &schemaError{path: path, msg: "must be a JSON array (" + t + ")"}
		}
		for i, e := range arr {
			if err := sc.value(e, []string{inner}, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		return nil
	}
	if ok, known := primitive(v, t); known {
		if !ok {
			return &schemaError{path: path, msg: "must be " + t}
		}
		return nil
	}
	typ := sc.types[t]
	if typ == nil {
		return &schemaError{path: path, msg: "type " + t + " is not in the schema"}
	}
	if len(typ.subtypes) > 0 {
		if err := sc.untagged(v, typ, path); err != nil {
			return err
		}
		return sc.value(v, typ.subtypes, path)
	}
	return sc.object(v, typ, path)
}

// object checks v against a type with fields: no field the type lacks,
// every required one present, the tag right, each value of its type.
// A JSON null counts as absent.
func (sc *schema) object(v any, typ *apiObject, path string) *schemaError {
	obj, ok := v.(map[string]any)
	if !ok {
		return &schemaError{path: path, msg: "must be a JSON object (" + typ.name + ")"}
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if _, ok := typ.fields[k]; !ok {
			return &schemaError{path: path, msg: fmt.Sprintf("unknown field %q in %s", k, typ.name)}
		}
	}
	for _, k := range typ.required {
		if obj[k] == nil {
			return &schemaError{path: path, msg: fmt.Sprintf("required field %q of %s is missing", k, typ.name)}
		}
	}
	if typ.tag != "" && obj[typ.tag] != typ.tagValue {
		return &schemaError{path: path + "." + typ.tag, msg: fmt.Sprintf("must be %q in %s", typ.tagValue, typ.name)}
	}
	for _, k := range keys {
		if obj[k] == nil {
			continue
		}
		if err := sc.value(obj[k], typ.fields[k].types, path+"."+k); err != nil {
			return err
		}
	}
	return nil
}

// untagged refuses an object whose tag names none of an abstract type's
// subtypes ({"type": "everyone"} for a BotCommandScope), naming the
// values it may take; nil when it does, or when the subtypes have no
// common tag to tell them apart.
func (sc *schema) untagged(v any, typ *apiObject, path string) *schemaError {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	tag := ""
	var values []string
	for _, name := range typ.subtypes {
		st := sc.types[name]
		if st == nil || st.tag == "" || (tag != "" && st.tag != tag) {
			return nil
		}
		tag = st.tag
		if obj[tag] == st.tagValue {
			return nil
		}
		values = append(values, st.tagValue)
	}
	if obj[tag] == nil {
		return &schemaError{path: path, msg: fmt.Sprintf("required field %q of %s is missing", tag, typ.name)}
	}
	return &schemaError{path: path + "." + tag, msg: fmt.Sprintf("%q is none of %s's: %s", fmt.Sprint(obj[tag]), typ.name, strings.Join(values, ", "))}
}

// primitive checks v against a primitive type; known is false when t is
// not one.
func primitive(v any, t string) (ok, known bool) {
	switch t {
	case "String":
		_, ok = v.(string)
	case "InputFile":
		// A file is uploaded as a multipart part and named here
		// ("attach://name"); the fake keeps no files.
		_, ok = v.(string)
	case "Boolean":
		_, ok = v.(bool)
	case "Integer":
		n, isNum := v.(json.Number)
		_, err := strconv.ParseInt(string(n), 10, 64)
		ok = isNum && err == nil
	case "Float":
		_, ok = v.(json.Number)
	default:
		return false, false
	}
	return ok, true
}

// resemblance scores how much v looks like type t, so that a refusal
// names the type the sender meant: a matching tag counts most, then each
// of v's keys that t has.
func (sc *schema) resemblance(v any, t string) int {
	obj, isObj := v.(map[string]any)
	typ := sc.types[t]
	if !isObj || typ == nil {
		return 0
	}
	best := 0
	for _, st := range typ.subtypes {
		best = max(best, sc.resemblance(v, st))
	}
	score := 0
	if typ.tag != "" && obj[typ.tag] == typ.tagValue {
		score += 1000
	}
	for k := range obj {
		if _, ok := typ.fields[k]; ok {
			score++
		}
	}
	return max(best, score)
}
