package deploy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Line int    // where it starts, 1-based
	Cmd  string // upper case: FROM, RUN, ...
	Args string // the rest, as written
}

// stage is one FROM and the instructions under it.
type stage struct {
	Image        string // after substituting the global ARG defaults
	Name         string // the AS name, "" if none
	Instructions []instruction
}

// dockerfile is a parsed Dockerfile: the ARGs before the first FROM and the stages.
type dockerfile struct {
	GlobalArgs map[string]string
	Stages     []stage
}

// parseDockerfile splits src into instructions the way Docker's parser does
// for the default escape character: a trailing backslash continues a line,
// comment lines (also inside a continuation) and blank lines are dropped.
func parseDockerfile(src string) (*dockerfile, error) {
	df := &dockerfile{GlobalArgs: map[string]string{}}
	var (
		cur      strings.Builder
		curStart int
	)
	flush := func() error {
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			return nil
		}
		cmd, args, _ := strings.Cut(text, " ")
		in := instruction{Line: curStart, Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)}
		switch {
		case in.Cmd == "FROM":
			f := strings.Fields(in.Args)
			var st stage
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				f = f[1:] // --platform=...
			}
			switch {
			case len(f) == 1:
			case len(f) == 3 && strings.EqualFold(f[1], "AS"):
				st.Name = f[2]
			default:
				return fmt.Errorf("line %d: FROM %q: want IMAGE [AS NAME]", in.Line, in.Args)
			}
			st.Image = expandArgs(f[0], df.GlobalArgs)
			df.Stages = append(df.Stages, st)
		case len(df.Stages) == 0:
			if in.Cmd != "ARG" {
				return fmt.Errorf("line %d: %s before the first FROM", in.Line, in.Cmd)
			}
			name, def, _ := strings.Cut(in.Args, "=")
			df.GlobalArgs[name] = strings.Trim(def, `"`)
		default:
			last := &df.Stages[len(df.Stages)-1]
			last.Instructions = append(last.Instructions, in)
		}
		return nil
	}
	for i, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			curStart = i + 1
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`))
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(trimmed)
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("line %d: continuation runs past the end of the file", curStart)
	}
	if len(df.Stages) == 0 {
		return nil, fmt.Errorf("no FROM")
	}
	return df, nil
}

var argRef = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)

// expandArgs substitutes ${NAME} and $NAME from vars, leaving unknown names.
func expandArgs(s string, vars map[string]string) string {
	return argRef.ReplaceAllStringFunc(s, func(ref string) string {
		m := argRef.FindStringSubmatch(ref)
		name := m[1] + m[2]
		if v, ok := vars[name]; ok {
			return v
		}
		return ref
	})
}

// execForm decodes a JSON array argument (exec form); ok is false for shell form.
func execForm(args string) (argv []string, ok bool) {
	if !strings.HasPrefix(strings.TrimSpace(args), "[") {
		return nil, false
	}
	if err := json.Unmarshal([]byte(args), &argv); err != nil {
		return nil, false
	}
	return argv, true
}

// splitFlags separates leading --flag=value words from the rest of args.
func splitFlags(args string) (flags map[string]string, rest string) {
	flags = map[string]string{}
	rest = strings.TrimSpace(args)
	for strings.HasPrefix(rest, "--") {
		word, after, _ := strings.Cut(rest, " ")
		k, v, _ := strings.Cut(strings.TrimPrefix(word, "--"), "=")
		flags[k] = v
		rest = strings.TrimSpace(after)
	}
	return flags, rest
}

// envPairs parses ENV's KEY=VALUE words (double quotes allowed) or the legacy
// "ENV KEY VALUE" form.
func envPairs(args string) map[string]string {
	env := map[string]string{}
	if !strings.Contains(strings.Fields(args)[0], "=") {
		k, v, _ := strings.Cut(args, " ")
		env[k] = strings.TrimSpace(v)
		return env
	}
	var words []string
	var b strings.Builder
	quoted := false
	for _, r := range args {
		switch {
		case r == '"':
			quoted = !quoted
		case (r == ' ' || r == '\t') && !quoted:
			if b.Len() > 0 {
				words = append(words, b.String())
				b.Reset()
			}
		default:
			b.WriteRune(r)
		}
	}
	if b.Len() > 0 {
		words = append(words, b.String())
	}
	for _, w := range words {
		k, v, _ := strings.Cut(w, "=")
		env[k] = v
	}
	return env
}

// goBuild is one `go build` found in a RUN: its flags as written, its -o
// output and its package.
type goBuild struct {
	Command string
	Output  string
	Package string
}

var goBuildRe = regexp.MustCompile(`go build\b[^&;|]*`)

// goBuilds lists the go build commands in a stage's RUN instructions.
func goBuilds(st stage) []goBuild {
	var out []goBuild
	for _, in := range st.Instructions {
		if in.Cmd != "RUN" {
			continue
		}
		for _, c := range goBuildRe.FindAllString(in.Args, -1) {
			b := goBuild{Command: strings.TrimSpace(c)}
			f := strings.Fields(c)
			for i := 0; i < len(f); i++ {
				if f[i] == "-o" && i+1 < len(f) {
					b.Output = f[i+1]
				}
			}
			b.Package = f[len(f)-1]
			out = append(out, b)
		}
	}
	return out
}

// stageFacts gathers what the checks ask of one stage.
type stageFacts struct {
	env        map[string]string
	args       map[string]string // ARG name → default
	user       string            // the last USER
	entrypoint []string
	entryShell bool
	cmd        []string // CMD in exec form
	health     []string // HEALTHCHECK CMD argv; nil if none
	healthNone bool
	copies     map[string]string // destination → "stage:source" for COPY --from
	runs       int
}

func factsOf(st stage) stageFacts {
	sf := stageFacts{env: map[string]string{}, args: map[string]string{}, copies: map[string]string{}}
	for _, in := range st.Instructions {
		switch in.Cmd {
		case "ENV":
			for k, v := range envPairs(in.Args) {
				sf.env[k] = v
			}
		case "ARG":
			k, v, _ := strings.Cut(in.Args, "=")
			sf.args[k] = strings.Trim(v, `"`)
		case "USER":
			sf.user = strings.TrimSpace(in.Args)
		case "ENTRYPOINT":
			argv, ok := execForm(in.Args)
			sf.entrypoint, sf.entryShell = argv, !ok
		case "CMD":
			sf.cmd, _ = execForm(in.Args)
		case "HEALTHCHECK":
			_, rest := splitFlags(in.Args)
			if strings.EqualFold(rest, "NONE") {
				sf.healthNone = true
				continue
			}
			if word, after, _ := strings.Cut(rest, " "); strings.EqualFold(word, "CMD") {
				if argv, ok := execForm(after); ok {
					sf.health = argv
				} else {
					sf.health = []string{"/bin/sh", "-c", after}
				}
			}
		case "COPY":
			flags, rest := splitFlags(in.Args)
			from, ok := flags["from"]
			if !ok {
				continue
			}
			f := strings.Fields(rest)
			if len(f) < 2 {
				continue
			}
			for _, src := range f[:len(f)-1] {
				sf.copies[f[len(f)-1]] = from + ":" + src
			}
		case "RUN":
			sf.runs++
		}
	}
	return sf
}

