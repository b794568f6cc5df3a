package autoquant

import (
	"fmt"
	"io"
	"runtime"

	"github.com/autoq/autoq/backend"
)

// DeviceRow is one CUDA device.
type DeviceRow struct {
	backend.DeviceInfo
	Error string `json:"error,omitempty"` // why autoq cannot use this device (e.g. older than sm_80)
}

// DevicesReport is the result of Devices.
type DevicesReport struct {
	CUDA    bool        `json:"cuda"`             // at least one usable CUDA device
	Reason  string      `json:"reason,omitempty"` // why not, when CUDA is false
	Devices []DeviceRow `json:"devices"`
	CPU     struct {
		Cores int    `json:"cores"`
		Arch  string `json:"arch"`
	} `json:"cpu"`
}

// Devices is `autoq devices`: it probes CUDA (never crashing without a driver) and opens each device to read
// its properties.
func Devices() *DevicesReport {
	rep := &DevicesReport{}
	rep.Devices = []DeviceRow{}
	rep.CPU.Cores, rep.CPU.Arch = runtime.NumCPU(), runtime.GOOS+"/"+runtime.GOARCH
	n, err := backend.CUDADevices()
	if err != nil {
		rep.Reason = err.Error()
		return rep
	}
	for i := 0; i < n; i++ {
		b, err := backend.OpenDevice(backend.Device{CUDA: true, Index: i})
		if err != nil {
			rep.Devices = append(rep.Devices, DeviceRow{DeviceInfo: backend.DeviceInfo{Kind: "cuda", Index: i}, Error: err.Error()})
			continue
		}
		rep.Devices = append(rep.Devices, DeviceRow{DeviceInfo: b.Info()})
		rep.CUDA = true
		_ = b.Close()
	}
	if !rep.CUDA && rep.Reason == "" {
		rep.Reason = "no usable CUDA device"
	}
	return rep
}

// WriteTable prints one line per device, or why there is none.
func (r *DevicesReport) WriteTable(w io.Writer) {
	if len(r.Devices) == 0 {
		fmt.Fprintf(w, "CPU only (%s)\n", r.Reason)
		return
	}
	for _, d := range r.Devices {
		if d.Error != "" {
			fmt.Fprintf(w, "cuda:%d  unusable: %s\n", d.Index, d.Error)
			continue
		}
		fmt.Fprintf(w, "cuda:%d  %s  sm_%d%d  %d SMs  %.1f GiB  %.0f GB/s\n", d.Index, d.Name, d.CCMajor, d.CCMinor,
			d.SMs, float64(d.MemoryBytes)/(1<<30), d.MemBandwidthGBs)
	}
	if !r.CUDA {
		fmt.Fprintf(w, "CPU only (%s)\n", r.Reason)
	}
}
