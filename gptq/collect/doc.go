// Package collect gathers GPTQ calibration statistics from the model runner: it runs the
// model over calibration token sequences with a hook on every linear layer's input and
// accumulates each layer's input second moment H = sum x x^T (gptq.Hessian). It is kept
// apart from package gptq so that the quantization core does not depend on the model.
package collect
