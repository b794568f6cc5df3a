package main

import (
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// realCalibArgs are the model and data flags for the shared stories260K files.
func realCalibArgs(t *testing.T) []string {
	return []string{"--model", testutil.SharedData(t, "stories260K.bin"), "--tokenizer", testutil.SharedData(t, "tok512.bin"),
		"--data", testutil.SharedData(t, "tinystories_val.txt"), "--device", "cpu"}
}

// N shards (one of them with two CPU workers and another batch size) merged with `autoq
// calib merge` give the unsharded table and TensorRT cache byte for byte.
func TestCalibrateModelShardsMergeEqualsUnsharded(t *testing.T) {
	base := append(realCalibArgs(t), "--tokens", "3000", "--seq-len", "64")
	dir := t.TempDir()
	whole, wholeTRT := filepath.Join(dir, "whole.json"), filepath.Join(dir, "whole.cache")
	code, stdout, stderr := runCLI(append([]string{"calibrate"}, append(base, "--out", whole, "--trt-cache", wholeTRT)...)...)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "model.layers.0.self_attn.q_proj,k_proj,v_proj")

	hist := filepath.Join(dir, "hist")
	for i := range 3 {
		args := append([]string{"calibrate"}, base...)
		args = append(args, "--shard", fmt.Sprintf("%d/3", i), "--histograms", hist, "--batch", fmt.Sprint(2+i))
		if i == 1 {
			args = append(args, "--workers", "2")
		}
		code, _, stderr := runCLI(args...)
		require.Equal(t, 0, code, stderr)
	}
	merged, mergedTRT := filepath.Join(dir, "merged.json"), filepath.Join(dir, "merged.cache")
	code, _, stderr = runCLI("calib", "merge", hist, "--device", "cpu", "--out", merged, "--trt-cache", mergedTRT)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, readFile(t, whole), readFile(t, merged))
	require.Equal(t, readFile(t, wholeTRT), readFile(t, mergedTRT))

	tab, err := calib.ReadTable(whole)
	require.NoError(t, err)
	require.Len(t, tab.Tensors, 5*7, "one entry per linear layer")
	assert.Equal(t, 3000/64+1, tab.Settings.Batches, "batches = windows (46 of 64 tokens and one of 56)")
	byName := map[string]calib.TableEntry{}
	for _, e := range tab.Tensors {
		byName[e.Name] = e
	}
	q, v := byName["model.layers.3.self_attn.q_proj"], byName["model.layers.3.self_attn.v_proj"]
	require.NotZero(t, q.Amax)
	q.Name, v.Name = "", ""
	assert.Equal(t, q, v, "q and v read the same input")
	assert.Equal(t, 172, byName["model.layers.0.mlp.down_proj"].Chan.Channels)
}

