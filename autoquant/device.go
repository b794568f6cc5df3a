package autoquant

import (
	"errors"
	"fmt"

	"github.com/autoq/autoq/backend"
)

// engine is an opened backend and how it was chosen.
type engine struct {
	b        backend.Backend
	name     string // "cpu" or "cuda:0 (NVIDIA H100 80GB HBM3)"
	fallback string // why "auto" chose the CPU
}

// deviceErr turns a device-name error into a usage error about --device.
func deviceErr(err error) error {
	var se *backend.SpecError
	if errors.As(err, &se) {
		return usagef("--device: %v", err)
	}
	return err
}

// openEngine opens --device and says on the log which device runs the work (and why the
// CPU when CUDA was not available).
func openEngine(env Env, spec string) (*engine, error) {
	b, fallback, err := backend.Open(spec)
	if err != nil {
		return nil, deviceErr(err)
	}
	e := &engine{b: b, name: deviceName(b.Info()), fallback: fallback}
	if fallback != "" {
		env.logf("device: %s (%s)\n", e.name, fallback)
	} else {
		env.logf("device: %s\n", e.name)
	}
	return e, nil
}

func deviceName(info backend.DeviceInfo) string {
	if info.Kind == "cuda" {
		return fmt.Sprintf("cuda:%d (%s)", info.Index, info.Name)
	}
	return info.Kind
}

// selectRunnerDevice resolves the --device of the jobs whose default is the CPU reference
// and that run the GPU model runner when asked (eval, bench model): "auto" is CUDA when
// present and otherwise the CPU, saying why on the log.
func selectRunnerDevice(env Env, job, spec string) (backend.Device, error) {
	devs, fallback, err := backend.Select(spec)
	if err != nil {
		return backend.Device{}, deviceErr(err)
	}
	if len(devs) != 1 {
		return backend.Device{}, usagef("--device %s: %s runs on one device", spec, job)
	}
	if fallback != "" {
		env.logf("autoq %s: running on the CPU (%s)\n", job, fallback)
	}
	return devs[0], nil
}
