package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// benchUser is a registered user and its bearer token.
type benchUser struct {
	ID    string `json:"id"`
	Name  string `json:"username"`
	Token string `json:"token"`
}

// envelope is the answer of every REST call and socket ack (API.md §1).
type envelope struct {
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data"`
	Error   *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// restClient calls the server's REST API.
type restClient struct {
	base string
	http *http.Client
}

func newREST(c *common) *restClient {
	tr := &http.Transport{MaxIdleConnsPerHost: c.concurrency, IdleConnTimeout: 30 * time.Second}
	return &restClient{base: c.base.String(), http: &http.Client{Timeout: c.timeout, Transport: tr}}
}

// call sends a JSON request and decodes the envelope; a non-2xx status or
// success=false is an error naming the code.
func (r *restClient) call(ctx context.Context, method, path, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env envelope
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&env); err != nil {
		return fmt.Errorf("%s %s: status %d, not an envelope: %w", method, path, resp.StatusCode, err)
	}
	if resp.StatusCode/100 != 2 || !env.Success {
		code := "?"
		if env.Error != nil {
			code = env.Error.Code + ": " + env.Error.Message
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			code += " (start the server with --auth-rate-limit 0 for benchmarks)"
		}
		return fmt.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, code)
	}
	if out != nil {
		return json.Unmarshal(env.Data, out)
	}
	return nil
}

// registerUsers registers n users with unique names, concurrency at a
// time, and stops at the first error.
func registerUsers(ctx context.Context, c *common, rest *restClient, n int, progress io.Writer) ([]*benchUser, error) {
	run := strconv.FormatInt(time.Now().UnixNano()%1e10, 36)
	users := make([]*benchUser, n)
	var done atomic.Int64
	stop := everySecond(ctx, progress, func(time.Duration) string {
		return fmt.Sprintf("registered %d/%d users", done.Load(), n)
	})
	defer stop()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(c.concurrency, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				name := fmt.Sprintf("b%s_%d", run, i)
				var res struct{ UserID, Token string }
				err := rest.call(ctx, "POST", "/api/users/register", "", map[string]string{
					"username": name, "password": "bench-password-" + name, "deviceId": "bench",
					"publicKey": "bench-key", "email": name + "@bench.invalid", "name": name}, &res)
				if err != nil {
					cancel(err)
					continue
				}
				users[i] = &benchUser{ID: res.UserID, Name: name, Token: res.Token}
				done.Add(1)
			}
		}()
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		select {
		case jobs <- i:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	return users, nil
}

// memSample is the server's memory at one moment.
type memSample struct {
	HeapInuse   uint64 // runtime.MemStats.HeapInuse after a forced GC
	StackInuse  uint64
	Sys         uint64
	Goroutines  int
	Connections int    // sockets the server's hub holds
	RSS         uint64 // VmRSS of --server-pid, 0 when not given
}

// sampleMemory forces a GC on the server (pprof's heap?gc=1) and reads
// expvar's memstats and /debug/parley from its debug listener, and the
// RSS of pid when it is not 0.
func sampleMemory(ctx context.Context, hc *http.Client, debugURL string, pid int) (memSample, error) {
	var s memSample
	if pid != 0 {
		rss, err := readRSS(pid)
		if err != nil {
			return s, err
		}
		s.RSS = rss
	}
	if debugURL == "" {
		return s, nil
	}
	get := func(path string, out any) error {
		req, err := http.NewRequestWithContext(ctx, "GET", debugURL+path, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
		}
		if out == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			return err
		}
		return json.NewDecoder(resp.Body).Decode(out)
	}
	// Twice: the first cycle runs finalizers whose objects the second frees.
	for range 2 {
		if err := get("/debug/pprof/heap?gc=1", nil); err != nil {
			return s, err
		}
	}
	var vars struct {
		Memstats struct{ HeapInuse, StackInuse, Sys uint64 }
	}
	if err := get("/debug/vars", &vars); err != nil {
		return s, err
	}
	var p struct{ Connections, Goroutines int }
	if err := get("/debug/parley", &p); err != nil {
		return s, err
	}
	s.HeapInuse, s.StackInuse, s.Sys = vars.Memstats.HeapInuse, vars.Memstats.StackInuse, vars.Memstats.Sys
	s.Goroutines, s.Connections = p.Goroutines, p.Connections
	if pid != 0 { // read again after the GC, closer to the memstats moment
		if rss, err := readRSS(pid); err == nil {
			s.RSS = rss
		}
	}
	return s, nil
}

// readRSS returns VmRSS of a process, in bytes, from /proc/<pid>/status.
func readRSS(pid int) (uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat: 100
// on every Linux architecture Go supports.
const clockTicks = 100

// readCPU returns the CPU time (user + system, all threads) a process has
// used so far, from /proc/<pid>/stat.
func readCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// the fields after it start with the state (field 3), so utime and
	// stime (fields 14 and 15) are the 12th and 13th.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// loadAverage is the first three fields of /proc/loadavg ("" if unreadable):
// the machine's load, printed with every throughput figure.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
