package cgo

// The entropy search's plan, shared by the CUDA backend and the host checks of the kernel
// arithmetic (no cgo here).

const (
	entropyStartBin = 128
	entropyCands    = 2048 - entropyStartBin + 1 // candidates i = 128..2048
)

// klPlan is calib's klPlan: the distinct group ranges [lo, hi) the entropy candidates use
// for G groups, idx[c*G+g] the range of group g of candidate c, last[c] the range holding
// bin i-1. Built exactly as calib.klPlanFor (group g of candidate i covers the bins j with
// floor(j*G/i) == g).
type klPlan struct {
	groups            int
	lo, hi, idx, last []int32
}

func buildKLPlan(groups int) *klPlan {
	p := &klPlan{groups: groups, idx: make([]int32, entropyCands*groups), last: make([]int32, entropyCands)}
	seen := map[[2]int32]int32{}
	for c := 0; c < entropyCands; c++ {
		i := entropyStartBin + c
		for g := 0; g < groups; g++ {
			lo := int32((g*i + groups - 1) / groups)
			hi := int32(((g+1)*i + groups - 1) / groups)
			k, ok := seen[[2]int32{lo, hi}]
			if !ok {
				k = int32(len(p.lo))
				seen[[2]int32{lo, hi}] = k
				p.lo, p.hi = append(p.lo, lo), append(p.hi, hi)
			}
			p.idx[c*groups+g] = k
			if lo <= int32(i-1) && int32(i-1) < hi {
				p.last[c] = k
			}
		}
	}
	return p
}