// --json carries the table and the diagnostics (coverage, warnings, trajectory); the
// --coverage-json file holds the same diagnostics; --plot writes PNG charts.
func TestCalibrateModelJSONCoverageAndCharts(t *testing.T) {
	dir := t.TempDir()
	cov, plots := filepath.Join(dir, "cov.json"), filepath.Join(dir, "plots")
	args := append([]string{"calibrate"}, realCalibArgs(t)...)
	args = append(args, "--tokens", "500", "--seq-len", "64", "--json", "--coverage-json", cov, "--plot", plots, "--plot-top", "2")
	code, stdout, stderr := runCLI(args...)
	require.Equal(t, 0, code, stderr)
	var out struct {
		Table       calib.Table     `json:"table"`
		Diagnostics json.RawMessage `json:"diagnostics"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &out))
	require.Len(t, out.Table.Tensors, 35)
	var d struct {
		Coverage struct {
			Tokens    int `json:"tokens"`
			Sequences int `json:"sequences"`
		} `json:"coverage"`
		Warnings []struct{ Code, Message string } `json:"warnings"`
		Rounds   []struct{ Tokens int }           `json:"rounds"`
		Tensors  []struct {
			Name   string                   `json:"name"`
			Rounds []struct{ Amax float32 } `json:"rounds"`
		} `json:"tensors"`
		Converged bool `json:"converged"`
	}
	require.NoError(t, json.Unmarshal(out.Diagnostics, &d))
	assert.Equal(t, 500, d.Coverage.Tokens)
	assert.Equal(t, 8, d.Coverage.Sequences) // 7 x 64 + 52
	require.Len(t, d.Rounds, 4)
	assert.Equal(t, 500, d.Rounds[3].Tokens)
	require.Len(t, d.Tensors, 20)
	require.Len(t, d.Tensors[0].Rounds, 4)
	var codes []string
	for _, w := range d.Warnings {
		codes = append(codes, w.Code)
	}
	assert.Contains(t, codes, "few-tokens")

	var fileRep, outRep any
	require.NoError(t, json.Unmarshal([]byte(readFile(t, cov)), &fileRep))
	require.NoError(t, json.Unmarshal(out.Diagnostics, &outRep))
	assert.Equal(t, outRep, fileRep)

	files, err := filepath.Glob(filepath.Join(plots, "*.png"))
	require.NoError(t, err)
	require.Len(t, files, 3, "two histograms and rounds.png")
	for _, f := range files {
		fh, err := os.Open(f)
		require.NoError(t, err)
		_, err = png.DecodeConfig(fh)
		fh.Close()
		require.NoError(t, err, f)
	}
}

func TestCalibrateModelTextSummary(t *testing.T) {
	args := append([]string{"calibrate"}, realCalibArgs(t)...)
	code, stdout, stderr := runCLI(append(args, "--tokens", "400", "--seq-len", "64")...)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "coverage: 7 sequences, 400 tokens")
	assert.Contains(t, stdout, "warning: few-tokens: only 400 tokens")
	assert.Contains(t, stdout, "calibration NOT converged")
	assert.Contains(t, stdout, "UNSETTLED")
}

func TestCalibrateModelUsageErrors(t *testing.T) {
	bin := testutil.SharedData(t, "stories260K.bin")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--model", bin}, "--model needs --data"},
		{[]string{"--model", bin, "--data", "x.txt", "--rounds", "0"}, "--rounds"},
		{[]string{"--model", bin, "--data", "x.txt", "--seq-len", "1"}, "--seq-len"},
		{[]string{"--model", bin, "--data", "x.txt", "--shard", "3/3"}, "--shard"},
		{[]string{"--model", bin, "--data", "x.txt", "--split", "train"}, "--split"},
		{[]string{"--model", bin, "--data", "x.txt", "--tolerance", "0"}, "--tolerance"},
		{[]string{"--model", bin, "--data", "x.txt", "--workers", "2", "--device", "cuda:0"}, "--workers"},
		{[]string{"--model", bin, "--data", "x.txt", "--workers", "2", "--device", "cuda:all"}, "one worker per GPU"},
		{[]string{"--model", bin, "--data", "x.txt", "--activations", "*.safetensors"}, "either --activations or --model"},
		{[]string{"--model", bin, "--data", "x.txt", "extra"}, "unexpected arguments"},
	} {
		code, _, stderr := runCLI(append([]string{"calibrate"}, c.args...)...)
		assert.Equal(t, 2, code, "%v: %s", c.args, stderr)
		assert.Contains(t, stderr, c.want, c.args)
	}
	// Runtime errors name the file.
	empty := filepath.Join(t.TempDir(), "empty.txt")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	code, _, stderr := runCLI("calibrate", "--model", bin, "--tokenizer", testutil.SharedData(t, "tok512.bin"), "--data", empty, "--device", "cpu")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, empty)
	assert.Contains(t, stderr, "is empty")
}

// The Kubernetes example stays in step with the CLI: its shard command parses with
// calibrate's flags, SHARDS equals completions and parallelism, and the merge step reads
// the directory the shards write.
func TestKubernetesExampleMatchesCLI(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "docs", "k8s", "calibrate-job.yaml"))
	require.NoError(t, err)
	y := string(b)
	assert.Contains(t, y, "completionMode: Indexed")
	n := regexp.MustCompile(`(?m)^\s*completions: (\d+)`).FindStringSubmatch(y)
	p := regexp.MustCompile(`(?m)^\s*parallelism: (\d+)`).FindStringSubmatch(y)
	s := regexp.MustCompile(`(?m)name: SHARDS\s+value: "(\d+)"`).FindAllStringSubmatch(y, -1)
	require.NotNil(t, n)
	require.NotNil(t, p)
	require.Len(t, s, 2)
	assert.Equal(t, n[1], p[1])
	assert.Equal(t, n[1], s[0][1])
	assert.Equal(t, n[1], s[1][1])

	// Each "exec autoq ..." folded block: that line and the "--flag value" lines after it.
	var cmds [][]string
	lines := strings.Split(y, "\n")
	for i, l := range lines {
		if !strings.Contains(l, "exec autoq ") {
			continue
		}
		text := l[strings.Index(l, "exec autoq ")+len("exec autoq "):]
		for _, more := range lines[i+1:] {
			if !strings.HasPrefix(strings.TrimSpace(more), "--") {
				break
			}
			text += " " + strings.TrimSpace(more)
		}
		cmds = append(cmds, strings.Fields(strings.NewReplacer("${JOB_COMPLETION_INDEX}", "3", "${SHARDS}", n[1]).Replace(text)))
	}
	require.Len(t, cmds, 2)
	for _, f := range cmds {
		cmd, args := lookupWithRest(f)
		require.NotNil(t, cmd, "%v", f)
		name := cmd.name
		fs := newFlagSet(cmd, &env{stdout: os.Stdout, stderr: os.Stderr})
		require.NoError(t, fs.Parse(args), "%s %v", name, args)
		if name == "calibrate" {
			sh, _ := fs.GetString("shard")
			assert.Equal(t, "3/"+n[1], sh)
			hd, _ := fs.GetString("histograms")
			assert.Equal(t, "/shared/histograms", hd)
			model, _ := fs.GetString("model")
			assert.NotEmpty(t, model)
		} else {
			assert.Equal(t, []string{"/shared/histograms"}, fs.Args())
		}
	}
}
