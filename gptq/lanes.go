package gptq

// Sixteen quadratic forms over one H at a time. The act-mse search scores its clip
// candidates and OutputError its rows as e^T H e; with the sixteen vectors interleaved
// (e[j*lanes+c] is element j of vector c), one pass over H's upper triangle serves all
// sixteen, and each lane's sums are quadForm's, in quadForm's order, so every result has
// quadForm's bits. On amd64 the inner dot products run on an AVX2 kernel, lanes in vector
// registers; dotLanes16Go is its twin.

const lanes = 16

// dotLanes16 sets out[c] = dot(h, e_c) for the sixteen interleaved vectors e (len(h)
// elements each).
func dotLanes16(h, e []float64, out *[lanes]float64) {
	n := len(h)
	if n == 0 {
		*out = [lanes]float64{}
		return
	}
	_ = e[n*lanes-1]
	if hasLanesKernel {
		dotLanes16AVX2(&h[0], &e[0], n, &out[0])
		return
	}
	dotLanes16Go(h, e, out)
}

// dotLanes16Go is dotLanes16 in Go: dot's loop per lane.
func dotLanes16Go(h, e []float64, out *[lanes]float64) {
	var s [lanes]float64
	for j, v := range h {
		ej := e[j*lanes : j*lanes+lanes]
		for c := range s {
			s[c] += v * ej[c]
		}
	}
	*out = s
}

// quadForm16 returns quadForm(h, e_c) for the sixteen interleaved vectors e of n elements
// (h is [n, n], symmetric; only its upper triangle is read).
func quadForm16(h, e []float64, n int) [lanes]float64 {
	var s, off [lanes]float64
	for i := 0; i < n; i++ {
		ei := e[i*lanes : (i+1)*lanes]
		zero := true
		for _, a := range ei {
			zero = zero && a == 0
		}
		if zero {
			continue
		}
		row := h[i*n : (i+1)*n]
		dotLanes16(row[i+1:], e[(i+1)*lanes:], &off)
		d := row[i]
		for c, a := range ei {
			if a != 0 {
				s[c] += a * (d*a + 2*off[c])
			}
		}
	}
	return s
}
