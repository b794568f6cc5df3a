//go:build cuda

package cgo

// The CUDA runtime and cuBLAS are linked statically; the directory holding
// libcudart_static.a comes from CGO_LDFLAGS (the Makefile passes -L$(CUDA_LIB)). The
// driver (libcuda.so.1) is loaded by cudart at run time, so a binary built here starts on a
// machine without a driver and reports why there is no device.

/*
#cgo CFLAGS: -I${SRCDIR}/../cuda
#cgo LDFLAGS: -L${SRCDIR}/../build/cuda -lautoq_cuda -lcublas_static -lcublasLt_static -lcudart_static -lculibos -lstdc++ -lm -ldl -lpthread -lrt
*/
import "C"
