package ui

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"
)

// message is one translation key as the code uses it.
type message struct {
	fallback string // the English text given in the code
	plural   bool   // used with lang.XN
	pos      string // where it is first used
}

// usedMessages scans the package's Go sources (tests left out) for
// lang.X and lang.XN calls, whose key must be a string literal and whose
// fallback a constant string. lang.L and lang.N, keyed by their English
// text, are refused: keys keep translations stable when the English
// changes.
func usedMessages(t *testing.T) map[string]message {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, p := range pkgs {
		for _, name := range slices.Sorted(maps.Keys(p.Files)) {
			files = append(files, p.Files[name])
		}
	}
	consts := map[string]string{}
	for _, f := range files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i < len(vs.Values) {
						if s, ok := stringValue(vs.Values[i], consts); ok {
							consts[name.Name] = s
						}
					}
				}
			}
		}
	}
	used := map[string]message{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "lang" {
				return true
			}
			pos := fset.Position(call.Pos()).String()
			var m message
			switch sel.Sel.Name {
			case "X":
			case "XN":
				m.plural = true
			case "L", "N", "Localize", "LocalizePlural", "LocalizeKey", "LocalizePluralKey":
				t.Errorf("%s: use lang.X or lang.XN with a key, not lang.%s", pos, sel.Sel.Name)
				return true
			default:
				return true
			}
			key, ok1 := stringValue(call.Args[0], nil)
			fallback, ok2 := stringValue(call.Args[1], consts)
			if !ok1 || !ok2 {
				t.Errorf("%s: the key and the English text must be constant strings", pos)
				return true
			}
			m.fallback, m.pos = fallback, pos
			if prev, ok := used[key]; ok && (prev.fallback != m.fallback || prev.plural != m.plural) {
				t.Errorf("%s: key %q is used with another text or form at %s", pos, key, prev.pos)
			}
			if _, ok := used[key]; !ok {
				used[key] = m
			}
			return true
		})
	}
	if len(used) < 100 {
		t.Fatalf("found only %d keys: is the scan broken?", len(used))
	}
	return used
}

// stringValue evaluates a constant string expression: literals, names of
// constants and +.
func stringValue(e ast.Expr, consts map[string]string) (string, bool) {
	switch x := e.(type) {
	case *ast.BasicLit:
		if x.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(x.Value)
		return s, err == nil
	case *ast.Ident:
		s, ok := consts[x.Name]
		return s, ok
	case *ast.ParenExpr:
		return stringValue(x.X, consts)
	case *ast.BinaryExpr:
		if x.Op != token.ADD {
			return "", false
		}
		a, ok1 := stringValue(x.X, consts)
		b, ok2 := stringValue(x.Y, consts)
		return a + b, ok1 && ok2
	}
	return "", false
}

// pluralForms are the CLDR plural forms each bundled language needs for
// an integer count: German and English say "1 Datei"/"1 file" and
// "2 Dateien"/"2 files"; Chinese has one form.
var pluralForms = map[string][]string{
	"en":      {"one", "other"},
	"de":      {"one", "other"},
	"zh-Hans": {"other"},
}

// bundled reads translations/*.json: language → key → forms (a plain
// string is the form "other").
func bundled(t *testing.T) map[string]map[string]map[string]string {
	t.Helper()
	paths, err := filepath.Glob("translations/*.json")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		msgs := map[string]map[string]string{}
		for k, v := range raw {
			var s string
			if json.Unmarshal(v, &s) == nil {
				msgs[k] = map[string]string{"other": s}
				continue
			}
			var forms map[string]string
			if err := json.Unmarshal(v, &forms); err != nil {
				t.Fatalf("%s: key %q is neither a string nor plural forms: %v", p, k, err)
			}
			forms["plural"] = "" // marks an object
			msgs[k] = forms
		}
		out[strings.TrimSuffix(filepath.Base(p), ".json")] = msgs
	}
	return out
}

var placeholder = regexp.MustCompile(`{{\s*\.(\w+)\s*}}`)

// placeholders lists the {{.Name}}s of a template.
func placeholders(s string) []string {
	var out []string
	for _, m := range placeholder.FindAllStringSubmatch(s, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	slices.Sort(out)
	return out
}

// TestTranslationsComplete fails when a key the code uses is missing
// from a bundled language, a bundled file has a key the code no longer
// uses, a plural lacks a form its language needs, English differs from
// the code's fallback, or a translation's {{.Names}} differ from the
// English ones.
func TestTranslationsComplete(t *testing.T) {
	used := usedMessages(t)
	langs := bundled(t)
	if got := slices.Sorted(maps.Keys(langs)); !slices.Equal(got, slices.Sorted(maps.Keys(pluralForms))) {
		t.Fatalf("bundled languages %q; each needs its plural forms in pluralForms", got)
	}
	for _, tag := range slices.Sorted(maps.Keys(langs)) {
		msgs := langs[tag]
		for _, key := range slices.Sorted(maps.Keys(used)) {
			m := used[key]
			forms, ok := msgs[key]
			if !ok {
				t.Errorf("%s.json: missing %q (%s)", tag, key, m.pos)
				continue
			}
			_, isPlural := forms["plural"]
			delete(forms, "plural")
			switch {
			case m.plural && !isPlural:
				t.Errorf("%s.json: %q is counted (lang.XN) and needs plural forms %q", tag, key, pluralForms[tag])
				continue
			case !m.plural && isPlural:
				t.Errorf("%s.json: %q is not counted (lang.X) but has plural forms", tag, key)
				continue
			case m.plural && !slices.Equal(slices.Sorted(maps.Keys(forms)), pluralForms[tag]):
				t.Errorf("%s.json: %q has forms %q, want %q", tag, key, slices.Sorted(maps.Keys(forms)), pluralForms[tag])
			}
			if tag == "en" && forms["other"] != m.fallback {
				t.Errorf("en.json: %q is %q but the code's fallback is %q (%s)", key, forms["other"], m.fallback, m.pos)
			}
			for form, text := range forms {
				got, want := placeholders(text), placeholders(m.fallback)
				// A "one" form may leave the count out ("A transfer is
				// still running").
				if form == "one" {
					notCount := func(s string) bool { return s == "Count" }
					got, want = slices.DeleteFunc(got, notCount), slices.DeleteFunc(want, notCount)
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s.json: %q (%s) uses %q, the English %q", tag, key, form, got, want)
				}
				if _, err := template.New(key).Parse(text); err != nil {
					t.Errorf("%s.json: %q (%s): %v", tag, key, form, err)
				}
			}
		}
		for _, key := range slices.Sorted(maps.Keys(msgs)) {
			if _, ok := used[key]; !ok {
				t.Errorf("%s.json: %q is not used by the code", tag, key)
			}
		}
	}
}
