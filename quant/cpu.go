package quant

// HasAVX2 reports whether this CPU runs the AVX2 kernels (AVX, AVX2, F16C and the OS's
// YMM state; always false in purego builds and off amd64). Other packages with amd64
// kernels (model's matmul) use it as their switch so that one CPU check rules them all.
func HasAVX2() bool { return hasAVX2 }
