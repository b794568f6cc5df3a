package calib

import (
	"math"
	"runtime"
	"sync"
)

// MaxEntropyLevels bounds Levels for the entropy search (Levels+1 groups; 8-bit at most,
// as in Model Optimizer's use). Entropy called directly clamps to it; Compute rejects more.
const MaxEntropyLevels = 255

// EntropyStartBin is Model Optimizer's start_bin: the smallest candidate threshold in bins.
// The entropy and MSE searches have EntropyCandidates candidates i = EntropyStartBin..NumBins.
const (
	EntropyStartBin   = 128
	EntropyCandidates = NumBins - EntropyStartBin + 1
)

// Entropy is TensorRT's entropy calibrator as implemented by Model Optimizer's
// _compute_amax_entropy (num_bits 8, stride 1, start_bin 128), on this histogram's bins:
//
//   - With opt.ZeroSpike, counts[0] is replaced by counts[1] first (Model Optimizer always
//     does this; DefaultOptions turns it on).
//   - G = Levels+1 quantized bins (128 for signed int8, 256 for unsigned).
//   - Candidates are i in 128..min(2048, top+1), top the last non-zero bin. Model
//     Optimizer's histogram ends at the absmax, so its candidates never pass it; ours
//     extends to 2048 * 2^Exp, and a candidate beyond the data only regroups Q without
//     clipping anything (it can win by accident, choosing an amax above every value).
//   - For each candidate i: P = counts[0..i) with the mass of bins >= i added to
//     P[i-1]. Q: bin j < i belongs to group floor(j*G/i) (exact integer division; numpy's
//     digitize over linspace(0, i, G+1) computes the same up to float edge effects); each
//     group's mass is spread evenly over its bins with non-zero counts, bins with zero
//     counts get Q = 0. P and Q are normalised separately. KL = sum over P>0 of
//     p*log(p/q), +Inf where q = 0 < p.
//   - The minimising i wins, the last one on ties (Model Optimizer's last_argmin);
//     Amax = i * 2^Exp, KL the minimum.
//
// Fast evaluation. With T the total, S = sum counts[0..i), c = counts[i-1], tail = T-S,
// M_g and n_g a group's mass and number of non-zero bins:
//
//	T*KL = sum_{j<i-1} c_j log c_j + (c+tail) log(c+tail)
//	       - sum_g M_g (log M_g - log n_g) - tail*(log M_g* - log n_g*)   (g* holds bin i-1)
//	       - T log T + T log S
//
// The first sum is a prefix sum; the group terms depend only on the group's bin range, and
// the ranges used by all candidates are a fixed set of ~18.7k (for G = 128) precomputed once
// (EntropyPlan), so each tensor takes one KLLog per distinct range and 128 table reads per
// candidate. Group terms are added into four accumulators by g mod 4, combined as
// (a0+a1)+(a2+a3): a fixed order the CUDA kernel repeats. Candidates are split among
// goroutines; each candidate's value is computed independently, so the result does not
// depend on the number of workers.
func Entropy(h *Histogram, opt Options) Result {
	return entropyWorkers(h, opt, runtime.GOMAXPROCS(0))
}

func entropyWorkers(h *Histogram, opt Options, workers int) Result {
	return searchBest(h, func(candidates int) []float64 {
		plan := EntropyPlanFor(min(opt.levels(), MaxEntropyLevels) + 1)
		return entropyKL(h, opt.ZeroSpike, plan, workers, candidates)
	})
}

// searchBest is the threshold search Entropy and MSE share: score gives one value per
// candidate bin EntropyStartBin+c (nil: no mass left, as in a hand-built histogram whose
// only count was a zero spike), and the smallest value wins, the last candidate on ties.
// The result's KL is the winning score.
func searchBest(h *Histogram, score func(candidates int) []float64) Result {
	if isEmpty(h) {
		return Result{Empty: true}
	}
	v := score(searchCandidates(h))
	if v == nil {
		return Result{Empty: true}
	}
	best := 0
	for c := 1; c < len(v); c++ {
		if v[c] <= v[best] {
			best = c
		}
	}
	bin := EntropyStartBin + best
	return Result{Amax: BinEdge(bin, h.Exp), Bin: bin, KL: v[best]}
}

// searchCandidates is the number of entropy/MSE candidates: 128..min(2048, top+1).
func searchCandidates(h *Histogram) int {
	top := 0
	for j := NumBins - 1; j > 0; j-- {
		if h.Counts[j] != 0 {
			top = j
			break
		}
	}
	return max(1, min(NumBins, top+1)-EntropyStartBin+1)
}

// EntropyPlan is the candidate/group structure of the entropy search for G groups: the
// distinct bin ranges [Lo[r], Hi[r]) that some candidate uses as a group, and for each
// candidate c (threshold i = EntropyStartBin + c) the index of each group's range
// (Idx[c*G+g]) and of the range holding bin i-1 (Last[c]). Group g of candidate i covers the
// bins j with floor(j*G/i) == g. The CUDA threshold kernel runs on the same plan (package
// cgo uploads it), so both evaluate the same ranges in the same order.
type EntropyPlan struct {
	Groups int
	Lo, Hi []int32
	Idx    []uint16 // < 65536 distinct ranges for any G (checked when built)
	// UpTo[c] is the number of ranges used by candidates 0..c: ranges are numbered in order
	// of first use, so candidates below nc need only ranges below UpTo[nc-1].
	UpTo []int32
	Last []int32
}

