//go:build unix

package service

import (
	"bufio"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// processCPUTime is the CPU time (user and system) this process used.
func processCPUTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

// memoryUse returns the share of the machine's memory in use (from
// /proc/meminfo: MemTotal less MemAvailable; 0 where there is none) and the
// bytes this process's runtime holds from the OS.
func memoryUse() (float64, uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(sample)
	var held uint64
	if sample[0].Value.Kind() == metrics.KindUint64 {
		held = sample[0].Value.Uint64()
	}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, held
	}
	defer f.Close()
	var total, avail float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		switch name {
		case "MemTotal":
			total = v
		case "MemAvailable":
			avail = v
		}
	}
	if total <= 0 {
		return 0, held
	}
	return 100 * (total - avail) / total, held
}
