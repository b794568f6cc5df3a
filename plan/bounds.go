package plan

import (
	"fmt"

	"github.com/autoq/autoq/quant"
)

// Bounds is the cheapest and the most expensive average bits per weight a plan of layers
// can have with the candidates (w16 is always allowed) and the overrides, counted as Solve
// counts them. Jobs check a --target-bits against it before calibrating anything.
func Bounds(layers []Layer, cands []quant.Recipe, overrides []Rule, scaleBits int) (lo, hi float64, err error) {
	if scaleBits == 0 {
		scaleBits = 16
	}
	var params, loBits, hiBits float64
	for _, l := range layers {
		n := float64(l.Rows) * float64(l.Cols)
		params += n
		if fixed, _, ok, err := override(overrides, l.Name); err != nil {
			return 0, 0, err
		} else if ok {
			b := n * fixed.Bits(l.Rows, l.Cols, scaleBits)
			loBits, hiBits = loBits+b, hiBits+b
			continue
		}
		cheap, dear := 16*n, 16*n
		for _, c := range cands {
			b := float64(c.CostBits(l.Rows, l.Cols, scaleBits))
			cheap, dear = min(cheap, b), max(dear, b)
		}
		loBits, hiBits = loBits+cheap, hiBits+dear
	}
	if params == 0 {
		return 0, 0, fmt.Errorf("plan: no layers")
	}
	return loBits / params, hiBits / params, nil
}
