package main

import (
	"bytes"
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

// historyConfig is the configuration of the history scenario.
type historyConfig struct {
	common
	workers  int
	duration time.Duration
	pageSize int
}

func parseHistory(args []string, out io.Writer) (historyConfig, error) {
	var c historyConfig
	fs := flag.NewFlagSet("parley-bench history", flag.ContinueOnError)
	fs.SetOutput(out)
	rawURL, debugURL := c.register(fs, 0)
	fs.IntVar(&c.workers, "workers", 32, "concurrent readers, each waiting for its page before asking the next")
	fs.DurationVar(&c.duration, "duration", 20*time.Second, "how long to read")
	fs.IntVar(&c.pageSize, "page", 50, "messages per page (limit)")
	if err := parseArgs(fs, args); err != nil {
		return c, err
	}
	if c.usersFile == "" {
		return c, errors.New("--users-file is required: seed conversations first (parley-bench seed --conversations N --messages M)")
	}
	c.users = max(c.users, 1) // every seeded user may read; --users is not used
	if err := c.check(*rawURL, *debugURL); err != nil {
		return c, err
	}
	switch {
	case c.workers < 1 || c.workers > 1024:
		return c, errors.New("--workers must be between 1 and 1024")
	case c.duration <= 0 || c.duration > time.Hour:
		return c, errors.New("--duration must be between 0 and 1h")
	case c.pageSize < 1 || c.pageSize > 200:
		return c, errors.New("--page must be between 1 and 200")
	}
	c.concurrency = max(c.concurrency, c.workers)
	return c, nil
}

// historyResult is what the history scenario measured.
type historyResult struct {
	Pages, Failed int64
	Errors        map[string]int
	Took          time.Duration
	Client        []time.Duration // request sent → body read
	Server        []time.Duration // Server-Timing app;dur
}

// PagesPerSecond is the rate of pages read correctly.
func (r *historyResult) PagesPerSecond() float64 {
	return float64(r.Pages) / r.Took.Seconds()
}

// runHistory has every worker read random pages of random seeded
// conversations as one of its two members: GET
// /api/messages/{me}/{peer}?limit=50&beforeSeq=S with S drawn uniformly, so
// most pages are old ones, spread over the whole database. A page counts
// when it holds exactly the messages expected (seq S-1 down).
func runHistory(ctx context.Context, c historyConfig, out, progress io.Writer) (*historyResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.limit)
	defer cancel()
	f, err := readUsersFile(c.usersFile)
	if err != nil {
		return nil, err
	}
	var convs []*seededConv
	for _, cv := range f.Conversations {
		if cv.Messages >= c.pageSize {
			convs = append(convs, cv)
		}
	}
	if len(convs) == 0 {
		return nil, fmt.Errorf("%s holds no conversation with %d messages or more", c.usersFile, c.pageSize)
	}
	rest := newREST(&c.common)
	if err := checkToken(ctx, rest, f.Users[convs[0].A]); err != nil {
		return nil, err
	}
	res := &historyResult{Errors: map[string]int{}}
	var mu sync.Mutex // guards res.Errors and the latency slices
	var pages, failed atomic.Int64
	var prev int64
	stop := everySecond(ctx, progress, func(time.Duration) string {
		p := pages.Load()
		line := fmt.Sprintf("pages %d (%d/s), failed %d", p, p-prev, failed.Load())
		prev = p
		return line
	})
	defer stop()
	runCtx, stopRun := context.WithTimeout(ctx, c.duration)
	defer stopRun()
	waitProfile := c.profileServer(ctx, c.duration, progress)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			var client, server []time.Duration
			for runCtx.Err() == nil {
				cv := convs[rng.IntN(len(convs))]
				me, peer := f.Users[cv.A], f.Users[cv.B]
				if rng.IntN(2) == 1 {
					me, peer = peer, me
				}
				before := c.pageSize + 1 + rng.IntN(cv.Messages-c.pageSize+1) // newest page: before = Messages+1
				cl, sv, err := readPage(runCtx, rest, me, peer, before, c.pageSize)
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
				pages.Add(1)
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
	res.Pages, res.Failed = pages.Load(), failed.Load()
	slices.Sort(res.Client)
	slices.Sort(res.Server)
	printHistory(out, c, len(convs), res)
	return res, nil
}

var messageIDKey = []byte(`"messageId":`)

// readPage reads one page and checks it: status 200, exactly size
// messages, the first one at seq before-1. It returns the client-side
// latency and the server's own (Server-Timing), -1 when the server does
// not say.
func readPage(ctx context.Context, rest *restClient, me, peer *benchUser, before, size int) (client, server time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, "GET", rest.base+"/api/messages/"+me.ID+"/"+peer.ID+
		"?limit="+strconv.Itoa(size)+"&beforeSeq="+strconv.Itoa(before), nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+me.Token)
	t0 := time.Now()
	resp, err := rest.http.Do(req)
	if err != nil {
		return 0, 0, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	resp.Body.Close()
	client = time.Since(t0)
	if err != nil {
		return 0, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("status %d: %.120s", resp.StatusCode, body)
	}
	// The bench checks the page without decoding it all: decoding 50
	// messages costs more CPU than the server spends producing them, and
	// both share the machine.
	if n := bytes.Count(body, messageIDKey); n != size {
		return 0, 0, fmt.Errorf("page of %d messages, want %d", n, size)
	}
	if want := `"seq":` + strconv.Itoa(before-1) + `,`; !bytes.Contains(body[:min(len(body), 4096)], []byte(want)) {
		return 0, 0, fmt.Errorf("page does not start at seq %d", before-1)
	}
	st, ok := strings.CutPrefix(resp.Header.Get("Server-Timing"), "app;dur=")
	ms, perr := strconv.ParseFloat(st, 64)
	if !ok || perr != nil {
		return client, -1, nil // a server without Server-Timing (older builds)
	}
	return client, time.Duration(ms * float64(time.Millisecond)), nil
}

func printHistory(w io.Writer, c historyConfig, convs int, r *historyResult) {
	fmt.Fprintf(w, "\n== history: %d workers reading pages of %d from %d conversations for %s ==\n", c.workers, c.pageSize, convs, c.duration)
	fmt.Fprintf(w, "pages read %d (%.0f pages/s), failed %d\n", r.Pages, r.PagesPerSecond(), r.Failed)
	fmt.Fprintln(w, latencyLine("client latency", r.Client))
	fmt.Fprintln(w, latencyLine("server (timing)", r.Server))
	keys := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  error x%d: %s\n", r.Errors[k], k)
	}
}
