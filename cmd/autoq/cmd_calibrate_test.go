package main

import (
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeActivationDumps writes n dumps of three activations (F32 Gaussian, F16 Laplace,
// BF16 heavy-tailed) into dir.
func writeActivationDumps(t *testing.T, dir string, n int) {
	r := testutil.Rand(30)
	for i := range n {
		g := testutil.Gaussian(r, 8*64, 1)
		l := testutil.Laplace(r, 8*32, 0.2)
		s := testutil.StudentT(r, 8*16, 2)
		require.NoError(t, safetensors.WriteFile(filepath.Join(dir, fmt.Sprintf("batch_%03d.safetensors", i)), []safetensors.NamedTensor{
			{Name: "model.layers.0.self_attn.q_proj:input", T: tensor.FromF32(g, 8, 64)},
			{Name: "model.layers.0.mlp.down_proj:input", T: tensor.FromU16(tensor.F16, tensor.F32ToF16Slice(l), 8, 32)},
			{Name: "model.layers.1.mlp.up_proj:input", T: tensor.FromU16(tensor.BF16, tensor.F32ToBF16Slice(s), 8, 16)},
		}, nil))
	}
}

func readFile(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}

// End to end: sharded calibrate + calib merge gives the unsharded table and TensorRT cache
// byte for byte, and the table's thresholds are those of calib on the same data.
func TestCalibrateShardedMergeEqualsUnsharded(t *testing.T) {
	dir := t.TempDir()
	dumps := filepath.Join(dir, "dumps")
	require.NoError(t, os.Mkdir(dumps, 0o755))
	writeActivationDumps(t, dumps, 10)
	glob := filepath.Join(dumps, "*.safetensors")

	for _, method := range []string{"entropy", "percentile", "mse", "max"} {
		whole := filepath.Join(dir, method+"-whole.json")
		wholeTRT := filepath.Join(dir, method+"-whole.cache")
		code, stdout, stderr := runCLI("calibrate", "--activations", glob, "--method", method, "--device", "cpu", "--out", whole, "--trt-cache", wholeTRT)
		require.Equal(t, 0, code, stderr)
		assert.Contains(t, stdout, "model.layers.0.self_attn.q_proj:input")

		hist := filepath.Join(dir, method+"-hist")
		for i := range 3 {
			code, _, stderr := runCLI("calibrate", "--activations", glob, "--method", method, "--device", "cpu", "--shard", fmt.Sprintf("%d/3", i), "--histograms", hist)
			require.Equal(t, 0, code, stderr)
		}
		merged := filepath.Join(dir, method+"-merged.json")
		mergedTRT := filepath.Join(dir, method+"-merged.cache")
		code, _, stderr = runCLI("calib", "merge", hist, "--method", method, "--device", "cpu", "--out", merged, "--trt-cache", mergedTRT)
		require.Equal(t, 0, code, stderr)
		require.Equal(t, readFile(t, whole), readFile(t, merged), method)
		require.Equal(t, readFile(t, wholeTRT), readFile(t, mergedTRT), method)
	}

	// The JSON table holds what calib computes from the same values directly.
	code, stdout, stderr := runCLI("calibrate", "--activations", glob, "--json", "--device", "cpu")
	require.Equal(t, 0, code, stderr)
	tab := decodeJSON[calib.Table](t, stdout)
	require.Len(t, tab.Tensors, 3)
	h := calib.NewHistogram("model.layers.0.self_attn.q_proj:input")
	r := testutil.Rand(30)
	for range 10 {
		h.AddF32(testutil.Gaussian(r, 8*64, 1))
		testutil.Laplace(r, 8*32, 0.2)
		testutil.StudentT(r, 8*16, 2)
	}
	want := calib.Entropy(h, calib.DefaultOptions(calib.MethodEntropy))
	got := tab.Tensors[1] // sorted: ...0.mlp, ...0.self_attn, ...1.mlp
	require.Equal(t, h.Name, got.Name)
	require.Equal(t, want.Amax, got.Amax)
	require.Equal(t, want.Amax/127, got.Scale)
	require.EqualValues(t, 5120, got.Count)
	require.Equal(t, 10, tab.Settings.Batches)

	cache := readFile(t, filepath.Join(dir, "entropy-whole.cache"))
	require.True(t, strings.HasPrefix(cache, "TRT-8601-EntropyCalibration2\n"), cache)
	assert.Contains(t, readFile(t, filepath.Join(dir, "max-whole.cache")), "TRT-8601-MinMaxCalibration\n")
}

func TestCalibrateBadInput(t *testing.T) {
	dir := t.TempDir()
	writeActivationDumps(t, dir, 2)
	// A later file changes a tensor's shape: the error names both files.
	bad := filepath.Join(dir, "batch_999.safetensors")
	require.NoError(t, safetensors.WriteFile(bad, []safetensors.NamedTensor{
		{Name: "model.layers.0.self_attn.q_proj:input", T: tensor.FromF32(make([]float32, 64), 1, 64)},
	}, nil))
	code, _, stderr := runCLI("calibrate", "--activations", filepath.Join(dir, "*.safetensors"), "--device", "cpu")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "batch_000.safetensors")
	assert.Contains(t, stderr, "batch_999.safetensors")
	require.NoError(t, os.Remove(bad))

	// NaN/Inf: counted and reported; an error with --fail-on-nonfinite.
	nf := filepath.Join(dir, "batch_500.safetensors")
	require.NoError(t, safetensors.WriteFile(nf, []safetensors.NamedTensor{
		{Name: "model.layers.1.mlp.up_proj:input", T: tensor.FromU16(tensor.BF16, tensor.F32ToBF16Slice(append(make([]float32, 126), float32(math.NaN()), float32(math.Inf(-1)))), 8, 16)},
	}, nil))
	code, stdout, stderr := runCLI("calibrate", "--activations", filepath.Join(dir, "*.safetensors"), "--device", "cpu", "--json")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, `tensor "model.layers.1.mlp.up_proj:input": 1 NaN and 1 Inf values`)
	tab := decodeJSON[calib.Table](t, stdout)
	assert.EqualValues(t, 1, tab.Tensors[2].NaN)
	code, _, stderr = runCLI("calibrate", "--activations", filepath.Join(dir, "*.safetensors"), "--device", "cpu", "--fail-on-nonfinite")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "batch_500.safetensors")
	require.NoError(t, os.Remove(nf))

	empty := filepath.Join(dir, "batch_600.safetensors")
	require.NoError(t, safetensors.WriteFile(empty, nil, nil))
	code, _, stderr = runCLI("calibrate", "--activations", empty, "--device", "cpu")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "holds no tensors")
	require.NoError(t, os.Remove(empty))

	junk := filepath.Join(dir, "notes.safetensors")
	require.NoError(t, os.WriteFile(junk, []byte("hello"), 0o644))
	code, _, stderr = runCLI("calibrate", "--activations", junk, "--device", "cpu")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "notes.safetensors")

	code, _, stderr = runCLI("calibrate", "--activations", filepath.Join(dir, "none-*.safetensors"))
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "no files match")
	for _, args := range [][]string{
		{"calibrate"},
		{"calibrate", "--activations", "x", "--method", "kl"},
		{"calibrate", "--activations", "x", "--shard", "3/3"},
		{"calibrate", "--activations", "x", "--percentile", "0"},
		{"calibrate", "--activations", "x", "--device", "tpu"},
		{"calib", "merge"},
	} {
		code, _, stderr := runCLI(args...)
		assert.Equal(t, 2, code, "%v: %s", args, stderr)
	}

	// calib merge: corrupt state file, same shard twice.
	hist := filepath.Join(dir, "hist")
	code, _, stderr = runCLI("calibrate", "--activations", filepath.Join(dir, "batch_*.safetensors"), "--device", "cpu", "--histograms", hist)
	require.Equal(t, 0, code, stderr)
	state := filepath.Join(hist, "histograms-00000-of-00001.json")
	code, _, _ = runCLI("calib", "merge", state, state, "--device", "cpu")
	assert.Equal(t, 2, code)
	b := []byte(readFile(t, state))
	b[len(b)-10] ^= 1
	require.NoError(t, os.WriteFile(state, b, 0o644))
	code, _, stderr = runCLI("calib", "merge", state, "--device", "cpu")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "histograms-00000-of-00001.json")

	code, stdout, _ = runCLI("calibrate", "--help")
	assert.Equal(t, 0, code)
	_ = stdout
}

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

