package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-chat/parley"
)

// directConfig is the configuration of the direct scenario.
type directConfig struct {
	common
	load
	warmup bool // open every pair's conversation before the measured run
}

func parseDirect(args []string, out io.Writer) (directConfig, error) {
	var c directConfig
	fs := flag.NewFlagSet("parley-bench direct", flag.ContinueOnError)
	fs.SetOutput(out)
	rawURL, debugURL := c.register(fs, 200)
	c.load.addFlags(fs, 2000, 32, "socket")
	fs.BoolVar(&c.warmup, "warmup", true, "before the measured run, one message per pair opens its conversation (a first message to a new contact creates it); false measures those first messages too")
	if err := parseArgs(fs, args); err != nil {
		return c, err
	}
	if err := c.check(*rawURL, *debugURL); err != nil {
		return c, err
	}
	if c.users < 2 || c.users%2 != 0 {
		return c, errors.New("--users must be even and at least 2 (users are paired)")
	}
	return c, c.load.validate(200_000)
}

// payload is what the bench puts in encryptedContent: the server stores
// it as an opaque string, and the receiver reads the send time back.
type payload struct {
	Message string `json:"message"`
	Key     string `json:"key"`
	IV      string `json:"iv"`
	Bench   string `json:"bench"` // clientMessageId
	T       int64  `json:"t"`     // send time, ns since the run's start
}

// peer is one user with one socket: it sends to its partner and records
// what it receives. mu guards the maps and slices.
type peer struct {
	user    *benchUser
	partner *benchUser
	sock    *sioClient
	slots   chan struct{} // in-flight bound
	jobs    chan struct{} // one token per send due

	mu       sync.Mutex
	acked    []string       // messageIds of this peer's acked sends
	received map[string]int // messageId → times received as recipient
	e2e      []time.Duration
	ack      []time.Duration
}

// directResult is what the direct scenario measured.
type directResult struct {
	Offered, Sent, Acked, Failed, Unanswered, Skipped int64
	Errors                                            map[string]int
	Received, Lost, Duplicated, Stray                 int
	Dropped                                           int           // sockets the server closed during the run
	SendTime                                          time.Duration // first send to last ack
	E2E, AckLatency                                   []time.Duration
}

// Throughput is acknowledged messages per second.
func (r *directResult) Throughput() float64 {
	if r.SendTime <= 0 {
		return 0
	}
	return float64(r.Acked) / r.SendTime.Seconds()
}

func runDirect(ctx context.Context, c directConfig, out, progress io.Writer) (*directResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.limit)
	defer cancel()
	if _, err := raiseFileLimit(); err != nil {
		return nil, fmt.Errorf("raise RLIMIT_NOFILE: %w", err)
	}
	rest := newREST(&c.common)
	users, err := c.getUsers(ctx, rest, progress)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	res := &directResult{Errors: map[string]int{}}
	var errMu sync.Mutex // guards res.Errors
	countErr := func(key string) {
		errMu.Lock()
		res.Errors[key]++
		errMu.Unlock()
	}
	var sent, acked, failed, received, skipped atomic.Int64
	var lastAck atomic.Int64 // ns since start
	var slowest atomic.Int64 // the longest send→receive since the last progress line, ns

	peers := make([]*peer, len(users))
	for i, u := range users {
		peers[i] = &peer{user: u, partner: users[i^1], received: map[string]int{},
			slots: make(chan struct{}, c.maxInflight), jobs: make(chan struct{}, 4096)}
	}
	// Connect every peer.
	err = forEach(ctx, c.concurrency, len(peers), func(i int) error {
		p := peers[i]
		sock, err := dialSIO(ctx, dialOptions{base: c.base, token: p.user.Token, sourceIP: c.sourceIP(i), timeout: c.timeout,
			onEvent: func(name string, args []json.RawMessage) {
				if name == parley.EventNewMessage && len(args) > 0 {
					p.onNewMessage(args[0], start, &received, &slowest)
				}
			}})
		if err != nil {
			return fmt.Errorf("connect %s: %w", p.user.Name, err)
		}
		p.sock = sock
		return nil
	})
	defer func() {
		for _, p := range peers {
			if p.sock != nil {
				p.sock.Close()
			}
		}
	}()
	if err != nil {
		return nil, err
	}

	pad := base64.StdEncoding.EncodeToString(make([]byte, c.size*3/4))
	run := strconv.FormatInt(time.Now().UnixNano()%1e10, 36)
	if c.warmup {
		t := time.Now()
		if err := warmUp(ctx, peers, c.concurrency, run); err != nil {
			return nil, err
		}
		fmt.Fprintf(progress, "warm-up: %d conversations opened in %s\n", len(peers)/2, time.Since(t).Round(time.Millisecond))
	}
	send := func(p *peer, n int64) {
		cmid := fmt.Sprintf("%s-%s-%d", run, p.user.Name, n)
		t0 := time.Since(start)
		content, _ := json.Marshal(payload{Message: pad, Key: "k", IV: "iv", Bench: cmid, T: int64(t0)})
		arg, _ := json.Marshal(map[string]string{"recipientId": p.partner.ID, "encryptedContent": string(content), "type": "text", "clientMessageId": cmid})
		err := p.sock.EmitAck("send_message", arg, func(reply json.RawMessage, err error) {
			defer func() { <-p.slots }()
			if err != nil {
				failed.Add(1)
				countErr("ack: " + errKey(err))
				return
			}
			var env struct {
				envelope
				Data struct{ MessageID string } `json:"data"`
			}
			if json.Unmarshal(reply, &env) != nil || !env.Success || env.Data.MessageID == "" {
				failed.Add(1)
				code := "malformed ack"
				if env.Error != nil {
					code = env.Error.Code
				}
				countErr("ack: " + code)
				return
			}
			now := time.Since(start)
			p.mu.Lock()
			p.acked = append(p.acked, env.Data.MessageID)
			p.ack = append(p.ack, now-t0)
			p.mu.Unlock()
			acked.Add(1)
			storeMax(&lastAck, int64(now))
		})
		if err != nil {
			<-p.slots
			failed.Add(1)
			countErr("emit: " + errKey(err))
			return
		}
		sent.Add(1)
	}

	// One sender goroutine per peer; a dispatcher hands out sends at the
	// offered rate, round robin, and counts those a full queue skipped.
	sendCtx, stopSending := context.WithTimeout(ctx, c.duration)
	defer stopSending()
	var senders sync.WaitGroup
	for _, p := range peers {
		senders.Add(1)
		go func() {
			defer senders.Done()
			var n int64
			for range p.jobs {
				select {
				case p.slots <- struct{}{}:
				case <-ctx.Done():
					return
				}
				send(p, n)
				n++
			}
		}()
	}
	var prevAcked int64
	stop := everySecond(ctx, progress, func(time.Duration) string {
		a := acked.Load()
		line := fmt.Sprintf("sent %d, acked %d (%d/s), received %d, failed %d, skipped %d, slowest send→receive %s",
			sent.Load(), a, a-prevAcked, received.Load(), failed.Load(), skipped.Load(),
			time.Duration(slowest.Swap(0)).Round(time.Millisecond))
		prevAcked = a
		return line
	})
	defer stop()
	sendStart := time.Now()
	waitProfile := c.profileServer(ctx, c.duration, progress)
	var offered int64
	tick := time.NewTicker(time.Millisecond)
