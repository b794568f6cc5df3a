package autoquant

import (
	"testing"

	"github.com/autoq/autoq/export"
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

func exportWrite(dir string, m *export.Model) error {
	return export.Write(dir, m, export.Options{ScaleDType: tensor.F16})
}
