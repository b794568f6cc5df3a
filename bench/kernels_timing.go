package bench

// Each timed run lasts about targetMs: reps executions of a case back to back between one
// pair of device events amortise launch gaps and the event resolution for kernels of a few
// microseconds (at most maxReps).
const (
	targetMs = 2.0
	maxReps  = 100
)

// perRun turns run(reps) into a per-execution time: the first call executes the case once
// untimed, times one execution, and fixes reps from it.
func perRun(run func(reps int) (float64, error)) func() (float64, error) {
	reps := 0
	return func() (float64, error) {
		if reps == 0 {
			if _, err := run(1); err != nil {
				return 0, err
			}
			one, err := run(1)
			if err != nil {
				return 0, err
			}
			reps = 1
			if one < targetMs {
				reps = min(maxReps, int(targetMs/max(one, 0.001))+1)
			}
		}
		ms, err := run(reps)
		return ms / float64(reps), err
	}
}
