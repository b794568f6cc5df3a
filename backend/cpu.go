package backend

// NewCPU returns the pure-Go reference backend.
// OWNER (backend helper): implement CPU in this package by delegating to quant and calib.
func NewCPU() Backend { panic("backend.NewCPU: not implemented yet") }
