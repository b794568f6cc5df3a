//go:build cuda

package cgo

// #include "autoq.h"
import "C"

import (
	"fmt"

	"github.com/autoq/autoq/backend"
)

func init() {
	backend.RegisterCUDA(probe, func(i int) (backend.Backend, error) {
		b, err := Open(i)
		if err != nil {
			return nil, err // not a typed nil inside the interface
		}
		return b, nil
	})
}

// DeviceCount returns the number of CUDA devices. Without a driver or a GPU it returns 0
// and the runtime's reason.
func DeviceCount() (int, error) {
	var n C.int
	if err := call(func() C.int { return C.autoq_device_count(&n) }); err != nil {
		return 0, err
	}
	return int(n), nil
}

// probe is backend's device probe: the count, or why there is no device.
func probe() (int, error) {
	n, err := DeviceCount()
	if err != nil {
		return 0, fmt.Errorf("no CUDA device: %v", err)
	}
	if n == 0 {
		return 0, fmt.Errorf("no CUDA device: cudaGetDeviceCount found none")
	}
	return n, nil
}

// DeviceInfo reads device dev's properties.
func DeviceInfo(dev int) (backend.DeviceInfo, error) {
	var ci C.autoq_device_info
	if err := call(func() C.int { return C.autoq_device_get_info(C.int(dev), &ci) }); err != nil {
		return backend.DeviceInfo{}, err
	}
	return backend.DeviceInfo{
		Kind:            "cuda",
		Index:           dev,
		Name:            C.GoString(&ci.name[0]),
		SMs:             int(ci.sm_count),
		MemoryBytes:     uint64(ci.total_mem_bytes),
		CCMajor:         int(ci.cc_major),
		CCMinor:         int(ci.cc_minor),
		MemBandwidthGBs: float64(ci.mem_bandwidth_gbs),
	}, nil
}

// CheckDevice fails for devices older than sm_80 (Ampere), naming the device.
func CheckDevice(dev int) error {
	return call(func() C.int { return C.autoq_device_check(C.int(dev)) })
}

// MemInfo returns the free and total device memory in bytes.
func MemInfo(dev int) (free, total uint64, err error) {
	var f, t C.uint64_t
	err = call(func() C.int { return C.autoq_mem_info(C.int(dev), &f, &t) })
	return uint64(f), uint64(t), err
}

// Synchronize waits for all work on device dev and reports any asynchronous error.
func Synchronize(dev int) error {
	return call(func() C.int { return C.autoq_device_synchronize(C.int(dev)) })
}
