package autoquant

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autoq/autoq/eval"
)

// --device auto keeps on the CPU what the GPU eval does not run; explicit devices are kept
// (and refused by checkGPUEval when they cannot run the work).
func TestEvalDevice(t *testing.T) {
	spec := func(s string) []eval.Spec {
		sp, err := eval.ParseSpec(s)
		require.NoError(t, err)
		return []eval.Spec{sp}
	}
	cases := []struct {
		name  string
		f     EvalOptions
		specs []eval.Spec
		want  string
	}{
		{"dynamic w8a8 may use a GPU", EvalOptions{Device: "auto"}, spec("w8a8"), "auto"},
		{"weight-only may use a GPU", EvalOptions{Device: ""}, spec("w4g32a"), ""},
		{"gptq", EvalOptions{Device: "auto"}, spec("w4g32a+gptq"), "cpu"},
		{"static scales", EvalOptions{Device: "auto"}, spec("w8a8s"), "cpu"},
		{"quantized dir", EvalOptions{Device: "auto", Quantized: "q"}, nil, "cpu"},
		{"gguf", EvalOptions{Device: "auto", GGUF: []string{"x.gguf"}}, nil, "cpu"},
		{"rotate", EvalOptions{Device: "auto", Rotate: Rotation{Kind: "hadamard"}}, spec("w8a8"), "cpu"},
		{"explicit cuda kept", EvalOptions{Device: "cuda", GGUF: []string{"x.gguf"}}, nil, "cuda"},
		{"explicit cpu kept", EvalOptions{Device: "cpu"}, spec("w8a8"), "cpu"},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, evalDevice(&c.f, c.specs), c.name)
	}
	f := EvalOptions{Device: "cuda", GGUF: []string{"x.gguf"}}
	assert.ErrorContains(t, checkGPUEval(&f, nil), "--gguf")
}
