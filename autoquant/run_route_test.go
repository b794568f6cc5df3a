package autoquant

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/gptq/collect"
)

// Which options need the whole model in memory (RunPipeline) and which stream.
func TestRunInMemoryRoute(t *testing.T) {
	dyn := BestGPTQ
	dyn.Groups = gptq.GroupsDynamic
	cases := []struct {
		name string
		f    RunOptions
		mode collect.Mode
		gopt gptq.Options
		want string
	}{
		{"default streams", RunOptions{}, collect.OneShot, BestGPTQ, ""},
		{"block-sequential streams", RunOptions{Sequential: "block"}, collect.ByBlock, BestGPTQ, ""},
		{"layer-sequential", RunOptions{Sequential: "layer"}, collect.ByLayer, BestGPTQ, "--sequential layer"},
		{"dynamic groups", RunOptions{ActOrderGroups: "dynamic"}, collect.OneShot, dyn, "--act-order-groups dynamic"},
		{"rotation", RunOptions{Rotate: Rotation{Kind: "hadamard"}}, collect.OneShot, BestGPTQ, "--rotate"},
		{"gguf", RunOptions{Target: GGUFTarget}, collect.OneShot, BestGPTQ, "--target gguf"},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, c.f.inMemory(c.mode, c.gopt), c.name)
	}
}