// goVersionAtLeast reports whether image tag version have (e.g. "1.26") covers
// the go.mod directive want (e.g. "1.26.8"): same or newer major.minor.
func goVersionAtLeast(have, want string) bool {
	num := func(s string) (int, int, bool) {
		p := strings.SplitN(s, ".", 3)
		if len(p) < 2 {
			return 0, 0, false
		}
		a, err1 := strconv.Atoi(p[0])
		b, err2 := strconv.Atoi(strings.SplitN(p[1], "-", 2)[0])
		return a, b, err1 == nil && err2 == nil
	}
	ha, hb, ok1 := num(have)
	wa, wb, ok2 := num(want)
	return ok1 && ok2 && (ha > wa || ha == wa && hb >= wb)
}

// checkDockerfile holds a parsed Dockerfile to what the image promises:
// built by a Go toolchain new enough for go.mod, without cgo, into a final
// stage with no shell that runs as non-root with a working HEALTHCHECK and
// otpbot as its entrypoint.
func checkDockerfile(df *dockerfile, goMod string) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if len(df.Stages) < 2 {
		return append(errs, fmt.Errorf("single stage: want a builder stage and a runtime stage (multi-stage)"))
	}
	builder, final := df.Stages[0], df.Stages[len(df.Stages)-1]
	names := map[string]bool{}
	for _, st := range df.Stages[:len(df.Stages)-1] {
		names[st.Name] = true
	}

	// The builder.
	if builder.Name != "builder" {
		fail("first stage is named %q, want FROM golang:... AS builder", builder.Name)
	}
	repo, tag, _ := strings.Cut(builder.Image, ":")
	if repo != "golang" && repo != "docker.io/library/golang" {
		fail("builder image %q is not the official golang image", builder.Image)
	} else if !goVersionAtLeast(tag, goMod) {
		fail("builder image golang:%s is older than go.mod's go %s", tag, goMod)
	}
	bf := factsOf(builder)
	builds := goBuilds(builder)
	if len(builds) == 0 {
		fail("builder stage runs no go build")
	}
	for _, b := range builds {
		cgoOff := bf.env["CGO_ENABLED"] == "0" || strings.Contains(b.Command, "CGO_ENABLED=0")
		if !cgoOff {
			fail("%s: CGO_ENABLED=0 is not set, so the binary is not static", b.Command)
		}
		if !strings.Contains(b.Command, "-trimpath") {
			fail("%s: no -trimpath (build paths would leak into the binary)", b.Command)
		}
		if b.Output == "" {
			fail("%s: no -o output", b.Command)
		}
	}
	var otpbotOut string
	for _, b := range builds {
		if b.Package == "./cmd/otpbot" {
			otpbotOut = b.Output
			if !strings.Contains(b.Command, "-X main.version=${VERSION}") && !strings.Contains(b.Command, "-X main.version=$VERSION") {
				fail("%s: the version is not stamped with -ldflags \"-X main.version=${VERSION}\"", b.Command)
			}
			if _, ok := bf.args["VERSION"]; !ok {
				fail("builder stage has no ARG VERSION, so -X main.version=${VERSION} is always empty")
			}
		}
	}
	if otpbotOut == "" {
		fail("builder stage does not go build ./cmd/otpbot")
	}

	// The runtime stage.
	if !strings.HasPrefix(final.Image, "gcr.io/distroless/static") && final.Image != "scratch" {
		fail("final image %q: want gcr.io/distroless/static... or scratch (static, no shell)", final.Image)
	}
	ff := factsOf(final)
	for dst, src := range ff.copies {
		from, _, _ := strings.Cut(src, ":")
		if !names[from] {
			fail("COPY --from=%s %s: no earlier stage is named %s", from, dst, from)
		}
	}
	if ff.runs > 0 {
		fail("final stage has RUN instructions; a distroless/scratch image has no shell to run them")
	}
	switch u, _, _ := strings.Cut(ff.user, ":"); {
	case ff.user == "":
		fail("final stage sets no USER, so the container runs as root")
	case u == "0" || u == "root":
		fail("final stage USER %s is root", ff.user)
	default:
		// Numeric, so a runtime (Kubernetes runAsNonRoot) can tell it is not root.
		if n, err := strconv.Atoi(u); err != nil || n == 0 {
			fail("final stage USER %q: want a numeric non-root uid such as 65532", ff.user)
		}
	}
	if ff.entryShell || len(ff.entrypoint) == 0 {
		fail("final stage ENTRYPOINT must be the otpbot binary in exec form, e.g. [\"/otpbot\"]")
	} else if got := ff.copies[ff.entrypoint[0]]; got != "builder:"+otpbotOut {
		fail("ENTRYPOINT %s is not the otpbot binary built in the builder stage (%s)", ff.entrypoint[0], otpbotOut)
	}
	switch {
	case ff.healthNone || ff.health == nil:
		fail("final stage has no HEALTHCHECK")
	case ff.health[0] == "/bin/sh" || ff.health[0] == "sh":
		fail("HEALTHCHECK %v needs a shell, which the runtime image lacks; use exec form", ff.health)
	case ff.copies[ff.health[0]] == "":
		fail("HEALTHCHECK runs %s, which is not copied into the final stage", ff.health[0])
	}
	return errs
}