var entropyPlans sync.Map // groups -> *EntropyPlan

// EntropyPlanFor returns the plan for G = groups (Levels+1), built once per process and
// shared: callers must not modify it.
func EntropyPlanFor(groups int) *EntropyPlan {
	if p, ok := entropyPlans.Load(groups); ok {
		return p.(*EntropyPlan)
	}
	nc := EntropyCandidates
	p := &EntropyPlan{Groups: groups, Idx: make([]uint16, nc*groups), Last: make([]int32, nc), UpTo: make([]int32, nc)}
	seen := map[[2]int32]int32{}
	for c := 0; c < nc; c++ {
		i := EntropyStartBin + c
		for g := 0; g < groups; g++ {
			// Group g is the bins j with floor(j*G/i) == g: j in [ceil(g*i/G), ceil((g+1)*i/G)).
			lo := int32((g*i + groups - 1) / groups)
			hi := int32(((g+1)*i + groups - 1) / groups)
			k, ok := seen[[2]int32{lo, hi}]
			if !ok {
				k = int32(len(p.Lo))
				seen[[2]int32{lo, hi}] = k
				p.Lo, p.Hi = append(p.Lo, lo), append(p.Hi, hi)
			}
			if k > math.MaxUint16 {
				panic("calib: entropy plan has more than 65536 group ranges")
			}
			p.Idx[c*groups+g] = uint16(k)
			if lo <= int32(i-1) && int32(i-1) < hi {
				p.Last[c] = k
			}
		}
		p.UpTo[c] = int32(len(p.Lo))
	}
	actual, _ := entropyPlans.LoadOrStore(groups, p)
	return actual.(*EntropyPlan)
}

// logInt[n] = KLLog(n) for n in 0..NumBins (logInt[0] unused).
var logInt = func() []float64 {
	t := make([]float64, NumBins+1)
	for n := 1; n <= NumBins; n++ {
		t[n] = KLLog(float64(n))
	}
	return t
}()

// logCount is KLLog(x) for a count x >= 1: a table read for small counts (the table holds
// KLLog's own values, so the result is identical), logCore otherwise.
func logCount(x float64) float64 {
	if x <= NumBins {
		return logInt[int(x)]
	}
	return logCore(x, 0)
}

// entropyKL returns the KL divergence of the first nc candidates (index c = i - 128).
func entropyKL(h *Histogram, zeroSpike bool, p *EntropyPlan, workers, nc int) []float64 {
	cnt := h.Counts
	if zeroSpike {
		cnt[0] = cnt[1]
	}
	// Prefix sums: mass, non-zero bins, c*log(c). Counts are exact in float64 below 2^53.
	var pre [NumBins + 1]float64
	var nz [NumBins + 1]int32
	var clog [NumBins + 1]float64
	var run uint64
	for j, c := range cnt {
		run += c
		pre[j+1] = float64(run)
		nz[j+1] = nz[j]
		clog[j+1] = clog[j]
		if c != 0 {
			nz[j+1]++
			cf := float64(c)
			clog[j+1] = clog[j] + float64(cf*logCount(cf))
		}
	}
	total := pre[NumBins]
	if total == 0 {
		return nil
	}
	logT := logCount(total)

	// Group terms for every distinct range: F = M log M - M log n, LQ = log M - log n.
	np := int(p.UpTo[nc-1])
	f := make([]float64, np)
	lq := make([]float64, np)
	parallel(np, workers, func(a, b int) {
		for k := a; k < b; k++ {
			lo, hi := p.Lo[k], p.Hi[k]
			m := pre[hi] - pre[lo]
			if m == 0 {
				continue
			}
			lm := logCount(m)
			ln := logInt[nz[hi]-nz[lo]]
			f[k] = float64(m*lm) - float64(m*ln)
			lq[k] = lm - ln
		}
	})

	kl := make([]float64, nc)
	G := p.Groups
	parallel(nc, workers, func(a, b int) {
		for c := a; c < b; c++ {
			i := EntropyStartBin + c
			s := pre[i]
			ci := pre[i] - pre[i-1]
			tail := total - s
			if ci == 0 && tail > 0 {
				kl[c] = math.Inf(1)
				continue
			}
			plogp := clog[i-1]
			if pl := ci + tail; pl > 0 {
				plogp += float64(pl * logCount(pl))
			}
			ix := p.Idx[c*G : c*G+G]
			var a0, a1, a2, a3 float64
			g := 0
			for ; g+3 < G; g += 4 {
				a0 += f[ix[g]]
				a1 += f[ix[g+1]]
				a2 += f[ix[g+2]]
				a3 += f[ix[g+3]]
			}
			for ; g < G; g++ { // G not a multiple of 4: remainder into a0.. in order
				switch g % 4 {
				case 0:
					a0 += f[ix[g]]
				case 1:
					a1 += f[ix[g]]
				default:
					a2 += f[ix[g]]
				}
			}
			plogq := (a0 + a1) + (a2 + a3)
			if tail > 0 {
				plogq += float64(tail * lq[p.Last[c]])
			}
			kl[c] = (plogp-plogq)/total - logT + logCount(s)
		}
	})
	return kl
}

// parallel runs fn over [0, n) split into contiguous chunks, one per worker.
func parallel(n, workers int, fn func(a, b int)) {
	if workers <= 1 || n < 2*workers {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for a := 0; a < n; a += chunk {
		b := min(a+chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(a, b)
		}()
	}
	wg.Wait()
}
