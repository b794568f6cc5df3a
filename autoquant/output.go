package autoquant

import (
	"errors"
	"path/filepath"

	"github.com/autoq/autoq/internal/atomicfile"
)

// outDir and outFile describe a job's outputs for checkOutputs.
func outDir(flag, path, kind string) atomicfile.Target {
	return atomicfile.Target{Flag: flag, Path: path, Dir: true, Kind: kind}
}

func outFile(flag, path string) atomicfile.Target {
	return atomicfile.Target{Flag: flag, Path: path}
}

// checkOutputs applies the output policy (atomicfile.Check) to every output of a job
// before any work: nothing a user had is overwritten without force, nothing that is not a
// previous autoq output of the same kind is replaced even with it, no output may be or
// hold an input, and each place must be writable. Refusals are usage errors (exit 2).
// Temporaries that an interrupted earlier run left beside the outputs are removed and
// reported.
func checkOutputs(env Env, force bool, inputs []string, targets ...atomicfile.Target) error {
	seen := map[string]bool{}
	for _, t := range targets {
		if t.Path == "" {
			continue
		}
		t.Force = force
		if err := atomicfile.Check(t, inputs); err != nil {
			var pe *atomicfile.PolicyError
			if errors.As(err, &pe) {
				return &UsageError{err}
			}
			return err
		}
		dir, err := filepath.Abs(filepath.Dir(filepath.Clean(t.Path)))
		if err != nil || seen[dir] {
			continue
		}
		seen[dir] = true
		removed, err := atomicfile.RemoveStale(dir)
		if err != nil {
			return err
		}
		for _, r := range removed {
			env.logf("removed %s (%s): a temporary left by an interrupted autoq run (pid %d)\n", r.Path, HumanBytes(r.Size), r.PID)
		}
	}
	return nil
}