func TestDockerfile(t *testing.T) {
	src := readRepoFile(t, "Dockerfile")
	df, err := parseDockerfile(src)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	reportErrors(t, "Dockerfile", checkDockerfile(df, goDirective(t)))

	// Every package the builder compiles exists here as a main package.
	for _, b := range goBuilds(df.Stages[0]) {
		dir := filepath.Join(repoRoot(t), filepath.FromSlash(b.Package))
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		isMain := false
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			if b, err := os.ReadFile(f); err == nil && regexp.MustCompile(`(?m)^package main\b`).Match(b) {
				isMain = true
			}
		}
		if !isMain {
			t.Errorf("Dockerfile builds %s, which is not a main package in this repository", b.Package)
		}
	}
}

// imageBuild is what the Dockerfile's builder stage produced here.
type imageBuild struct {
	final stageFacts        // the runtime stage
	files map[string]string // path in the image → the binary built here
	err   error
}

var (
	imageBuildOnce sync.Once
	imageBuildDir  string // removed by TestMain
	imageBuildRes  imageBuild
)

// dockerVersion is the VERSION build argument the tests build with.
const dockerVersion = "v0.0.0-dockertest"

// builtImage runs the builder stage's go build commands here, as the image
// build would (same flags and environment, ARG defaults substituted,
// VERSION=dockerVersion, /out moved to a temp dir), once for all tests.
func builtImage(t *testing.T) imageBuild {
	t.Helper()
	root := repoRoot(t)
	src := readRepoFile(t, "Dockerfile")
	imageBuildOnce.Do(func() {
		imageBuildRes = buildImage(root, src)
	})
	if imageBuildRes.err != nil {
		t.Fatal(imageBuildRes.err)
	}
	return imageBuildRes
}

