package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// readsFlags are what a read scenario (history, chats) adds to the common
// flags: how many readers, and how long they read.
type readsFlags struct {
	workers  int
	duration time.Duration
}

// addFlags adds --workers (default workers, each waiting for its answer,
// named what, before asking the next) and --duration to fs.
func (r *readsFlags) addFlags(fs *flag.FlagSet, workers int, what string) {
	fs.IntVar(&r.workers, "workers", workers, "concurrent readers, each waiting for its "+what+" before asking the next")
	fs.DurationVar(&r.duration, "duration", 20*time.Second, "how long to read")
}

// parseReads parses the flags of a read scenario (fs, with c's and r's
// registered): it reads as the seeded accounts of --users-file (seed tells
// how to seed them), and bounds --workers and --duration.
func parseReads(fs *flag.FlagSet, args []string, c *common, r *readsFlags, rawURL, debugURL *string, seed string) error {
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if c.usersFile == "" {
		return errors.New("--users-file is required: seed conversations first (parley-bench seed " + seed + ")")
	}
	c.users = max(c.users, 1) // the readers come from the file; --users is not used
	if err := c.check(*rawURL, *debugURL); err != nil {
		return err
	}
	switch {
	case r.workers < 1 || r.workers > 1024:
		return errors.New("--workers must be between 1 and 1024")
	case r.duration <= 0 || r.duration > time.Hour:
		return errors.New("--duration must be between 0 and 1h")
	}
	c.concurrency = max(c.concurrency, r.workers)
	return nil
}

// readsResult is what a read scenario (history, chats) measured: the
// requests answered and checked, the failures by error, and each
// request's latency as the client saw it and as the server reported it.
type readsResult struct {
	Reads, Failed int64
	Errors        map[string]int
	Took          time.Duration
	Client        []time.Duration // request sent → body read
	Server        []time.Duration // Server-Timing app;dur
}

// PerSecond is the rate of reads answered correctly.
func (r *readsResult) PerSecond() float64 {
	return float64(r.Reads) / r.Took.Seconds()
}

// runReads has workers readers call read, each with a random source of its
// own and each waiting for its answer before the next, for duration; a
// read cut off by the end of the run is not counted. The progress line
// names the reads noun. With --debug-url and --cpu-profile the server is
// profiled over the run.
func runReads(ctx context.Context, c *common, workers int, duration time.Duration, noun string, progress io.Writer,
	read func(ctx context.Context, rng *rand.Rand) (client, server time.Duration, err error)) *readsResult {
	res := &readsResult{Errors: map[string]int{}}
	var mu sync.Mutex // guards res.Errors and the latency slices
	var reads, failed atomic.Int64
	var prev int64
	stop := everySecond(ctx, progress, func(time.Duration) string {
		n := reads.Load()
		line := fmt.Sprintf("%s %d (%d/s), failed %d", noun, n, n-prev, failed.Load())
		prev = n
		return line
	})
	defer stop()
	runCtx, stopRun := context.WithTimeout(ctx, duration)
	defer stopRun()
	waitProfile := c.profileServer(ctx, duration, progress)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			var client, server []time.Duration
			for runCtx.Err() == nil {
				cl, sv, err := read(runCtx, rng)
				if err != nil {
					if runCtx.Err() != nil {
						break // cut off by the end of the run
					}
					failed.Add(1)
					mu.Lock()
					res.Errors[errKey(err)]++
					mu.Unlock()
					continue
				}
				reads.Add(1)
				client = append(client, cl)
				if sv >= 0 {
					server = append(server, sv)
				}
			}
			mu.Lock()
			res.Client, res.Server = append(res.Client, client...), append(res.Server, server...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Took = time.Since(start)
	stop()
	if err := waitProfile(); err != nil {
		fmt.Fprintln(progress, "warning:", err)
	}
	res.Reads, res.Failed = reads.Load(), failed.Load()
	slices.Sort(res.Client)
	slices.Sort(res.Server)
	return res
}

// getChecked sends GET url with token and returns the body of a 200
// answer (at most maxBody bytes), the client-side latency and the
// server's own (Server-Timing), -1 when the server does not say.
func getChecked(ctx context.Context, rest *restClient, url, token string, maxBody int64) (body []byte, client, server time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	t0 := time.Now()
	resp, err := rest.http.Do(req)
	if err != nil {
		return nil, 0, 0, err
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	client = time.Since(t0)
	if err != nil {
		return nil, 0, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, 0, fmt.Errorf("status %d: %.120s", resp.StatusCode, body)
	}
	st, ok := strings.CutPrefix(resp.Header.Get("Server-Timing"), "app;dur=")
	ms, perr := strconv.ParseFloat(st, 64)
	if !ok || perr != nil {
		return body, client, -1, nil // a server without Server-Timing (older builds)
	}
	return body, client, time.Duration(ms * float64(time.Millisecond)), nil
}

// printReads prints what a read scenario measured, under its title line.
func printReads(w io.Writer, title, noun string, r *readsResult) {
	fmt.Fprintf(w, "\n== %s ==\n", title)
	fmt.Fprintf(w, "%s read %d (%.0f %s/s), failed %d\n", noun, r.Reads, r.PerSecond(), noun, r.Failed)
	fmt.Fprintln(w, latencyLine("client latency", r.Client))
	fmt.Fprintln(w, latencyLine("server (timing)", r.Server))
	printErrors(w, r.Errors)
}

// printErrors prints each distinct error of a run with its count, sorted.
func printErrors(w io.Writer, errs map[string]int) {
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  error x%d: %s\n", errs[k], k)
	}
}
