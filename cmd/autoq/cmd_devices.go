package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"

	"github.com/autoq/autoq/backend"
	"github.com/spf13/pflag"
)

func init() {
	var asJSON bool
	register(&command{
		name:    "devices",
		summary: "list the CUDA devices autoq can use, or say why it runs on the CPU only",
		usage:   "[flags]",
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			if len(args) != 0 {
				return usagef("devices takes no arguments, got %d", len(args))
			}
			rep := devicesReport()
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			rep.print(e.stdout)
			return nil
		},
	})
}

type deviceRow struct {
	backend.DeviceInfo
	Error string `json:"error,omitempty"` // why autoq cannot use this device (e.g. older than sm_80)
}

type devicesOutput struct {
	CUDA    bool        `json:"cuda"`             // at least one usable CUDA device
	Reason  string      `json:"reason,omitempty"` // why not, when CUDA is false
	Devices []deviceRow `json:"devices"`
	CPU     struct {
		Cores int    `json:"cores"`
		Arch  string `json:"arch"`
	} `json:"cpu"`
}

// devicesReport probes CUDA (never crashing without a driver) and opens each device to read
// its properties.
func devicesReport() devicesOutput {
	var rep devicesOutput
	rep.Devices = []deviceRow{}
	rep.CPU.Cores, rep.CPU.Arch = runtime.NumCPU(), runtime.GOOS+"/"+runtime.GOARCH
	n, err := backend.CUDADevices()
	if err != nil {
		rep.Reason = err.Error()
		return rep
	}
	for i := 0; i < n; i++ {
		b, _, err := backend.Open(fmt.Sprintf("cuda:%d", i))
		if err != nil {
			rep.Devices = append(rep.Devices, deviceRow{DeviceInfo: backend.DeviceInfo{Kind: "cuda", Index: i}, Error: err.Error()})
			continue
		}
		rep.Devices = append(rep.Devices, deviceRow{DeviceInfo: b.Info()})
		rep.CUDA = true
		_ = b.Close()
	}
	if !rep.CUDA && rep.Reason == "" {
		rep.Reason = "no usable CUDA device"
	}
	return rep
}

func (r devicesOutput) print(w io.Writer) {
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
