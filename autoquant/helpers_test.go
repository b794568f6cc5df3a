package autoquant

import (
	"testing"

	"github.com/autoq/autoq/export"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/require"
)

// mustRecipe parses a recipe ("w4g32a", "w8a8s"), failing the test on error.
func mustRecipe(t testing.TB, s string) quant.Recipe {
	t.Helper()
	r, err := quant.ParseRecipe(s)
	require.NoError(t, err)
	return r
}

// stories opens stories260K and its data (skipping under -short, with why, or when
// ../shared/data is absent).
func stories(t *testing.T, why string, opt DataOptions) (*Source, *Data) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: " + why)
	}
	bin, text := testutil.Stories(t)
	src, err := OpenSource(bin, "")
	require.NoError(t, err)
	require.NotNil(t, src.Tok, "tok512.bin is found beside the model")
	d, err := LoadData(text, src.Tok, src.Cfg.Vocab, opt)
	require.NoError(t, err)
	return src, d
}

func exportWrite(dir string, m *export.Model) error {
	return export.Write(dir, m, export.Options{ScaleDType: tensor.F16})
}
