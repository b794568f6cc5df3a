package collect

import (
	"fmt"
	"strings"

	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
)

// inputGroups splits the linear layers (in forward order) into runs that read the same
// input: q/k/v, o, gate/up, down of each decoder layer.
func inputGroups(names []string) [][]string {
	var out [][]string
	for _, n := range names {
		shares := strings.HasSuffix(n, "k_proj") || strings.HasSuffix(n, "v_proj") || strings.HasSuffix(n, "up_proj")
		if shares && len(out) > 0 {
			out[len(out)-1] = append(out[len(out)-1], n)
			continue
		}
		out = append(out, []string{n})
	}
	return out
}

// Sequential quantizes m's linear layers in forward order, each group of layers sharing an
// input against the Hessian of that input as the already-quantized earlier layers produce
// it (GPTQ's sequential mode: later layers compensate the errors of earlier ones). It
// costs one calibration forward pass per input group (4 per decoder layer). On return the
// model has every quantized layer plugged in (m.ResetLinears restores full precision).
// progress, if not nil, is called with (groups done, groups).
func Sequential(m *model.Model, seqs [][]int, batch int, method Method, clip gptq.Clip, s quant.Scheme, opt gptq.Options, progress func(done, total int)) (map[string]*quant.QTensor, []gptq.Report, error) {
	groups := inputGroups(m.LinearNames())
	qs := make(map[string]*quant.QTensor)
	var reps []gptq.Report
	for gi, grp := range groups {
		want := make(map[string]bool, len(grp))
		for _, n := range grp {
			want[n] = true
		}
		hs, err := hessians(m, seqs, batch, nil, want)
		if err != nil {
			return nil, nil, err
		}
		for _, name := range grp {
			q, rep, err := quantizeLayer(m, name, hs[name], method, clip, s, opt)
			if err != nil {
				return nil, nil, fmt.Errorf("sequential: %w", err)
			}
			if method == GPTQ {
				reps = append(reps, rep)
			}
			qs[name] = q
		}
		if err := Plug(m, qs); err != nil {
			return nil, nil, err
		}
		if progress != nil {
			progress(gi+1, len(groups))
		}
	}
	return qs, reps, nil
}
