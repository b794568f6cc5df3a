package main

// Data-driven golden transcripts of the CLI, in the style of cockroachdb/pebble's testdata
// files: every file in testdata/golden holds cases of the form
//
//	# comment
//	mask: REGEX            (optional, repeatable: matches are replaced by "<masked>", except
//	                       a (?P<keep>...) group, which stays)
//	autoq COMMAND ARGS...  (or: cat PATH, ls DIR)
//	----
//	the expected stdout, then "stderr:" and the expected stderr when there is any, then
//	"exit N" when N != 0
//	<blank line>
//
// Besides autoq, a case can run the fixture commands of golden_fixtures_test.go (cat, ls,
// write, copy, mkdir, chmod, fixture). Arguments are split at spaces; $TMP (one directory per file, shared by its cases in
// order, so a case can read what an earlier one wrote), $SYNTH (the built-in synthetic
// model as a Hugging Face directory), $SYNTHDATA (its token-id data, .jsonl), $REAL, $TOK
// and $TEXT (../shared/data: stories260K.bin, tok512.bin, tinystories_val.txt) are
// expanded; in outputs they are written back as the variable names. A file whose first
// line is "require: shared-data" is skipped when the real data is absent; one whose first
// line is "require: full" runs only with AUTOQ_GOLDEN_FULL=1 (the README's long runs).
//
//	go test ./cmd/autoq -run TestGolden -rewrite       # rewrite the expectations
//
// A change of output is then a reviewed diff of testdata/golden.

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/require"
)

var rewriteGolden = flag.Bool("rewrite", false, "rewrite testdata/golden expectations with the actual output")

// goldenCase is one command and its expected transcript.
type goldenCase struct {
	line     int // of the command
	masks    []*regexp.Regexp
	cmd      string
	expected string
}

// alwaysMasked are the wall-clock figures in any output: they change from run to run.
var alwaysMasked = []*regexp.Regexp{
	regexp.MustCompile(` *\b[0-9]+(\.[0-9]+)? ?(ms|µs|s)\b`),                       // "1.2s", "in 0.01s"
	regexp.MustCompile(`[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)? ?(tokens/s|GB/s)`),        // rates
	regexp.MustCompile(`"[a-z_]*(seconds|_ms|per_sec)": -?[0-9.]+(e[+-]?[0-9]+)?`), // JSON timings
	// why there is no GPU differs between builds (plain: built without CUDA; cuda-tagged: the driver's reason)
	regexp.MustCompile(`\(no CUDA device[^\n]*\)`),
	// random suffixes of temporary names
	regexp.MustCompile(`\.tmp-[0-9]+`),
	regexp.MustCompile(`\.autoq-(tmp|probe)-[0-9-]+`),
}

// goldenMasks names regular expressions a case can ask for with "mask: @name".
var goldenMasks = map[string]string{
	// the last column of a table (eval's tok/s)
	"last-column": `(?m)^(?P<keep> .*[0-9%]) +[0-9]+$`,
	// wall times: "1.2s", "6.73 ms", "0.0s"
	"durations": `[0-9]+(\.[0-9]+)? ?(ms|µs|s)\b`,
	// throughput figures: "12.3 tokens/s", "4.5 GB/s"
	"rates": `[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)? ?(tokens/s|GB/s|tok/s)`,
}

func parseGolden(t *testing.T, path string) (req string, cases []goldenCase) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(string(b), "\n")
	i := 0
	if len(lines) > 0 && strings.HasPrefix(lines[0], "require: ") {
		req = strings.TrimPrefix(lines[0], "require: ")
		i = 1
	}
	var cur goldenCase
	for i < len(lines) {
		l := lines[i]
		switch {
		case strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#"):
			i++
		case strings.HasPrefix(l, "mask: "):
			expr := strings.TrimPrefix(l, "mask: ")
			if named, ok := goldenMasks[strings.TrimPrefix(expr, "@")]; ok && strings.HasPrefix(expr, "@") {
				expr = named
			}
			re, err := regexp.Compile(expr)
			if err != nil {
				t.Fatalf("%s:%d: bad mask: %v", path, i+1, err)
			}
			cur.masks = append(cur.masks, re)
			i++
		default:
			cur.cmd, cur.line = l, i+1
			i++
			if i >= len(lines) || lines[i] != "----" {
				t.Fatalf("%s:%d: want ---- after the command", path, cur.line)
			}
			i++
			var exp []string
			// The expectation runs to the next line that is exactly "====" or the end.
			for i < len(lines) && lines[i] != "====" {
				exp = append(exp, lines[i])
				i++
			}
			i++ // skip ====
			cur.expected = strings.TrimRight(strings.Join(exp, "\n"), "\n")
			cases = append(cases, cur)
			cur = goldenCase{}
		}
	}
	return req, cases
}

