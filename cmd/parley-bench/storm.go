package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-chat/parley"
)

// stormConfig is the configuration of the storm scenario.
type stormConfig struct {
	common
	senders       int
	perUser       int
	syncLimit     int
	size          int
	retries       int
	markDelivered bool
}

func parseStorm(args []string, out io.Writer) (stormConfig, error) {
	var c stormConfig
	fs := flag.NewFlagSet("parley-bench storm", flag.ContinueOnError)
	fs.SetOutput(out)
	rawURL, debugURL := c.register(fs, 1000)
	fs.IntVar(&c.senders, "senders", 100, "accounts that send while the clients are offline (after the clients in --users-file)")
	fs.IntVar(&c.perUser, "per-user", 5, "messages sent to each client while it is offline")
	fs.IntVar(&c.syncLimit, "sync-limit", 50, "page size of GET /api/sync")
	fs.IntVar(&c.size, "size", 256, "`bytes` of ciphertext-like padding in each message")
	fs.IntVar(&c.retries, "retries", 5, "connection attempts per client in the storm, one second apart (a refused or timed-out dial is retried, as clients do)")
	fs.BoolVar(&c.markDelivered, "mark-delivered", true, "once caught up, each client marks its last message delivered (POST /api/status), as clients do")
	if err := parseArgs(fs, args); err != nil {
		return c, err
	}
	if err := c.check(*rawURL, *debugURL); err != nil {
		return c, err
	}
	switch {
	case c.senders < 1 || c.senders > 10_000:
		return c, errors.New("--senders must be between 1 and 10000")
	case c.perUser < 1 || c.perUser > 10_000:
		return c, errors.New("--per-user must be between 1 and 10000")
	case c.syncLimit < 1 || c.syncLimit > 200:
		return c, errors.New("--sync-limit must be between 1 and 200")
	case c.size < 0 || c.size > 48<<10:
		return c, errors.New("--size must be between 0 and 49152")
	case c.retries < 1 || c.retries > 100:
		return c, errors.New("--retries must be between 1 and 100")
	}
	return c, nil
}

// stormClient is one client of the storm: the messages sent to it while
// it was offline, and those it has in hand since it came back.
type stormClient struct {
	user *benchUser
	sock *sioClient

	mu        sync.Mutex
	expected  map[string]bool // acked sends addressed to it
	got       map[string]int  // messageId → times seen (live event or sync)
	last      string          // the newest message synced, for the delivered mark
	attempts  int             // connection attempts in the storm
	connected time.Duration   // since the storm began; 0 until connected
	caughtUp  time.Duration   // since the storm began; 0 until every expected message is in hand
	marked    time.Duration   // since the storm began; 0 until the delivered mark is stored
}

func (sc *stormClient) see(id string) {
	sc.mu.Lock()
	sc.got[id]++
	sc.mu.Unlock()
}

// stormResult is what the storm scenario measured.
type stormResult struct {
	Clients, Senders                        int
	Sent, Acked, SendFailed                 int64
	SendTime                                time.Duration
	Connected, ConnectFailed, CaughtUp      int
	Retried                                 int // clients that needed more than one attempt
	Lost, SeenTwice                         int
	SyncCalls, SyncFailed, Marked, MarkFail int64
	Connect, CatchUp                        []time.Duration // per client, since the storm began
	AllCaughtUp, AllMarked                  time.Duration
	Errors                                  map[string]int
}

