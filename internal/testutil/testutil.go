package testutil

import (
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// RepoRoot returns the directory holding go.mod, walking up from the working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testutil: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// SharedData returns the path of file in ../shared/data beside the repository (or in
// $AUTOQ_SHARED_DATA when set), skipping the test with a clear message when it is absent.
func SharedData(t testing.TB, file string) string {
	t.Helper()
	p := sharedPath(t, file)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("real-model data %s not found (expected ../shared/data beside the repository, or set AUTOQ_SHARED_DATA): %v", file, err)
	}
	return p
}

// Stories returns the shared real model (stories260K.bin, llama2.c) and the text it is
// evaluated and calibrated on (tinystories_val.txt), skipping the test when one is absent.
func Stories(t testing.TB) (bin, data string) {
	t.Helper()
	return SharedData(t, "stories260K.bin"), SharedData(t, "tinystories_val.txt")
}

// Open opens path with open (safetensors.OpenCheckpoint, checkpoint.OpenAny, ...), failing
// the test on error; what it opened is closed when the test ends.
func Open[C io.Closer](t testing.TB, open func(string) (C, error), path string) C {
	t.Helper()
	c := Must(t, open, path)
	t.Cleanup(func() { c.Close() })
	return c
}

// WriteFile writes data to dir/name (a fixture file) and returns its path, failing the
// test on error.
func WriteFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Must returns f(arg), failing the test when f fails: a loader of a path (model.Load,
// tokenizer.LoadLlama2C) or a parser of a name (quant.ParseRecipe).
func Must[T any](t testing.TB, f func(string) (T, error), arg string) T {
	t.Helper()
	v, err := f(arg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// EnvInt is the positive integer in the environment variable name (a knob of a slow
// table test), or def when it is unset or not a positive integer.
func EnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// Argmax is the index of the largest value, the first on ties: greedy decoding's next
// token from a row of logits.
func Argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// Rand returns a deterministic generator for a test.
func Rand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

// Gaussian returns n N(0, sigma^2) values.
func Gaussian(r *rand.Rand, n int, sigma float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * sigma)
	}
	return v
}

// Laplace returns n Laplace(0, b) values.
func Laplace(r *rand.Rand, n int, b float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		u := r.Float64() - 0.5
		v[i] = float32(-b * math.Copysign(1, u) * math.Log(1-2*math.Abs(u)))
	}
	return v
}

// StudentT returns n heavy-tailed Student-t values with nu degrees of freedom.
func StudentT(r *rand.Rand, n int, nu float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		z := r.NormFloat64()
		var chi float64
		for k := 0; k < int(nu); k++ {
			g := r.NormFloat64()
			chi += g * g
		}
		v[i] = float32(z / math.Sqrt(chi/nu))
	}
	return v
}

// SharedDataIfPresent returns the path of file in the shared data directory (as
// SharedData), or "" when it is absent: for fuzz seeds and other optional uses that must
// not skip the whole test.
func SharedDataIfPresent(t testing.TB, file string) string {
	t.Helper()
	p := sharedPath(t, file)
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

func sharedPath(t testing.TB, file string) string {
	dir := os.Getenv("AUTOQ_SHARED_DATA")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "..", "shared", "data")
	}
	return filepath.Join(dir, file)
}