func writeGolden(path, req string, cases []goldenCase, actual []string, rawMasks [][]string) error {
	var b strings.Builder
	if req != "" {
		fmt.Fprintf(&b, "require: %s\n\n", req)
	}
	for i, c := range cases {
		for _, m := range rawMasks[i] {
			fmt.Fprintf(&b, "mask: %s\n", m)
		}
		fmt.Fprintf(&b, "%s\n----\n", c.cmd)
		if actual[i] != "" {
			b.WriteString(actual[i])
			b.WriteByte('\n')
		}
		b.WriteString("====\n\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// rawMaskLines returns the mask lines of each case as written (for rewriting).
func rawMaskLines(path string, n int) [][]string {
	b, _ := os.ReadFile(path)
	out := make([][]string, 0, n)
	var cur []string
	inExp := false
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		switch {
		case inExp:
			if l == "====" {
				inExp = false
			}
		case strings.HasPrefix(l, "mask: "):
			cur = append(cur, strings.TrimPrefix(l, "mask: "))
		case strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "require: "):
		case i+1 < len(lines) && lines[i+1] == "----":
			out = append(out, cur)
			cur = nil
			inExp = true
		}
	}
	return out
}

var (
	goldenFixtureOnce sync.Once
	goldenFixtureDir  string
	goldenFixtureErr  error
)

// goldenFixture writes the synthetic model and data once per test binary.
func goldenFixture(t *testing.T) (modelDir, data string) {
	goldenFixtureOnce.Do(func() {
		dir, err := os.MkdirTemp("", "autoq-golden-")
		if err != nil {
			goldenFixtureErr = err
			return
		}
		goldenFixtureDir = dir
		goldenFixtureErr = writeSynthFixture(filepath.Join(dir, "synth"), filepath.Join(dir, "synth.jsonl"))
	})
	require.NoError(t, goldenFixtureErr)
	return filepath.Join(goldenFixtureDir, "synth"), filepath.Join(goldenFixtureDir, "synth.jsonl")
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.txt"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	t.Setenv("AUTOQ_NO_PROGRESS", "1")
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) { runGoldenFile(t, path) })
	}
}

func runGoldenFile(t *testing.T, path string) {
	req, cases := parseGolden(t, path)
	vars := map[string]string{}
	switch req {
	case "":
	case "shared-data", "full":
		if req == "full" && os.Getenv("AUTOQ_GOLDEN_FULL") == "" {
			t.Skip("README-scale run: set AUTOQ_GOLDEN_FULL=1 to check it")
		}
		if req == "full" && testing.Short() {
			t.Skip("-short: the README-scale transcripts run for about 25 minutes")
		}
		vars["$REAL"] = testutil.SharedData(t, "stories260K.bin")
		vars["$TOK"] = testutil.SharedData(t, "tok512.bin")
		vars["$TEXT"] = testutil.SharedData(t, "tinystories_val.txt")
	default:
		t.Fatalf("%s: unknown requirement %q", path, req)
	}
	vars["$SYNTH"], vars["$SYNTHDATA"] = goldenFixture(t)
	vars["$TMP"] = t.TempDir()
	// Longest names first so $SYNTHDATA is not read as $SYNTH + "DATA".
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })

	_, noGPU := backend.CUDADevices()
	actual := make([]string, len(cases))
	for i, c := range cases {
		if noGPU == nil && strings.HasPrefix(c.cmd, "autoq ") && !strings.Contains(c.cmd, "--device") && !strings.Contains(c.cmd, "--help") {
			// Unpinned cases (the README's `autoq run`) take the GPU here: the transcript is the CPU's.
			t.Logf("%s:%d: skipped on a machine with a GPU (no --device): %s", path, c.line, c.cmd)
			actual[i] = c.expected
			continue
		}
		args := strings.Fields(c.cmd)
		for j, a := range args {
			for _, k := range names {
				a = strings.ReplaceAll(a, k, vars[k])
			}
			args[j] = a
		}
		got := runGoldenCommand(t, args)
		// Write paths back as variables (the longest values first).
		vals := make([]string, 0, len(vars))
		for _, k := range names {
			vals = append(vals, k)
		}
		sort.Slice(vals, func(i, j int) bool { return len(vars[vals[i]]) > len(vars[vals[j]]) })
		for _, k := range vals {
			got = strings.ReplaceAll(got, vars[k], k)
		}
		for _, m := range append(alwaysMasked, c.masks...) {
			repl := "<masked>"
			if m.SubexpIndex("keep") >= 0 { // a mask that keeps the (?P<keep>...) part
				repl = "${keep}<masked>"
			}
			got = m.ReplaceAllString(got, repl)
		}
		actual[i] = strings.TrimRight(got, "\n")
		if !*rewriteGolden && actual[i] != c.expected {
			t.Errorf("%s:%d: %s\n%s", path, c.line, c.cmd, firstDiff(c.expected, actual[i]))
		}
	}
	if *rewriteGolden {
		require.NoError(t, writeGolden(path, req, cases, actual, rawMaskLines(path, len(cases))))
	}
}

// runGoldenCommand runs one case's command and renders its transcript.
func runGoldenCommand(t *testing.T, args []string) string {
	switch args[0] {
	case "autoq":
		var out, errb bytes.Buffer
		code := runMain(args[1:], &env{stdout: &out, stderr: &errb})
		s := out.String()
		if errb.Len() > 0 {
			s = strings.TrimRight(s, "\n") + "\nstderr:\n" + errb.String()
		}
		if code != 0 {
			s = strings.TrimRight(s, "\n") + fmt.Sprintf("\nexit %d", code)
		}
		return s
	}
	if out, ok := goldenCommand(t, args); ok {
		return out
	}
	t.Fatalf("golden: unknown command %q", args[0])
	return ""
}

func TestMain(m *testing.M) {
	if os.Getenv("AUTOQ_CLI_CHILD") == "1" {
		// The test binary re-executed as the autoq command (interrupt_test.go).
		ctx := interruptContext(os.Stderr)
		os.Exit(runMain(os.Args[1:], &env{stdout: os.Stdout, stderr: os.Stderr, ctx: ctx}))
	}
	flag.Parse()
	code := m.Run()
	if goldenFixtureDir != "" {
		os.RemoveAll(goldenFixtureDir)
	}
	os.Exit(code)
}

// firstDiff shows the first line where want and got differ, with some context.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl || i >= len(w) || i >= len(g) {
			return fmt.Sprintf("line %d (of %d want, %d got):\n  want: %q\n  got:  %q", i+1, len(w), len(g), wl, gl)
		}
	}
	return "equal"
}
