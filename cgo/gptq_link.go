//go:build cuda

package cgo

// cuSOLVER for the GPTQ inverse-Hessian factor (cuda/gptq.cu). cgo joins the LDFLAGS of a
// package's files in file-name order, so these come before link.go's cuBLAS/cudart flags,
// the order static libraries need (cuSOLVER depends on cuBLAS and cudart).

/*
#cgo LDFLAGS: -L${SRCDIR}/../build/cuda -lautoq_cuda -lcusolver_static -lcusolver_lapack_static
*/
import "C"