func buildImage(root, src string) imageBuild {
	df, err := parseDockerfile(src)
	if err != nil {
		return imageBuild{err: fmt.Errorf("dockerfile: %w", err)}
	}
	builder := df.Stages[0]
	bf := factsOf(builder)
	vars := map[string]string{}
	for k, v := range bf.args {
		vars[k] = v
	}
	vars["VERSION"] = dockerVersion
	imageBuildDir, err = os.MkdirTemp("", "otpbot-deploy-build-")
	if err != nil {
		return imageBuild{err: err}
	}
	built := map[string]string{} // builder path → local path
	for _, b := range goBuilds(builder) {
		line := expandArgs(b.Command, vars)
		local := filepath.Join(imageBuildDir, path.Base(b.Output))
		line = strings.ReplaceAll(line, b.Output, local)
		cmd := exec.Command("sh", "-c", line)
		cmd.Dir = root
		cmd.Env = os.Environ()
		for k, v := range bf.env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		if o, err := cmd.CombinedOutput(); err != nil {
			return imageBuild{err: fmt.Errorf("%s: %v\n%s", line, err, o)}
		}
		built[b.Output] = local
	}
	res := imageBuild{final: factsOf(df.Stages[len(df.Stages)-1]), files: map[string]string{}}
	for dst, from := range res.final.copies {
		_, src, _ := strings.Cut(from, ":")
		if built[src] != "" {
			res.files[dst] = built[src]
		}
	}
	return res
}

func TestMain(m *testing.M) {
	code := m.Run()
	if imageBuildDir != "" {
		os.RemoveAll(imageBuildDir)
	}
	os.Exit(code)
}

// localOf is the binary built here for a path in the image.
func (b imageBuild) localOf(t *testing.T, imagePath string) string {
	t.Helper()
	p := b.files[imagePath]
	if p == "" {
		t.Fatalf("%s in the image is copied from %q, which no go build in the builder stage produced", imagePath, b.final.copies[imagePath])
	}
	return p
}

// TestDockerfileBuildCommands runs what the builder stage built: otpbot
// reports the stamped version, every binary is static, and the HEALTHCHECK
// binary tells a healthy server from a failing one.
func TestDockerfileBuildCommands(t *testing.T) {
	img := builtImage(t)
	ff := img.final
	localOf := func(p string) string { return img.localOf(t, p) }
	for _, p := range img.files {
		if err := checkStatic(p); err != nil {
			t.Error(err)
		}
	}

	otpbot := localOf(ff.entrypoint[0])
	got, err := exec.Command(otpbot, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("otpbot version: %v\n%s", err, got)
	}
	if !strings.HasPrefix(string(got), "otpbot "+dockerVersion) {
		t.Errorf("otpbot version printed %q, want the stamped %s", got, dockerVersion)
	}

	// The HEALTHCHECK as the image runs it: argv from the Dockerfile, the
	// environment from its ENV lines, OTPBOT_HTTP_LISTEN pointed at a server here.
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	if _, ok := ff.env["OTPBOT_HTTP_LISTEN"]; !ok {
		t.Error("the image sets no OTPBOT_HTTP_LISTEN; otpbot's default 127.0.0.1:8080 is unreachable from outside the container")
	}
	probe := func() error {
		cmd := exec.Command(localOf(ff.health[0]), ff.health[1:]...)
		cmd.Env = []string{"OTPBOT_HTTP_LISTEN=" + srv.Listener.Addr().String()}
		o, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, o)
		}
		return nil
	}
	if err := probe(); err != nil {
		t.Errorf("HEALTHCHECK against a healthy server failed: %v", err)
	}
	status.Store(http.StatusServiceUnavailable)
	if err := probe(); err == nil {
		t.Error("HEALTHCHECK against a server answering 503 passed")
	}
}