// Real activations: the stories260K model's linear inputs over 6 batches, dumped the way a
// PyTorch forward hook would, calibrated by the CLI (sharded and merged, and unsharded)
// and fed straight from the forward pass into a calib.Session: all three agree bit for bit.
func TestCalibrateRealModelActivations(t *testing.T) {
	bin := testutil.SharedData(t, "stories260K.bin")
	m, err := model.Load(bin)
	require.NoError(t, err)
	dir := t.TempDir()
	direct := calib.NewSession(calib.SessionOptions{})
	r := testutil.Rand(40)
	for b := range 6 {
		tokens := make([][]int, 2)
		for i := range tokens {
			tokens[i] = make([]int, 24)
			for j := range tokens[i] {
				tokens[i][j] = 1 + r.IntN(m.Config.Vocab-1)
			}
		}
		var mu sync.Mutex
		var batch []safetensors.NamedTensor
		_, err := m.Forward(tokens, func(name string, x []float32, M, K int) {
			mu.Lock()
			defer mu.Unlock()
			batch = append(batch, safetensors.NamedTensor{Name: name + ":input", T: tensor.FromF32(append([]float32(nil), x...), M, K)})
		})
		require.NoError(t, err)
		require.NotEmpty(t, batch)
		require.NoError(t, safetensors.WriteFile(filepath.Join(dir, fmt.Sprintf("acts_%02d.safetensors", b)), batch, nil))
		nts := make([]calib.NamedTensor, len(batch))
		for i, nt := range batch {
			nts[i] = calib.NamedTensor{Name: nt.Name, T: nt.T}
		}
		require.NoError(t, direct.Add(fmt.Sprintf("forward batch %d", b), nts))
	}
	glob := filepath.Join(dir, "*.safetensors")
	whole := filepath.Join(dir, "whole.json")
	code, _, stderr := runCLI("calibrate", "--activations", glob, "--device", "cpu", "--out", whole)
	require.Equal(t, 0, code, stderr)
	hist := filepath.Join(dir, "hist")
	for i := range 4 {
		code, _, stderr := runCLI("calibrate", "--activations", glob, "--device", "cpu", "--shard", fmt.Sprintf("%d/4", i), "--histograms", hist)
		require.Equal(t, 0, code, stderr)
	}
	merged := filepath.Join(dir, "merged.json")
	code, _, stderr = runCLI("calib", "merge", hist, "--device", "cpu", "--out", merged)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, readFile(t, whole), readFile(t, merged))

	tab, err := direct.Table(calib.DefaultOptions(calib.MethodEntropy))
	require.NoError(t, err)
	b, err := tab.Marshal()
	require.NoError(t, err)
	require.Equal(t, readFile(t, whole), string(b))
	// 5 layers x 7 linears; q/k/v (and gate/up) see the same input, so the same threshold.
	require.Len(t, tab.Tensors, 35)
	byName := map[string]calib.TableEntry{}
	for _, e := range tab.Tensors {
		byName[e.Name] = e
	}
	q, k := byName["model.layers.2.self_attn.q_proj:input"], byName["model.layers.2.self_attn.k_proj:input"]
	q.Name, k.Name = "", ""
	require.Equal(t, q, k)
	for _, e := range tab.Tensors {
		require.False(t, e.Empty, e.Name)
		require.Greater(t, e.Amax, float32(0), e.Name)
		require.LessOrEqual(t, e.Amax, e.AbsMax*(1+1.0/1024), e.Name) // within the top bin
		require.EqualValues(t, 0, e.NaN+e.Inf)
	}
	_ = os.Remove(whole)
}