// runStorm connects every client, disconnects them all, has the senders
// send perUser messages to each of them, then reconnects every client at
// the same moment; each one connects its socket, pages through GET
// /api/sync from the oldest message not delivered to it, and counts as
// caught up once it holds every message acknowledged to its senders (live
// events count too). The time until the last client is caught up is the
// result; a message acknowledged but never seen is lost.
func runStorm(ctx context.Context, c stormConfig, out, progress io.Writer) (*stormResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.limit)
	defer cancel()
	nofile, err := raiseFileLimit()
	if err != nil {
		return nil, fmt.Errorf("raise RLIMIT_NOFILE: %w", err)
	}
	if need := uint64(c.users+c.senders+c.concurrency) + 64; nofile < need {
		return nil, fmt.Errorf("RLIMIT_NOFILE is %d, %d clients, %d senders and %d requests in flight need about %d",
			nofile, c.users, c.senders, c.concurrency, need)
	}
	rest := newREST(&c.common)
	all := c.common
	all.users = c.users + c.senders
	users, err := all.getUsers(ctx, rest, progress)
	if err != nil {
		return nil, err
	}
	res := &stormResult{Clients: c.users, Senders: c.senders, Errors: map[string]int{}}
	var errMu sync.Mutex
	countErr := func(key string) {
		errMu.Lock()
		res.Errors[key]++
		errMu.Unlock()
	}
	clients := make([]*stormClient, c.users)
	for i, u := range users[:c.users] {
		clients[i] = &stormClient{user: u, expected: map[string]bool{}, got: map[string]int{}}
	}
	dial := func(sc *stormClient, i int) (*sioClient, error) {
		return dialSIO(ctx, dialOptions{base: c.base, token: sc.user.Token, sourceIP: c.sourceIP(i), timeout: c.timeout,
			onRaw: func(p []byte) {
				if id, ok := rawStringField(p, parley.EventNewMessage, "messageId"); ok {
					sc.see(id)
				}
			}})
	}

	// 1. Everyone online once, then everyone offline.
	var n atomic.Int64
	stop := everySecond(ctx, progress, func(time.Duration) string { return fmt.Sprintf("connected %d/%d", n.Load(), c.users) })
	err = forEach(ctx, c.concurrency, len(clients), func(i int) error {
		s, err := dial(clients[i], i)
		if err != nil {
			return fmt.Errorf("connect %s: %w", clients[i].user.Name, err)
		}
		clients[i].sock = s
		n.Add(1)
		return nil
	})
	stop()
	defer func() {
		for _, sc := range clients {
			if sc.sock != nil {
				sc.sock.Close()
			}
		}
	}()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "%d clients connected; disconnecting them all\n", c.users)
	for _, sc := range clients {
		sc.sock.Close()
	}
	for _, sc := range clients {
		select {
		case <-sc.sock.Done():
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		sc.sock = nil
	}
	sleep(ctx, time.Second) // let the server notice every close

	// 2. The senders send to the offline clients.
	senders := make([]*sioClient, c.senders)
	err = forEach(ctx, c.concurrency, c.senders, func(i int) error {
		s, err := dialSIO(ctx, dialOptions{base: c.base, token: users[c.users+i].Token, sourceIP: c.sourceIP(i), timeout: c.timeout})
		senders[i] = s
		return err
	})
	defer func() {
		for _, s := range senders {
			if s != nil {
				s.Close()
			}
		}
	}()
	if err != nil {
		return nil, fmt.Errorf("connect senders: %w", err)
	}
	pad := base64.StdEncoding.EncodeToString(make([]byte, c.size*3/4))
	run := strconv.FormatInt(time.Now().UnixNano()%1e10, 36)
	total := c.users * c.perUser
	var sent, acked, failed atomic.Int64
	stop = everySecond(ctx, progress, func(time.Duration) string {
		return fmt.Sprintf("offline sends: acked %d/%d, failed %d", acked.Load(), total, failed.Load())
	})
	sendStart := time.Now()
	// Client i hears from sender i mod S only, so the setup creates one
	// conversation per client rather than one per message.
	err = forEach(ctx, c.senders, c.senders, func(s int) error {
		window := make(chan struct{}, 8)
		var wg sync.WaitGroup
		for j := 0; ; j++ {
			i := s + (j/c.perUser)*c.senders // client index
			if i >= c.users {
				break
			}
			sc := clients[i]
			cmid := fmt.Sprintf("%s-%d-%d", run, i, j%c.perUser)
			content, _ := json.Marshal(payload{Message: pad, Key: "k", IV: "iv", Bench: cmid})
			arg, _ := json.Marshal(map[string]string{"recipientId": sc.user.ID, "encryptedContent": string(content), "type": "text", "clientMessageId": cmid})
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			wg.Add(1)
			err := senders[s].EmitAck("send_message", arg, func(reply json.RawMessage, err error) {
				defer wg.Done()
				defer func() { <-window }()
				var env struct {
					envelope
					Data struct{ MessageID string } `json:"data"`
				}
				if err == nil && (json.Unmarshal(reply, &env) != nil || !env.Success || env.Data.MessageID == "") {
					err = errors.New("send refused")
					if env.Error != nil {
						err = errors.New("send refused: " + env.Error.Code)
					}
				}
				if err != nil {
					failed.Add(1)
					countErr("send: " + errKey(err))
					return
				}
				sc.mu.Lock()
				sc.expected[env.Data.MessageID] = true
				sc.mu.Unlock()
				acked.Add(1)
			})
			if err != nil {
				wg.Done()
				<-window
				failed.Add(1)
				countErr("send: " + errKey(err))
				continue
			}
			sent.Add(1)
		}
		wg.Wait()
		return nil
	})
	stop()
	res.SendTime = time.Since(sendStart)
	res.Sent, res.Acked, res.SendFailed = sent.Load(), acked.Load(), failed.Load()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "%d messages acked in %s (%.0f/s) while the clients were offline; the storm begins\n",
		res.Acked, res.SendTime.Round(time.Millisecond), float64(res.Acked)/res.SendTime.Seconds())

	// 3. The storm: every client reconnects at the same moment.
	restSlots := make(chan struct{}, c.concurrency) // REST calls in flight, bounded by file descriptors
	var connected, caughtUp, marked atomic.Int64
	var syncCalls, syncFailed, markFailed, connectFailed atomic.Int64
	stop = everySecond(ctx, progress, func(time.Duration) string {
		return fmt.Sprintf("storm: connected %d/%d, caught up %d, marked %d, sync calls %d (failed %d), connect failures %d",
			connected.Load(), c.users, caughtUp.Load(), marked.Load(), syncCalls.Load(), syncFailed.Load(), connectFailed.Load())
	})
	waitProfile := c.profileServer(ctx, 10*time.Second, progress)
	gate := make(chan struct{})
	start := time.Now()
	var wg sync.WaitGroup
	for i, sc := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			var s *sioClient
			var err error
			attempts := 0
			for attempts < c.retries && ctx.Err() == nil {
				attempts++
				if s, err = dial(sc, i); err == nil {
					break
				}
				countErr("connect: " + errKey(err))
				sleep(ctx, time.Second/2+time.Duration(rng.Int64N(int64(time.Second))))
			}
			sc.mu.Lock()
			sc.attempts = attempts
			if err == nil && s != nil {
				sc.sock, sc.connected = s, time.Since(start)
			}
			sc.mu.Unlock()
			if err != nil || s == nil {
				connectFailed.Add(1)
				return
			}
			connected.Add(1)
			cursor := ""
			for ctx.Err() == nil {
				restSlots <- struct{}{}
				page, err := syncPage(ctx, rest, sc.user.Token, cursor, c.syncLimit)
				<-restSlots
				syncCalls.Add(1)
				if err != nil {
					syncFailed.Add(1)
					countErr("sync: " + errKey(err))
					sleep(ctx, 100*time.Millisecond)
					continue
				}
				for _, id := range page.ids {
					sc.see(id)
				}
				sc.mu.Lock()
				if len(page.ids) > 0 {
					sc.last = page.ids[len(page.ids)-1]
				}
				sc.mu.Unlock()
				cursor = page.next
				if !page.more {
					break
				}
			}
			sc.mu.Lock()
			missing := 0
			for id := range sc.expected {
				if sc.got[id] == 0 {
					missing++
				}
			}
			if missing == 0 {
				sc.caughtUp = time.Since(start)
			}
			last := sc.last
			sc.mu.Unlock()
			if missing > 0 {
				return
			}
			caughtUp.Add(1)
			if !c.markDelivered || last == "" {
				return
			}
			restSlots <- struct{}{}
			err = rest.call(ctx, "POST", "/api/status", sc.user.Token, map[string]string{"messageId": last, "status": "delivered"}, nil)
			<-restSlots
			if err != nil {
				markFailed.Add(1)
				countErr("mark delivered: " + errKey(err))
				return
			}
			marked.Add(1)
			sc.mu.Lock()
			sc.marked = time.Since(start)
			sc.mu.Unlock()
		}()
	}
	close(gate)
	wg.Wait()
	stop()
	if err := waitProfile(); err != nil {
		fmt.Fprintln(progress, "warning:", err)
	}

	res.Connected, res.ConnectFailed, res.CaughtUp = int(connected.Load()), int(connectFailed.Load()), int(caughtUp.Load())
	res.SyncCalls, res.SyncFailed, res.Marked, res.MarkFail = syncCalls.Load(), syncFailed.Load(), marked.Load(), markFailed.Load()
	for _, sc := range clients {
		sc.mu.Lock()
		for id := range sc.expected {
			if sc.got[id] == 0 {
				res.Lost++
			}
		}
		for _, k := range sc.got {
			if k > 1 {
				res.SeenTwice++
			}
		}
		if sc.caughtUp > 0 {
			res.CatchUp = append(res.CatchUp, sc.caughtUp)
			res.AllCaughtUp = max(res.AllCaughtUp, sc.caughtUp)
		}
		if sc.connected > 0 {
			res.Connect = append(res.Connect, sc.connected)
		}
		if sc.attempts > 1 {
			res.Retried++
		}
		res.AllMarked = max(res.AllMarked, sc.marked)
		sc.mu.Unlock()
	}
	slices.Sort(res.Connect)
	slices.Sort(res.CatchUp)
	printStorm(out, c, res)
	return res, nil
}

