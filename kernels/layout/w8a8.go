package layout

import (
	"fmt"

	"github.com/autoq/autoq/quant"
)

// W8A8Weights returns the int8 levels and per-output-channel float32 scales ([N], a
// per-tensor scale repeated) of an 8-bit symmetric QTensor: the kernel reads QTensor.Data
// as stored, with no re-layout.
func W8A8Weights(q *quant.QTensor) (levels []int8, scales []float32, err error) {
	if err := q.Validate(); err != nil {
		return nil, nil, fmt.Errorf("w8a8: %w", err)
	}
	s := q.Scheme
	if s.Bits != 8 || !s.Symmetric || s.Granularity == quant.PerGroup {
		return nil, nil, fmt.Errorf("w8a8: tensor %q: weights must be 8-bit symmetric per-channel or per-tensor, not %s", q.Name, s)
	}
	levels = make([]int8, len(q.Data))
	for i, b := range q.Data {
		levels[i] = int8(b)
	}
	scales = make([]float32, q.Rows)
	for n := range scales {
		scales[n], _ = q.ScaleAt(n, 0)
	}
	return levels, scales, nil
}
