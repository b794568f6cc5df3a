package export

import (
	"fmt"

	"github.com/autoq/autoq/quant"
)

// levels returns a QTensor's integer levels in autoq's convention (signed for symmetric
// schemes, unsigned for asymmetric ones), row-major [Rows, Cols], decoded from the storage
// documented on quant.QTensor (any width from 3 to 8 bits).
func levels(q *quant.QTensor) ([]int32, error) {
	lv, err := quant.UnpackLevels(q.Scheme, q.Data, q.Rows, q.Cols)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", q.Name, err)
	}
	return lv, nil
}

// storeLevels is the inverse of levels: it encodes levels (autoq convention) into the
// QTensor storage for scheme s, refusing levels outside s.QRange().
func storeLevels(s quant.Scheme, lv []int32, rows, cols int) ([]byte, error) {
	return quant.PackLevels(s, lv, rows, cols)
}
