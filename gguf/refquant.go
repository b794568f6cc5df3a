package gguf

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

// RefQuantize quantizes w [rows, cols] the way llama.cpp's ggml_quantize_chunk does for
// type t, so that autoq can compare its own quantizers with llama.cpp's on one machine.
// imatrix (cols per-column importances, llama.cpp's imatrix / the diagonal of the input
// Hessian) is used where llama.cpp uses one (Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K; Q8_0
// ignores it); nil gives llama.cpp's reference quantizers (quantize_row_*_ref):
//
//   - Q8_0: d = amax/127, q = round-half-away(x/d) (multiplying by 1/d).
//   - Q4_0/Q5_0: d = (signed value of largest magnitude)/-8 (/-16), code =
//     min(15, trunc(x/d + 8.5)) (31, +16.5); the largest magnitude lands on code 0.
//   - Q4_1/Q5_1: d = (max-min)/15 (/31), m = min, code = trunc((x-min)/d + 0.5).
//   - Q4_K: per sub-block of 32 a weighted min/scale search (make_qkx2_quants, weights
//     |x| + rms of the sub-block), the scales and mins quantized to 6 bits against the
//     super-block's largest (d = max_scale/63), then the codes recomputed on that grid.
//     With imatrix: make_qkx3_quants with weights imatrix*sqrt(sigma2 + x^2) and the 6-bit
//     scales fitted by make_qp_quants.
//   - Q6_K: per sub-block of 16 make_qx_quants (32 levels each side, weights x^2 or the
//     imatrix), the scales quantized to int8 against the largest (d = max/-128), codes
//     recomputed on that grid.
//
// In the legacy formats the codes are chosen with the float32 scale before it is rounded
// to F16 for storage, so the stored weights are not exactly the ones the codes were chosen
// for; autoq's own path (FromLevels, ChooseGrid + Grid.RoundNearest) rounds first.
func RefQuantize(name string, t Type, w []float32, rows, cols int, imatrix []float32) (*Quantized, error) {
	g, err := NewGrid(name, t, rows, cols)
	if err != nil {
		return nil, err
	}
	if len(w) != rows*cols {
		return nil, fmt.Errorf("gguf: tensor %q: %d values for %dx%d", name, len(w), rows, cols)
	}
	if imatrix != nil && len(imatrix) != cols {
		return nil, fmt.Errorf("gguf: tensor %q: importance has %d entries for %d columns", name, len(imatrix), cols)
	}
	for i, x := range w {
		if x-x != 0 {
			return nil, fmt.Errorf("gguf: tensor %q: non-finite value %v at row %d, col %d", name, x, i/cols, i%cols)
		}
	}
	for i, x := range imatrix {
		if x-x != 0 || x < 0 {
			return nil, fmt.Errorf("gguf: tensor %q: importance %v of column %d is not finite and non-negative", name, x, i)
		}
	}
	q := &Quantized{Grid: *g, Q: make([]int8, rows*cols)}
	parallelRows(rows, func(r int) {
		refRow(q, r, w[r*cols:(r+1)*cols], imatrix)
	})
	return q, nil
}

// refRow quantizes row r of q from x.
func refRow(q *Quantized, r int, x, imatrix []float32) {
	cols := q.Cols
	codes := q.Q[r*cols : (r+1)*cols]
	switch q.Type {
	case Q4_K, Q6_K:
		nb := cols / QKK
		for b := 0; b < nb; b++ {
			var qw []float32
			if imatrix != nil {
				qw = imatrix[b*QKK : (b+1)*QKK]
			}
			bi := r*nb + b
			xb, cb := x[b*QKK:(b+1)*QKK], codes[b*QKK:(b+1)*QKK]
			if q.Type == Q4_K {
				refQ4K(&q.Grid, bi, xb, cb, qw)
			} else {
				refQ6K(&q.Grid, bi, xb, cb, qw)
			}
		}
		return
	}
	var sigma2 float32
	if imatrix != nil {
		var sumX2 float32
		for _, v := range x {
			sumX2 += float32(v * v)
		}
		sigma2 = sumX2 / float32(cols)
	}
	nb := cols / QK
	for b := 0; b < nb; b++ {
		bi := r*nb + b
		xb, cb := x[b*QK:(b+1)*QK], codes[b*QK:(b+1)*QK]
		if imatrix == nil || q.Type == Q8_0 {
			refLegacy(&q.Grid, bi, xb, cb)
			continue
		}
		var weight [QK]float32
		for j, v := range xb {
			weight[j] = float32(imatrix[b*QK+j] * sqrt32(sigma2+float32(v*v)))
		}
		switch q.Type {
		case Q4_0, Q5_0:
			d := makeQxQuants(int32(8+8*boolInt(q.Type == Q5_0)), xb, cb, weight[:])
			q.D[bi], _ = f16Round(d)
		case Q4_1, Q5_1:
			var aux [QK]int8
			nmax := int32(15 + 16*boolInt(q.Type == Q5_1))
			d, negMin := makeQkxQuants(nmax, xb, weight[:], cb, aux[:], -0.9, 0.05, 36)
			q.D[bi], _ = f16Round(d)
			q.M[bi], _ = f16Round(-negMin)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// refLegacy is quantize_row_{q8_0,q4_0,q4_1,q5_0,q5_1}_ref for one block.
func refLegacy(g *Grid, bi int, x []float32, codes []int8) {
	switch g.Type {
	case Q8_0:
		var amax float32
		for _, v := range x {
			amax = max(amax, abs32(v))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		g.D[bi], _ = f16Round(d)
		for j, v := range x {
			codes[j] = int8(math.Round(float64(float32(v * id))))
		}
	case Q4_0, Q5_0:
		var amax, mx float32
		for _, v := range x {
			if a := abs32(v); amax < a {
				amax, mx = a, v
			}
		}
		half := float32(8)
		if g.Type == Q5_0 {
			half = 16
		}
		d := mx / -half
		var id float32
		if d != 0 {
			id = 1 / d
		}
		g.D[bi], _ = f16Round(d)
		top, off := int32(2*half-1), half+0.5 // off is 8.5 or 16.5, one constant as in C
		for j, v := range x {
			codes[j] = int8(min(top, int32(int8(float32(v*id)+off))))
		}
	case Q4_1, Q5_1:
		mn, mx := float32(math.MaxFloat32), float32(-math.MaxFloat32)
		for _, v := range x {
			mn = min(mn, v)
			mx = max(mx, v)
		}
		levels := float32(15)
		if g.Type == Q5_1 {
			levels = 31
		}
		d := (mx - mn) / levels
		var id float32
		if d != 0 {
			id = 1 / d
		}
		g.D[bi], _ = f16Round(d)
		g.M[bi], _ = f16Round(mn)
		for j, v := range x {
			c := int32(uint8(float32(float32(float32(v-mn)*id) + 0.5)))
			if g.Type == Q4_1 {
				c = min(15, c)
			} else {
				c &= 31 // q5_1_ref stores the low 5 bits without clamping
			}
			codes[j] = int8(c)
		}
	}
}

// parallelRows runs fn(r) for every row on GOMAXPROCS goroutines; each row's result
// depends only on that row, so the output is deterministic.
func parallelRows(rows int, fn func(r int)) {
	workers := min(runtime.GOMAXPROCS(0), rows)
	if workers <= 1 {
		for r := 0; r < rows; r++ {
			fn(r)
		}
		return
	}
	var wg sync.WaitGroup
	next := make(chan int, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range next {
				fn(r)
			}
		}()
	}
	for r := 0; r < rows; r++ {
		next <- r
	}
	close(next)
	wg.Wait()
}