// TestDockerfileChecksCatchMistakes breaks the real Dockerfile one way at a
// time and wants checkDockerfile to name each break.
func TestDockerfileChecksCatchMistakes(t *testing.T) {
	src := readRepoFile(t, "Dockerfile")
	tests := []struct {
		name, old, new, want string
	}{
		{"root user", "USER 65532:65532", "USER root", "is root"},
		{"no user", "USER 65532:65532", "", "no USER"},
		{"named user", "USER 65532:65532", "USER nonroot", "numeric"},
		{"cgo on", "ENV CGO_ENABLED=0", "ENV CGO_ENABLED=1", "CGO_ENABLED=0"},
		{"no healthcheck", "HEALTHCHECK", "# HEALTHCHECK", "no HEALTHCHECK"},
		{"shell healthcheck", `CMD ["/healthcheck"]`, "CMD wget -q http://127.0.0.1:8080/healthz", "needs a shell"},
		{"shell entrypoint", `ENTRYPOINT ["/otpbot"]`, "ENTRYPOINT /otpbot", "ENTRYPOINT"},
		{"entrypoint not the binary", `ENTRYPOINT ["/otpbot"]`, `ENTRYPOINT ["/healthcheck"]`, "not the otpbot binary"},
		{"builder renamed", "AS builder", "AS build", `want FROM golang:... AS builder`},
		{"old go", "ARG GO_VERSION=1.26", "ARG GO_VERSION=1.21", "older than go.mod"},
		{"no version stamp", "-X main.version=${VERSION}", "", "version is not stamped"},
		{"no trimpath", "go build -trimpath -ldflags \"-s -w -X", "go build -ldflags \"-s -w -X", "-trimpath"},
		{"shell image", "gcr.io/distroless/static-debian12:nonroot", "debian:12-slim", "want gcr.io/distroless/static"},
		{"run in final stage", "WORKDIR /data", "RUN mkdir -p /data\nWORKDIR /data", "RUN instructions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(src, tt.old) {
				t.Fatalf("the Dockerfile no longer contains %q; update this mutation", tt.old)
			}
			df, err := parseDockerfile(strings.Replace(src, tt.old, tt.new, 1))
			if err != nil {
				t.Fatal(err)
			}
			wantErrorMentioning(t, checkDockerfile(df, goDirective(t)), tt.want)
		})
	}
	t.Run("single stage", func(t *testing.T) {
		df, err := parseDockerfile("FROM golang:1.26\nRUN CGO_ENABLED=0 go build -trimpath -o /otpbot ./cmd/otpbot\nENTRYPOINT [\"/otpbot\"]\n")
		if err != nil {
			t.Fatal(err)
		}
		wantErrorMentioning(t, checkDockerfile(df, goDirective(t)), "multi-stage")
	})
}

func TestDockerignoreKeepsSources(t *testing.T) {
	var patterns []string
	for _, line := range strings.Split(readRepoFile(t, ".dockerignore"), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	ignored := func(p string) bool {
		out := false
		for _, pat := range patterns {
			neg := strings.HasPrefix(pat, "!")
			pat = strings.Trim(strings.TrimPrefix(pat, "!"), "/")
			if dockerignoreMatch(pat, p) {
				out = !neg
			}
		}
		return out
	}
	for _, p := range []string{"go.mod", "go.sum", "cmd/otpbot/main.go", "deploy/healthcheck/main.go", "event.go", "templates/builtin/x.tmpl"} {
		if ignored(p) {
			t.Errorf(".dockerignore leaves %s out of the build context; the image build needs it", p)
		}
	}
	for _, p := range []string{".git/HEAD", "bin/otpbot", "otpbot", "otpbot.db", "store/bolt/testdata/x.db", ".env", "deploy/otpbot.env", "deploy/config.yaml"} {
		if !ignored(p) {
			t.Errorf(".dockerignore sends %s into the build context (build output, data or secrets)", p)
		}
	}
}

// dockerignoreMatch matches a .dockerignore pattern against a slash path the
// way Docker does for the forms used here: a pattern matches a path or any of
// its parent directories, and a leading **/ matches at any depth.
func dockerignoreMatch(pattern, p string) bool {
	anyDepth := strings.HasPrefix(pattern, "**/")
	pattern = strings.TrimPrefix(pattern, "**/")
	parts := strings.Split(p, "/")
	for end := 1; end <= len(parts); end++ {
		starts := []int{0}
		if anyDepth {
			starts = starts[:0]
			for s := 0; s < end; s++ {
				starts = append(starts, s)
			}
		}
		for _, s := range starts {
			if ok, _ := path.Match(pattern, strings.Join(parts[s:end], "/")); ok {
				return true
			}
		}
	}
	return false
}