// calib merge refuses sets that are not one whole run: a missing shard, shards of another
// sharding or other settings, and state files from before shard records. Each error names
// the files and what differs, and nothing is written.
func TestCalibMergeRefusesIncompleteOrMixedShards(t *testing.T) {
	dir := t.TempDir()
	writeActivationDumps(t, dir, 4)
	glob := filepath.Join(dir, "batch_*.safetensors")
	shard := func(out, spec string, extra ...string) string {
		args := append([]string{"calibrate", "--activations", glob, "--device", "cpu", "--shard", spec, "--histograms", out}, extra...)
		code, _, stderr := runCLI(args...)
		require.Equal(t, 0, code, stderr)
		return filepath.Join(out, map[string]string{"0/2": "histograms-00000-of-00002.json", "1/2": "histograms-00001-of-00002.json",
			"1/3": "histograms-00001-of-00003.json"}[spec])
	}
	a := shard(filepath.Join(dir, "run"), "0/2")
	b := shard(filepath.Join(dir, "run"), "1/2")
	out := filepath.Join(dir, "merged.json")
	merge := func(files ...string) (int, string) {
		code, _, stderr := runCLI(append(append([]string{"calib", "merge"}, files...), "--device", "cpu", "--out", out)...)
		return code, stderr
	}

	code, stderr := merge(a)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "incomplete shard set: 1 of 2 shards given ("+a+"); missing shard 1")

	code, stderr = merge(a, shard(filepath.Join(dir, "three"), "1/3"))
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "histograms-00001-of-00003.json) comes from a 3-shard run, shard 0 of 2 ("+a+") from a 2-shard run")

	other := shard(filepath.Join(dir, "chan"), "1/2", "--channel-absmax")
	code, stderr = merge(a, other)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "shard 1 of 2 ("+other+") has channel_absmax true, shard 0 of 2 ("+a+") has false")

	st, err := calib.ReadStateFile(b)
	require.NoError(t, err)
	st.Shard = nil
	old := filepath.Join(dir, "old.json")
	require.NoError(t, calib.WriteStateFile(old, st))
	code, stderr = merge(a, old)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, old+": no shard record")
	assert.NoFileExists(t, out)

	code, stderr = merge(filepath.Join(dir, "run"))
	require.Equal(t, 0, code, stderr)
	assert.FileExists(t, out)
}

