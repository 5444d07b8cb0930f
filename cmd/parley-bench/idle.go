package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// idleConfig is the configuration of the idle scenario.
type idleConfig struct {
	common
	conns     int
	hold      time.Duration
	settle    time.Duration
	serverPID int
}

func parseIdle(args []string, out io.Writer) (idleConfig, error) {
	var c idleConfig
	fs := flag.NewFlagSet("parley-bench idle", flag.ContinueOnError)
	fs.SetOutput(out)
	rawURL, debugURL := c.register(fs, 100)
	fs.IntVar(&c.conns, "conns", 10000, "sockets to open, spread over the users")
	fs.DurationVar(&c.hold, "hold", 20*time.Second, "how long to hold the sockets idle once connected")
	fs.DurationVar(&c.settle, "settle", 2*time.Second, "wait after the last connect before measuring")
	fs.IntVar(&c.serverPID, "server-pid", 0, "`pid` of the server, to read its RSS from /proc")
	if err := parseArgs(fs, args); err != nil {
		return c, err
	}
	if err := c.check(*rawURL, *debugURL); err != nil {
		return c, err
	}
	switch {
	case c.conns < 1 || c.conns > 200_000:
		return c, errors.New("--conns must be between 1 and 200000")
	case c.hold < 0 || c.hold > time.Hour:
		return c, errors.New("--hold must be between 0 and 1h")
	}
	return c, nil
}

// idleResult is what the idle scenario measured.
type idleResult struct {
	Connected, Failed, Dropped int
	Errors                     map[string]int
	ConnectTime                time.Duration
	Before, After, End         memSample
}

// perConn is the (heap + stack) in use per connection between two samples.
func perConn(before, after memSample, n int) float64 {
	if n == 0 {
		return 0
	}
	return (float64(after.HeapInuse+after.StackInuse) - float64(before.HeapInuse+before.StackInuse)) / float64(n)
}

func rssPerConn(before, after memSample, n int) float64 {
	if n == 0 {
		return 0
	}
	return (float64(after.RSS) - float64(before.RSS)) / float64(n)
}

