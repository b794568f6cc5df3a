package quantfile

import (
	"strings"
	"testing"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/quant"
)

// FuzzReadQuantized: any autoq.quant.* metadata value, over the tensors of a real 4-bit
// asymmetric weight (scales, zeros and qweight as the writer lays them out), gives a
// QTensor that validates and matches the metadata, or an error naming the weight.
func FuzzReadQuantized(f *testing.F) {
	const rows, cols = 4, 32
	s := quant.Scheme{Bits: 4, Symmetric: false, Granularity: quant.PerGroup, GroupSize: 16}
	q := gaussianQ(f, "w", 5, rows, cols, s)
	ts, err := QuantizedTensors(q)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(NewQuantMeta(rows, cols, s).Encode())
	f.Add(`{"bits":4,"granularity":"group","group_size":16,"rows":-4,"cols":32}`)
	f.Add(`{"bits":4,"granularity":"group","group_size":0,"rows":4,"cols":32}`)
	f.Add(`{"bits":8,"granularity":"tensor","rows":4,"cols":16}`)
	f.Add(`{"bits":4,"granularity":"channel","rows":4,"cols":32}`)
	f.Add(`not json`)
	f.Fuzz(func(t *testing.T, meta string) {
		src, err := checkpoint.NewMemory(ts, map[string]string{FormatKey: FormatVersion, QuantMetaKey + "w": meta})
		if err != nil {
			t.Fatal(err)
		}
		qs, metas, err := ReadQuantized(src)
		if err != nil {
			if !strings.Contains(err.Error(), `"w"`) {
				t.Fatalf("error does not name the weight: %v", err)
			}
			return
		}
		got, m := qs["w"], metas["w"]
		if err := got.Validate(); err != nil {
			t.Fatalf("accepted an invalid QTensor: %v", err)
		}
		if got.Rows != m.Rows || got.Cols != m.Cols || got.Scheme.Bits != m.Bits {
			t.Fatalf("QTensor %dx%d %d-bit from metadata %+v", got.Rows, got.Cols, got.Scheme.Bits, m)
		}
	})
}
