// Package calib chooses clipping thresholds (amax) for static int8 activation quantization.
//
// It keeps one streaming histogram of |x| per tensor with an exact-merge bin rule (see
// Histogram): the bin width is a power of two that only ever doubles, so coarsening and
// merging are exact and the final histogram depends only on the multiset of values seen,
// never on batch order, batch boundaries or sharding. From a histogram the calibrators
// (max, percentile, mse, entropy) pick amax; the entropy search is TensorRT's KL-divergence
// algorithm as implemented in NVIDIA Model Optimizer, made fast with prefix sums.
//
// Around that: Session streams named tensors (from activation dumps or a forward pass)
// into histograms, state files let shards computed anywhere be merged, and Table/TRT cache
// writers publish the thresholds. The CPU code here is the reference; the CUDA kernels
// reproduce the histograms bit for bit and the entropy search op for op (KLLog).
package calib