// runIdle registers the users, measures the server, opens the sockets,
// measures again once all are connected and after the hold, and closes them.
func runIdle(ctx context.Context, c idleConfig, out, progress io.Writer) (*idleResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.limit)
	defer cancel()
	nofile, err := raiseFileLimit()
	if err != nil {
		return nil, fmt.Errorf("raise RLIMIT_NOFILE: %w", err)
	}
	if need := uint64(c.conns) + 64; nofile < need {
		return nil, fmt.Errorf("RLIMIT_NOFILE is %d, %d sockets need about %d (raise the hard limit: ulimit -Hn)", nofile, c.conns, need)
	}
	if per := c.conns / c.sourceIPs; per > 25000 {
		fmt.Fprintf(progress, "warning: %d connections per source address may exhaust ephemeral ports; use --source-ips %d\n", per, c.conns/25000+1)
	}
	rest := newREST(&c.common)
	users, err := c.getUsers(ctx, rest, progress)
	if err != nil {
		return nil, err
	}
	res := &idleResult{Errors: map[string]int{}}
	hc := &http.Client{Timeout: 30 * time.Second}
	if res.Before, err = sampleMemory(ctx, hc, c.debugURL, c.serverPID); err != nil {
		return nil, fmt.Errorf("baseline memory: %w", err)
	}

	clients := make([]*sioClient, c.conns)
	var connected, failed, dropped atomic.Int64
	var mu sync.Mutex // guards res.Errors
	stop := everySecond(ctx, progress, func(time.Duration) string {
		return fmt.Sprintf("connected %d/%d, failed %d, dropped %d", connected.Load(), c.conns, failed.Load(), dropped.Load())
	})
	defer stop()
	start := time.Now()
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(c.concurrency, c.conns) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				cl, err := dialSIO(ctx, dialOptions{base: c.base, token: users[i%len(users)].Token, sourceIP: c.sourceIP(i), timeout: c.timeout})
				if err != nil {
					failed.Add(1)
					mu.Lock()
					res.Errors[errKey(err)]++
					mu.Unlock()
					continue
				}
				clients[i] = cl
				connected.Add(1)
				go func() {
					<-cl.Done()
					if ctx.Err() == nil {
						dropped.Add(1)
					}
				}()
			}
		}()
	}
	for i := 0; i < c.conns && ctx.Err() == nil; i++ {
		select {
		case jobs <- i:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	res.ConnectTime = time.Since(start)
	fmt.Fprintf(progress, "connected %d sockets in %s (%d failed)\n", connected.Load(), res.ConnectTime.Round(time.Millisecond), failed.Load())

	sleep(ctx, c.settle)
	if res.After, err = sampleMemory(ctx, hc, c.debugURL, c.serverPID); err != nil {
		return nil, fmt.Errorf("memory after connecting: %w", err)
	}
	sleep(ctx, c.hold)
	if res.End, err = sampleMemory(ctx, hc, c.debugURL, c.serverPID); err != nil {
		return nil, fmt.Errorf("memory after the hold: %w", err)
	}
	stop()
	res.Connected, res.Failed, res.Dropped = int(connected.Load()), int(failed.Load()), int(dropped.Load())
	cancel() // closing is not dropping
	for _, cl := range clients {
		if cl != nil {
			cl.Close()
		}
	}
	printIdle(out, c, res)
	if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return res, err
	}
	return res, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// errKey shortens an error for counting: the addresses and ports in
// network errors vary, their last part ("connection reset by peer") not.
func errKey(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && (strings.Contains(s[:i], " tcp ") || strings.HasPrefix(s, "dial ")) {
		return "network: " + s[i+2:]
	}
	return s
}

func printIdle(w io.Writer, c idleConfig, r *idleResult) {
	fmt.Fprintf(w, "\n== idle: %d sockets over %d users, %d source address(es), held %s ==\n", c.conns, c.users, c.sourceIPs, c.hold)
	fmt.Fprintf(w, "connected   %d (failed %d, dropped during hold %d) in %s (%.0f/s)\n",
		r.Connected, r.Failed, r.Dropped, r.ConnectTime.Round(time.Millisecond), float64(r.Connected)/r.ConnectTime.Seconds())
	printErrors(w, r.Errors)
	if c.debugURL != "" {
		fmt.Fprintf(w, "server sockets  before %d, connected %d, end of hold %d; goroutines %d → %d\n",
			r.Before.Connections, r.After.Connections, r.End.Connections, r.Before.Goroutines, r.End.Goroutines)
		for _, s := range []struct {
			name string
			m    memSample
		}{{"baseline", r.Before}, {"connected", r.After}, {"end of hold", r.End}} {
			fmt.Fprintf(w, "%-12s heap_inuse %8.1f MiB  stack_inuse %7.1f MiB  sys %8.1f MiB\n",
				s.name, mib(s.m.HeapInuse), mib(s.m.StackInuse), mib(s.m.Sys))
		}
		fmt.Fprintf(w, "per connection (heap_inuse+stack_inuse delta): %.2f KiB after connecting, %.2f KiB at end of hold\n",
			perConn(r.Before, r.After, r.Connected)/1024, perConn(r.Before, r.End, r.Connected)/1024)
	} else {
		fmt.Fprintln(w, "no --debug-url: server heap not measured")
	}
	if c.serverPID != 0 {
		fmt.Fprintf(w, "server RSS   baseline %.1f MiB, connected %.1f MiB, end %.1f MiB: %.2f KiB per connection\n",
			mib(r.Before.RSS), mib(r.After.RSS), mib(r.End.RSS), rssPerConn(r.Before, r.End, r.Connected)/1024)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
