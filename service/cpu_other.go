//go:build !unix

package service

import (
	"runtime/metrics"
	"time"
)

// processCPUTime is not measured on this platform.
func processCPUTime() (time.Duration, bool) { return 0, false }

// memoryUse returns 0 for the machine's share (not measured on this
// platform) and the bytes this process's runtime holds from the OS.
func memoryUse() (float64, uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() == metrics.KindUint64 {
		return 0, sample[0].Value.Uint64()
	}
	return 0, 0
}