dispatch:
	for {
		select {
		case <-sendCtx.Done():
			break dispatch
		case <-tick.C:
		}
		due := int64(time.Since(sendStart).Seconds() * float64(c.rate))
		for ; offered < due; offered++ {
			p := peers[offered%int64(len(peers))]
			select {
			case p.jobs <- struct{}{}:
			default:
				skipped.Add(1)
			}
		}
	}
	tick.Stop()
	for _, p := range peers {
		close(p.jobs)
	}
	senders.Wait()

	// Grace: wait for the outstanding acks and deliveries.
	graceEnd := time.Now().Add(c.grace)
	for time.Now().Before(graceEnd) && ctx.Err() == nil {
		pending := 0
		for _, p := range peers {
			pending += p.sock.Pending()
		}
		if pending == 0 && received.Load() >= acked.Load() {
			break
		}
		sleep(ctx, 20*time.Millisecond)
	}
	stop()
	if err := waitProfile(); err != nil {
		fmt.Fprintln(progress, "warning:", err)
	}
	// Acks that arrived just before the grace ended may still have their
	// delivery in flight: freeze the acked sets and give those a moment.
	nAcked := make([]int, len(peers))
	var frozen int64
	for i, p := range peers {
		res.Unanswered += int64(p.sock.Pending())
		p.mu.Lock()
		nAcked[i] = len(p.acked)
		p.mu.Unlock()
		frozen += int64(nAcked[i])
	}
	for end := time.Now().Add(2 * time.Second); received.Load() < frozen && time.Now().Before(end) && ctx.Err() == nil; {
		sleep(ctx, 20*time.Millisecond)
	}

	for _, p := range peers {
		select {
		case <-p.sock.Done():
			res.Dropped++
		default:
		}
	}
	res.Offered, res.Sent, res.Acked, res.Failed, res.Skipped = offered, sent.Load(), acked.Load(), failed.Load(), skipped.Load()
	res.SendTime = time.Duration(lastAck.Load()) - sendStart.Sub(start)
	byID := map[string]*peer{}
	for _, p := range peers {
		byID[p.user.ID] = p
	}
	ackedIDs := map[string]bool{}
	for i, p := range peers {
		p.mu.Lock()
		res.E2E = append(res.E2E, p.e2e...)
		res.AckLatency = append(res.AckLatency, p.ack...)
		acks := slices.Clone(p.acked[:nAcked[i]])
		p.mu.Unlock()
		r := byID[p.partner.ID]
		r.mu.Lock()
		for _, id := range acks {
			ackedIDs[id] = true
			if r.received[id] == 0 {
				res.Lost++
			}
		}
		r.mu.Unlock()
	}
	for _, p := range peers {
		p.mu.Lock()
		for id, n := range p.received {
			res.Received++
			if n > 1 {
				res.Duplicated++
			}
			if !ackedIDs[id] {
				res.Stray++
			}
		}
		p.mu.Unlock()
	}
	slices.Sort(res.E2E)
	slices.Sort(res.AckLatency)
	printDirect(out, c, res)
	return res, nil
}