// syncResult is one page of GET /api/sync, reduced to what the storm needs.
type syncResult struct {
	ids  []string // messageIds of new_message items
	next string
	more bool
}

func syncPage(ctx context.Context, rest *restClient, token, cursor string, limit int) (*syncResult, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var page struct {
		Items []struct {
			Event string
			Data  struct{ MessageID string }
		}
		NextCursor string
		HasMore    bool
	}
	if err := rest.call(ctx, "GET", "/api/sync?"+q.Encode(), token, nil, &page); err != nil {
		return nil, err
	}
	r := &syncResult{next: page.NextCursor, more: page.HasMore}
	for _, it := range page.Items {
		if it.Event == parley.EventNewMessage && it.Data.MessageID != "" {
			r.ids = append(r.ids, it.Data.MessageID)
		}
	}
	return r, nil
}

// forEach runs fn(0) … fn(n-1) with at most conc at a time and returns
// the first error; the others still run to their end.
func forEach(ctx context.Context, conc, n int, fn func(i int) error) error {
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := 0; i < n && ctx.Err() == nil; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(i); err != nil {
				once.Do(func() { first = err })
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

func printStorm(w io.Writer, c stormConfig, r *stormResult) {
	fmt.Fprintf(w, "\n== storm: %d clients reconnect at once; %d messages each arrived while they were offline ==\n", r.Clients, c.perUser)
	fmt.Fprintf(w, "offline sends      %d acked by %d senders in %s (%.0f/s), failed %d\n",
		r.Acked, r.Senders, r.SendTime.Round(time.Millisecond), float64(r.Acked)/r.SendTime.Seconds(), r.SendFailed)
	fmt.Fprintf(w, "reconnected        %d/%d (%d needed a retry; failed after %d attempts: %d)\n", r.Connected, r.Clients, r.Retried, c.retries, r.ConnectFailed)
	fmt.Fprintln(w, latencyLine("connected at", r.Connect))
	fmt.Fprintln(w, latencyLine("caught up at", r.CatchUp))
	fmt.Fprintf(w, "all caught up      %d/%d clients; the last one %s after the storm began\n", r.CaughtUp, r.Clients, r.AllCaughtUp.Round(time.Millisecond))
	if c.markDelivered {
		fmt.Fprintf(w, "delivered marks    %d done, %d failed; the last one %s after the storm began\n", r.Marked, r.MarkFail, r.AllMarked.Round(time.Millisecond))
	}
	fmt.Fprintf(w, "sync calls         %d (failed %d)\n", r.SyncCalls, r.SyncFailed)
	fmt.Fprintf(w, "lost (acked, never seen) %d; seen twice (live and sync, dropped by id) %d\n", r.Lost, r.SeenTwice)
	printErrors(w, r.Errors)
}
