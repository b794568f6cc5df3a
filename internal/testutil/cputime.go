package testutil

import (
	"syscall"
	"testing"
	"time"
)

// processCPU is the CPU time (user + system) the process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// CPUMeter measures the CPU time a benchmark's loop uses, so that a throughput reads "per
// CPU-second" even on a machine shared with other work (the wall clock of ns/op then
// includes time the process waited for a core).
type CPUMeter struct{ start time.Duration }

// StartCPU starts measuring; call it just before the benchmark loop.
func StartCPU() CPUMeter { return CPUMeter{start: processCPU()} }

// Report adds the metric "<unit>/cpu-s": units per CPU-second, where the loop processed
// perOp units in each of b.N iterations (for example perOp = bytes / 1e6 and unit "MB").
func (m CPUMeter) Report(b *testing.B, perOp float64, unit string) {
	if cpu := (processCPU() - m.start).Seconds(); cpu > 0 {
		b.ReportMetric(perOp*float64(b.N)/cpu, unit+"/cpu-s")
	}
}
