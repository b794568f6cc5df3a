//go:build cuda

package cgo

// The CUDA runtime is linked statically (cuBLAS and cuSOLVER are loaded on first use with
// dlopen, see cuda/dynload.cu, which keeps binaries small); the directory holding
// libcudart_static.a comes from CGO_LDFLAGS (the Makefile passes -L$(CUDA_LIB)). The
// driver (libcuda.so.1) is loaded by cudart at run time, so a binary built here starts on a
// machine without a driver and reports why there is no device.

/*
#cgo CFLAGS: -I${SRCDIR}/../cuda
#cgo LDFLAGS: -L${SRCDIR}/../build/cuda -lautoq_cuda -lcudart_static -lstdc++ -lm -ldl -lpthread -lrt
*/
import "C"
