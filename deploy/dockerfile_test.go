package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int    // where it starts, 1-based
	cmd  string // upper case: FROM, RUN, COPY, ...
	args string // the rest, as written
}

func (in instruction) String() string { return fmt.Sprintf("line %d: %s %s", in.line, in.cmd, in.args) }

// stage is one FROM and the instructions after it.
type stage struct {
	from instruction
	// base and name are FROM's image, global ARGs substituted, and its AS
	// name.
	base, name string
	body       []instruction
}

// dockerfile is a parsed Dockerfile: the parser directives, the global
// ARGs (before the first FROM) with their defaults, and the stages.
type dockerfile struct {
	directives map[string]string
	args       map[string]string
	stages     []*stage
}

var directive = regexp.MustCompile(`^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$`)

// parseDockerfile parses the subset of the Dockerfile syntax that the
// BuildKit frontend reads the same way: parser directives at the top,
// comment lines (also inside a continuation), backslash continuations,
// one instruction per logical line. It refuses what it does not know
// (heredocs, another escape character) rather than misread it.
func parseDockerfile(data []byte) (*dockerfile, error) {
	d := &dockerfile{directives: map[string]string{}, args: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	var ins []instruction
	var cur *instruction
	head := true // parser directives come first, before any other line
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		trimmed := strings.TrimSpace(line)
		if head {
			if m := directive.FindStringSubmatch(trimmed); m != nil {
				d.directives[strings.ToLower(m[1])] = m[2]
				continue
			}
			head = false
		}
		if trimmed == "" && cur == nil || strings.HasPrefix(trimmed, "#") {
			continue
		}
		cont := strings.HasSuffix(line, `\`)
		text := strings.TrimSuffix(line, `\`)
		if cur == nil {
			cmd, rest, _ := strings.Cut(strings.TrimSpace(text), " ")
			cur = &instruction{line: n, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(rest)}
		} else {
			cur.args += " " + strings.TrimSpace(text)
		}
		if !cont {
			cur.args = strings.TrimSpace(cur.args)
			if strings.Contains(cur.args, "<<") {
				return nil, fmt.Errorf("%s: heredocs are not parsed here", cur)
			}
			ins = append(ins, *cur)
			cur = nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: the file ends inside a continuation", cur.line)
	}
	if e, ok := d.directives["escape"]; ok && e != `\` {
		return nil, fmt.Errorf("escape directive %q is not parsed here", e)
	}
	for _, in := range ins {
		switch {
		case in.cmd == "FROM":
			st, err := d.parseFrom(in)
			if err != nil {
				return nil, err
			}
			d.stages = append(d.stages, st)
		case len(d.stages) == 0 && in.cmd == "ARG":
			k, v, _ := strings.Cut(in.args, "=")
			d.args[k] = v
		case len(d.stages) == 0:
			return nil, fmt.Errorf("%s: only ARG may come before the first FROM", in)
		default:
			st := d.stages[len(d.stages)-1]
			st.body = append(st.body, in)
		}
	}
	if len(d.stages) == 0 {
		return nil, fmt.Errorf("no FROM")
	}
	return d, nil
}

func (d *dockerfile) parseFrom(in instruction) (*stage, error) {
	f := strings.Fields(in.args)
	for len(f) > 0 && strings.HasPrefix(f[0], "--") {
		f = f[1:] // --platform
	}
	st := &stage{from: in}
	switch {
	case len(f) == 1:
	case len(f) == 3 && strings.EqualFold(f[1], "AS"):
		st.name = f[2]
	default:
		return nil, fmt.Errorf("%s: want FROM IMAGE [AS NAME]", in)
	}
	st.base = os.Expand(f[0], func(k string) string { return d.args[k] })
	return st, nil
}

// final is the last stage, the image that is shipped.
func (d *dockerfile) final() *stage { return d.stages[len(d.stages)-1] }

// all returns the stage's instructions of kind cmd.
func (s *stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.body {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// execForm decodes an exec-form (JSON array) argument list.
func execForm(in instruction) ([]string, error) {
	var v []string
	if err := json.Unmarshal([]byte(in.args), &v); err != nil {
		return nil, fmt.Errorf("%s: want the exec form, a JSON array of strings: %v", in, err)
	}
	return v, nil
}

// copyArgs splits COPY's flags (--from=build) from its sources and
// destination.
func copyArgs(in instruction) (flags map[string]string, src []string, dst string) {
	flags = map[string]string{}
	f := strings.Fields(in.args)
	for len(f) > 0 && strings.HasPrefix(f[0], "--") {
		k, v, _ := strings.Cut(strings.TrimPrefix(f[0], "--"), "=")
		flags[k] = v
		f = f[1:]
	}
	if len(f) < 2 {
		return flags, nil, ""
	}
	return flags, f[:len(f)-1], f[len(f)-1]
}

// image is what the manifests need to know of the image the Dockerfile
// builds.
type image struct {
	binary   string   // the cairn binary's path, ENTRYPOINT's first word
	uid, gid int64    // USER
	volumes  []string // VOLUME
	ports    []int32  // EXPOSE
}

func readDockerfile(t *testing.T) *dockerfile {
	t.Helper()
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	d, err := parseDockerfile(data)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	return d
}

// goVersion is go.mod's go line.
func goVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	return string(m[1])
}

// checkDockerfile returns every way d falls short of the image the
// deployment needs, and what it builds.
func checkDockerfile(d *dockerfile, goVer string) (image, []error) {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	var img image
	if len(d.stages) != 2 {
		fail("want 2 stages (build, then the image), got %d", len(d.stages))
		return img, errs
	}
	build, final := d.stages[0], d.final()
	if build.name == "" {
		fail("%s: the build stage needs a name (AS build) for COPY --from", build.from)
	}

	// Build stage: the Go that go.mod names, no cgo, -trimpath, cmd/cairn.
	if want := "golang:" + goVer; build.base != want && !strings.HasPrefix(build.base, want+"-") {
		fail("%s: build image %q, want %s[-variant], go.mod's go %s", build.from, build.base, want, goVer)
	}
	var out string
	cgoOff := false
	for _, in := range build.all("ENV") {
		cgoOff = cgoOff || slices.Contains(strings.Fields(in.args), "CGO_ENABLED=0")
	}
	builds := 0
	for _, in := range build.all("RUN") {
		if !strings.Contains(in.args, "go build") {
			continue
		}
		builds++
		f := strings.Fields(in.args)
		if !cgoOff && !slices.Contains(f, "CGO_ENABLED=0") {
			fail("%s: go build without CGO_ENABLED=0: the binary must be static", in)
		}
		if !slices.Contains(f, "-trimpath") {
			fail("%s: go build without -trimpath", in)
		}
		if !slices.Contains(f, "./cmd/cairn") {
			fail("%s: go build does not build ./cmd/cairn", in)
		}
		if i := slices.Index(f, "-o"); i >= 0 && i+1 < len(f) {
			out = f[i+1]
		} else {
			fail("%s: go build without -o PATH", in)
		}
		if strings.Contains(in.args, "--mount") && d.directives["syntax"] == "" {
			fail("%s: RUN --mount needs BuildKit's syntax directive (# syntax=docker/dockerfile:1)", in)
		}
	}
	if builds != 1 {
		fail("the build stage runs go build %d times, want once", builds)
	}

	// Final stage: distroless static (CA certificates, no shell), nothing
	// run in it, a numeric non-root user, the binary as ENTRYPOINT.
	if !strings.HasPrefix(final.base, "gcr.io/distroless/static") {
		fail("%s: final image %q, want gcr.io/distroless/static (CA certificates, no shell or libc)", final.from, final.base)
	}
	if runs := final.all("RUN"); len(runs) > 0 {
		fail("%s: the final image runs nothing (distroless has no shell): do it in the build stage", runs[0])
	}
	users := final.all("USER")
	if len(users) != 1 {
		fail("the final stage sets USER %d times, want once", len(users))
	} else {
		u, g, hasG := strings.Cut(users[0].args, ":")
		var err error
		if img.uid, err = strconv.ParseInt(u, 10, 32); err != nil || img.uid == 0 {
			fail("%s: want a numeric non-root uid (Kubernetes' runAsNonRoot checks numbers), got %q", users[0], u)
		}
		img.gid = img.uid
		if hasG {
			if img.gid, err = strconv.ParseInt(g, 10, 32); err != nil || img.gid == 0 {
				fail("%s: want a numeric non-root gid, got %q", users[0], g)
			}
		}
	}
	if eps := final.all("ENTRYPOINT"); len(eps) != 1 {
		fail("the final stage sets ENTRYPOINT %d times, want once", len(eps))
	} else if ep, err := execForm(eps[0]); err != nil {
		errs = append(errs, err)
	} else if len(ep) != 1 || !path.IsAbs(ep[0]) || path.Base(ep[0]) != "cairn" {
		fail("%s: want [\"/ABSOLUTE/PATH/cairn\"]", eps[0])
	} else {
		img.binary = ep[0]
	}
	copied := false
	for _, in := range final.all("COPY") {
		flags, src, dst := copyArgs(in)
		if flags["from"] == build.name && slices.Equal(src, []string{out}) {
			copied = true
			if dst != img.binary {
				fail("%s: the binary lands at %s, ENTRYPOINT runs %s", in, dst, img.binary)
			}
		}
	}
	if !copied {
		fail("the final stage copies no %s --from=%s", out, build.name)
	}
	for _, in := range final.all("VOLUME") {
		v, err := execForm(in)
		if err != nil {
			errs = append(errs, err)
		}
		img.volumes = append(img.volumes, v...)
	}
	if len(img.volumes) == 0 {
		fail("the final stage declares no VOLUME for the data directory")
	}
	for _, vol := range img.volumes {
		// The directory must belong to USER, or serve cannot write it.
		owned := false
		for _, in := range final.all("COPY") {
			flags, _, dst := copyArgs(in)
			owned = owned || strings.TrimSuffix(dst, "/") == vol && flags["chown"] == fmt.Sprintf("%d:%d", img.uid, img.gid)
		}
		if !owned {
			fail("VOLUME %s: no COPY --chown=%d:%d creates it, so the user cannot write it", vol, img.uid, img.gid)
		}
	}
	for _, in := range final.all("EXPOSE") {
		for _, p := range strings.Fields(in.args) {
			n, err := strconv.ParseInt(strings.TrimSuffix(p, "/tcp"), 10, 32)
			if err != nil {
				fail("%s: port %q", in, p)
			}
			img.ports = append(img.ports, int32(n))
		}
	}
	return img, errs
}

// TestDockerfile checks deploy/Dockerfile's structure: no Docker engine
// runs here to build it.
func TestDockerfile(t *testing.T) {
	d := readDockerfile(t)
	img, errs := checkDockerfile(d, goVersion(t))
	for _, err := range errs {
		t.Error(err)
	}
	for _, p := range []int32{4222, 6222, 7222, 9464} {
		if !slices.Contains(img.ports, p) {
			t.Errorf("EXPOSE lacks %d", p)
		}
	}
	if !slices.Contains(img.volumes, "/data") {
		t.Errorf("VOLUME %v lacks /data", img.volumes)
	}
}

// TestDockerfileChecks feeds checkDockerfile broken Dockerfiles: each must
// be refused for its own reason, so that TestDockerfile can fail.
func TestDockerfileChecks(t *testing.T) {
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	good := string(data)
	for _, tc := range []struct{ name, old, new, want string }{
		{"cgo", "CGO_ENABLED=0 ", "", "CGO_ENABLED=0"},
		{"trimpath", "-trimpath", "", "-trimpath"},
		{"root", "USER 65532:65532", "USER 0", "non-root uid"},
		{"named user", "USER 65532:65532", "USER nonroot", "numeric"},
		{"base", "gcr.io/distroless/static-debian12:nonroot", "debian:bookworm-slim", "distroless"},
		{"go version", "ARG GO_VERSION=1", "ARG GO_VERSION=0", "go.mod's go"},
		{"entrypoint", `ENTRYPOINT ["/usr/local/bin/cairn"]`, `ENTRYPOINT ["/cairn"]`, "ENTRYPOINT runs"},
		{"shell form", `ENTRYPOINT ["/usr/local/bin/cairn"]`, `ENTRYPOINT /usr/local/bin/cairn`, "exec form"},
		{"run in final", "USER 65532:65532", "RUN mkdir /x\nUSER 65532:65532", "runs nothing"},
		{"volume owner", "--chown=65532:65532 /out/data", "/out/data", "cannot write"},
		{"one stage", "FROM gcr.io/distroless/static-debian12:nonroot\n", "", "2 stages"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.old) {
				t.Fatalf("the Dockerfile has no %q to break", tc.old)
			}
			d, err := parseDockerfile([]byte(strings.ReplaceAll(good, tc.old, tc.new)))
			if err != nil {
				t.Fatal(err)
			}
			_, errs := checkDockerfile(d, goVersion(t))
			for _, err := range errs {
				if strings.Contains(err.Error(), tc.want) {
					return
				}
			}
			t.Errorf("no error mentions %q: %v", tc.want, errs)
		})
	}
}

// TestParseDockerfile: continuations, comments inside them, directives and
// global ARGs.
func TestParseDockerfile(t *testing.T) {
	d, err := parseDockerfile([]byte("# syntax=docker/dockerfile:1\n# a comment\nARG V=1.2\n\nFROM golang:${V} AS build\nRUN a \\\n  # inside\n  b \\\n  c\nFROM scratch\nCOPY --from=build --chown=1:1 /x /y\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d.directives["syntax"] != "docker/dockerfile:1" || d.args["V"] != "1.2" || len(d.stages) != 2 {
		t.Fatalf("directives %v, args %v, %d stages", d.directives, d.args, len(d.stages))
	}
	if b := d.stages[0]; b.base != "golang:1.2" || b.name != "build" || len(b.body) != 1 || b.body[0].args != "a b c" || b.body[0].line != 6 {
		t.Errorf("build stage %+v", b)
	}
	flags, src, dst := copyArgs(d.final().body[0])
	if flags["from"] != "build" || flags["chown"] != "1:1" || !slices.Equal(src, []string{"/x"}) || dst != "/y" {
		t.Errorf("COPY: %v %v %v", flags, src, dst)
	}
	for _, bad := range []string{"RUN x\n", "FROM a\nRUN x \\\n", "FROM a b c d\n", "FROM a\nRUN <<EOF\nx\nEOF\n"} {
		if _, err := parseDockerfile([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// ignored reports whether the .dockerignore patterns exclude rel (a
// slash-separated path in the build context). It knows the patterns
// Dockerfile.dockerignore uses: a path prefix matched with path.Match per
// element, and "**/" for any depth. It fails on "!" exceptions, which it
// does not implement.
func ignored(patterns []string, rel string) (bool, error) {
	parts := strings.Split(rel, "/")
	for _, p := range patterns {
		if strings.HasPrefix(p, "!") {
			return false, fmt.Errorf("pattern %q: exceptions are not implemented here", p)
		}
		pp := strings.Split(strings.Trim(p, "/"), "/")
		anyDepth := pp[0] == "**"
		if anyDepth {
			pp = pp[1:]
		}
		for start := 0; start < len(parts); start++ {
			if start > 0 && !anyDepth {
				break
			}
			if len(parts)-start < len(pp) {
				break
			}
			match := true
			for i, q := range pp {
				ok, err := path.Match(q, parts[start+i])
				if err != nil {
					return false, fmt.Errorf("pattern %q: %w", p, err)
				}
				match = match && ok
			}
			if match {
				return true, nil
			}
		}
	}
	return false, nil
}

// TestDockerignore: the build context keeps every file go build reads for
// cmd/cairn (and go.mod, go.sum), without cgo, and leaves out the rest
// that matters (.git, data directories).
func TestDockerignore(t *testing.T) {
	data, err := os.ReadFile("Dockerfile.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	for _, want := range []string{".git/config", ".cairn/signing.nk", "bin/cairn", "cmd/cairn/serve_test.go"} {
		if ok, err := ignored(patterns, want); err != nil || !ok {
			t.Errorf("%s is in the build context (%v)", want, err)
		}
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command lists what the image builds: %v", err)
	}
	cmd := exec.Command(goCmd, "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}", "./cmd/cairn")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("CGO_ENABLED=0 go list ./cmd/cairn: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"go.mod", "go.sum"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		rel, err := filepath.Rel(root, f[0])
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // a module from the module cache
		}
		for _, name := range f[1:] {
			files = append(files, filepath.ToSlash(filepath.Join(rel, name)))
		}
	}
	if len(files) < 10 {
		t.Fatalf("go list found %d files of cmd/cairn: %s", len(files), out)
	}
	for _, f := range files {
		if ok, err := ignored(patterns, f); err != nil || ok {
			t.Errorf("%s, which go build reads, is left out of the build context (%v)", f, err)
		}
	}
}