// In model mode the windowing is part of the record: a shard made with another --seq-len
// is refused, naming both files and both values.
func TestCalibMergeRefusesModelShardsWithOtherSeqLen(t *testing.T) {
	dir := t.TempDir()
	base := append(realCalibArgs(t), "--tokens", "600")
	run := func(hist, spec, seqLen string) {
		code, _, stderr := runCLI(append([]string{"calibrate"}, append(base, "--shard", spec, "--seq-len", seqLen, "--histograms", hist)...)...)
		require.Equal(t, 0, code, stderr)
	}
	run(filepath.Join(dir, "a"), "0/2", "64")
	run(filepath.Join(dir, "b"), "1/2", "32")
	a := filepath.Join(dir, "a", "histograms-00000-of-00002.json")
	b := filepath.Join(dir, "b", "histograms-00001-of-00002.json")
	code, _, stderr := runCLI("calib", "merge", b, a, "--device", "cpu")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "shard 1 of 2 ("+b+") has seq_len 32, shard 0 of 2 ("+a+") has 64")

	run(filepath.Join(dir, "c"), "1/2", "64")
	b64 := filepath.Join(dir, "c", "histograms-00001-of-00002.json")
	code, _, stderr = runCLI("calib", "merge", b64, a, "--device", "cpu")
	assert.Equal(t, 0, code, stderr)
}
