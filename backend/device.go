package backend

import (
	"fmt"
	"strconv"
	"strings"
)

// Device is one machine a job can run on: the CPU, or CUDA device Index.
type Device struct {
	CUDA  bool
	Index int
}

// String is "cpu" or "cuda:N".
func (d Device) String() string {
	if !d.CUDA {
		return "cpu"
	}
	return fmt.Sprintf("cuda:%d", d.Index)
}

// SpecError is a --device value that is not a device name. Callers report it as a usage
// error.
type SpecError struct{ msg string }

func (e *SpecError) Error() string { return e.msg }

// Select is the one reader of device names. spec is "auto" (or ""), "cpu", "cuda",
// "cuda:N" or "cuda:all". It returns the devices to use, in order: "auto" gives CUDA
// device 0 when there is one and otherwise the CPU, with fallback saying why ("" when
// CUDA was found); "cuda:all" gives every CUDA device. Asking for CUDA where there is none
// is an error saying why.
func Select(spec string) (devs []Device, fallback string, err error) {
	switch {
	case spec == "" || spec == "auto":
		n, perr := CUDADevices()
		if perr != nil || n == 0 {
			reason := "no CUDA device"
			if perr != nil {
				reason = perr.Error()
			}
			return []Device{{}}, reason, nil
		}
		return []Device{{CUDA: true}}, "", nil
	case spec == "cpu":
		return []Device{{}}, "", nil
	case spec == "cuda" || spec == "cuda:all" || strings.HasPrefix(spec, "cuda:"):
		idx := 0
		if rest, ok := strings.CutPrefix(spec, "cuda:"); ok && rest != "all" {
			i, perr := strconv.Atoi(rest)
			if perr != nil || i < 0 {
				return nil, "", &SpecError{fmt.Sprintf("bad device %q: want cuda:N with N >= 0, or cuda:all", spec)}
			}
			idx = i
		}
		n, perr := CUDADevices()
		if perr != nil {
			return nil, "", perr
		}
		if spec == "cuda:all" {
			if n == 0 {
				return nil, "", fmt.Errorf("no CUDA device")
			}
			devs = make([]Device, n)
			for i := range devs {
				devs[i] = Device{CUDA: true, Index: i}
			}
			return devs, "", nil
		}
		if idx >= n {
			return nil, "", fmt.Errorf("no CUDA device %d: %d device(s) found", idx, n)
		}
		return []Device{{CUDA: true, Index: idx}}, "", nil
	}
	return nil, "", &SpecError{fmt.Sprintf("unknown device %q (want auto, cpu, cuda, cuda:N or cuda:all)", spec)}
}

// selectOne is Select for the entry points that take one device.
func selectOne(spec string) (Device, string, error) {
	if spec == "cuda:all" {
		return Device{}, "", &SpecError{"cuda:all names several devices; this takes one (cuda or cuda:N)"}
	}
	devs, fallback, err := Select(spec)
	if err != nil {
		return Device{}, "", err
	}
	return devs[0], fallback, nil
}

// Open returns the backend named by spec (see Select; one device). For "auto", fallback
// says why the CPU was chosen ("" when CUDA was). A CUDA device that fails to open under
// "auto" falls back to the CPU with the reason.
func Open(spec string) (b Backend, fallback string, err error) {
	d, fallback, err := selectOne(spec)
	if err != nil {
		return nil, "", err
	}
	b, err = OpenDevice(d)
	if err != nil && (spec == "" || spec == "auto") {
		return NewCPU(), err.Error(), nil
	}
	return b, fallback, err
}

// OpenDevice opens the backend of one selected device.
func OpenDevice(d Device) (Backend, error) {
	if !d.CUDA {
		return NewCPU(), nil
	}
	mu.Lock()
	open := cudaOpener
	mu.Unlock()
	if open == nil {
		return nil, fmt.Errorf("no CUDA device: this autoq binary was built without CUDA (build with -tags cuda, see README)")
	}
	return open(d.Index)
}

// OpenGEMM opens the GEMM implementation and its timer named by spec, like Open.
func OpenGEMM(spec string) (g GEMM, timer GEMMTimer, fallback string, err error) {
	d, fallback, err := selectOne(spec)
	if err != nil {
		return nil, nil, "", err
	}
	if !d.CUDA {
		c := NewCPUGEMM()
		return c, c, fallback, nil
	}
	g, timer, err = openCUDAGEMM(d.Index)
	if err != nil && (spec == "" || spec == "auto") {
		c := NewCPUGEMM()
		return c, c, err.Error(), nil
	}
	return g, timer, fallback, err
}