// onNewMessage records a new_message event addressed to this peer (the
// sender's own sockets get a copy too; those are not deliveries).
func (p *peer) onNewMessage(data json.RawMessage, start time.Time, received, slowest *atomic.Int64) {
	now := time.Since(start)
	var m struct {
		MessageID   string  `json:"messageId"`
		RecipientID string  `json:"recipientId"`
		Content     *string `json:"content"`
	}
	if json.Unmarshal(data, &m) != nil || m.RecipientID != p.user.ID {
		return
	}
	var pl payload
	hasT := m.Content != nil && json.Unmarshal([]byte(*m.Content), &pl) == nil && pl.T > 0
	if m.Content != nil && strings.HasPrefix(pl.Bench, warmupPrefix) {
		return // opened the conversation before the run
	}
	p.mu.Lock()
	p.received[m.MessageID]++
	first := p.received[m.MessageID] == 1
	var took time.Duration
	if first && hasT {
		took = now - time.Duration(pl.T)
		p.e2e = append(p.e2e, took)
	}
	p.mu.Unlock()
	storeMax(slowest, int64(took))
	if first {
		received.Add(1)
	}
}

// storeMax raises a to v if v is larger.
func storeMax(a *atomic.Int64, v int64) {
	for {
		if cur := a.Load(); v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// warmupPrefix starts the clientMessageId of a warm-up message.
const warmupPrefix = "warmup-"

// warmUp sends one message from the first user of every pair to the
// second and waits for its ack, so that every pair's conversation exists
// before the measured run; what the run measures is then the steady state
// of 1:1 traffic, not the creation of 100 conversations in its first
// second. The receivers ignore these messages (onNewMessage).
func warmUp(ctx context.Context, peers []*peer, concurrency int, run string) error {
	return forEach(ctx, concurrency, len(peers)/2, func(i int) error {
		p := peers[2*i]
		cmid := warmupPrefix + run + "-" + p.user.Name
		content, _ := json.Marshal(payload{Message: "warm-up", Key: "k", IV: "iv", Bench: cmid})
		arg, _ := json.Marshal(map[string]string{"recipientId": p.partner.ID, "encryptedContent": string(content), "type": "text", "clientMessageId": cmid})
		done := make(chan error, 1)
		err := p.sock.EmitAck("send_message", arg, func(reply json.RawMessage, err error) {
			var env envelope
			if err == nil && (json.Unmarshal(reply, &env) != nil || !env.Success) {
				err = fmt.Errorf("warm-up send of %s refused: %s", p.user.Name, reply)
			}
			done <- err
		})
		if err != nil {
			return err
		}
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

// percentile returns the q-quantile (0..1) of sorted durations, nearest rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func latencyLine(name string, d []time.Duration) string {
	if len(d) == 0 {
		return fmt.Sprintf("%-18s no samples", name)
	}
	ms := func(x time.Duration) float64 { return float64(x) / float64(time.Millisecond) }
	return fmt.Sprintf("%-18s p50 %7.2f ms  p90 %7.2f ms  p99 %7.2f ms  max %7.2f ms  (%d samples)", name,
		ms(percentile(d, .5)), ms(percentile(d, .9)), ms(percentile(d, .99)), ms(d[len(d)-1]), len(d))
}

func printDirect(w io.Writer, c directConfig, r *directResult) {
	fmt.Fprintf(w, "\n== direct: %d users in %d pairs, offered %d msg/s for %s, %d-byte padding ==\n",
		c.users, c.users/2, c.rate, c.duration, c.size)
	fmt.Fprintf(w, "offered %d, skipped %d (sender queue full), sent %d, acked %d, failed %d, unanswered %d\n",
		r.Offered, r.Skipped, r.Sent, r.Acked, r.Failed, r.Unanswered)
	fmt.Fprintf(w, "throughput         %.0f acked msg/s over %s\n", r.Throughput(), r.SendTime.Round(time.Millisecond))
	fmt.Fprintln(w, latencyLine("send→receive", r.E2E))
	fmt.Fprintln(w, latencyLine("send→ack", r.AckLatency))
	fmt.Fprintf(w, "delivered %d distinct; lost (acked, never received) %d; duplicated %d; received without ack %d\n",
		r.Received, r.Lost, r.Duplicated, r.Stray)
	if r.Dropped > 0 {
		fmt.Fprintf(w, "sockets closed by the server during the run: %d (messages to them count as lost here; clients would sync them)\n", r.Dropped)
	}
	printErrors(w, r.Errors)
}
