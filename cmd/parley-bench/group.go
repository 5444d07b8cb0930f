package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-chat/parley"
)

// groupConfig is the configuration of the group scenario, and of the
// channel scenario (channel set): the same measurement of one post reaching
// many members, into a community channel whose --online first members are
// connected.
type groupConfig struct {
	common
	load
	senders int
	channel bool
	online  int      // channel: members with a socket; the others only belong
	second  *url.URL // channel: another node; every other member's socket connects there
	// serverPID, when not 0, is the server's process: its CPU time over
	// the measured phase is read from /proc and divided by deliveries.
	serverPID int
}

// parseChannel parses the flags of the channel scenario.
func parseChannel(args []string, out io.Writer) (groupConfig, error) {
	c := groupConfig{channel: true}
	fs := flag.NewFlagSet("parley-bench channel", flag.ContinueOnError)
	fs.SetOutput(out)
	rawURL, debugURL := c.register(fs, 10_000)
	fs.IntVar(&c.online, "online", 2000, "members with a socket (the first ones); the others are members offline")
	second := fs.String("url2", "", "base `URL` of a second node of the same cluster (loopback only): every other member's socket connects there, so half the deliveries cross the bus")
	fs.IntVar(&c.senders, "senders", 20, "online members that post (the community's owner makes them admins' peers: any member posts in a text channel)")
	c.load.addFlags(fs, 100, 8, "sender")
	fs.IntVar(&c.serverPID, "server-pid", 0, "`pid` of the server, to read its CPU time from /proc (CPU per delivery)")
	if err := parseArgs(fs, args); err != nil {
		return c, err
	}
	if err := c.check(*rawURL, *debugURL); err != nil {
		return c, err
	}
	if *second != "" {
		u, err := loopbackURL(*second)
		if err != nil {
			return c, fmt.Errorf("--url2: %w", err)
		}
		c.second = u
	}
	switch {
	case c.users < 2 || c.users > 100_000:
		return c, errors.New("--users (the community's members) must be between 2 and 100000")
	case c.online < 1 || c.online > c.users:
		return c, errors.New("--online must be between 1 and --users")
	case c.senders < 1 || c.senders > c.online:
		return c, errors.New("--senders must be between 1 and --online")
	}
	return c, c.load.validate(100_000)
}

func parseGroup(args []string, out io.Writer) (groupConfig, error) {
	var c groupConfig
	fs := flag.NewFlagSet("parley-bench group", flag.ContinueOnError)
	fs.SetOutput(out)
	rawURL, debugURL := c.register(fs, 1000)
	fs.IntVar(&c.senders, "senders", 20, "members that send (the others only receive)")
	c.load.addFlags(fs, 100, 8, "sender")
	fs.IntVar(&c.serverPID, "server-pid", 0, "`pid` of the server, to read its CPU time from /proc (CPU per delivery)")
	if err := parseArgs(fs, args); err != nil {
		return c, err
	}
	if err := c.check(*rawURL, *debugURL); err != nil {
		return c, err
	}
	switch {
	case c.users < 2 || c.users > 1024:
		return c, errors.New("--users (the group's members) must be between 2 and 1024")
	case c.senders < 1 || c.senders > c.users:
		return c, errors.New("--senders must be between 1 and --users")
	}
	return c, c.load.validate(100_000)
}

// groupMsg is one message sent into the group: when it was sent, and what
// the members made of it.
type groupMsg struct {
	sent       atomic.Int64 // ns since the run's start; 0 until sent
	acked      atomic.Bool
	deliveries atomic.Int64
	last       atomic.Int64 // latest delivery, ns since the run's start
}

// groupMember is one member's socket and what it received.
type groupMember struct {
	user *benchUser
	sock *sioClient

	mu    sync.Mutex
	seen  []uint64        // bit i: message i received
	lat   []time.Duration // send → this member's delivery
	dups  int
	stray int // new_group_message events this run did not send
}

// groupResult is what the group scenario measured.
type groupResult struct {
	Members                                          int
	Offered, Sent, Acked, Failed, Skipped            int64
	Deliveries, Expected, Missing, Duplicated, Stray int64
	Dropped                                          int
	// Missing split by where: at sockets still open when the run ended
	// (the server lost them: a real defect), and at sockets the server
	// closed (slow consumer, ping timeout, bus gap), which a client
	// catches up on after reconnecting. Recovered is how many of the
	// latter the history route returned to their member afterwards;
	// Unchecked those not looked up (more closed sockets than checkMax).
	MissingOpen, MissingClosed, Recovered, Unchecked int64
	Took                                             time.Duration // first send to last delivery
	ServerCPU                                        time.Duration // of --server-pid over the measured phase; 0 without it
	LoadBefore, LoadAfter                            string        // /proc/loadavg at the start and end of sending
	LastDelivery, Delivery                           []time.Duration
	Errors                                           map[string]int
}

// DeliveriesPerSecond is the rate of deliveries over the run.
func (r *groupResult) DeliveriesPerSecond() float64 {
	if r.Took <= 0 {
		return 0
	}
	return float64(r.Deliveries) / r.Took.Seconds()
}

// runGroup makes the first user create a group with all the others, puts
// every member online with one socket, and has the first --senders members
// post send_group_message at the offered rate. Each member records each
// new_group_message once; the server delivers a message to every member,
// the sender's own socket included, so a message is complete when all
// members have it. Latency is from the send to the last member's delivery.
func runGroup(ctx context.Context, c groupConfig, out, progress io.Writer) (*groupResult, error) {
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
	target, err := c.setupTarget(ctx, rest, users, progress)
	if err != nil {
		return nil, err
	}
	recvEvent, sendEvent, idField, contentField := parley.EventNewGroupMessage, "send_group_message", "groupId", "encryptedContent"
	if c.channel {
		recvEvent, sendEvent, idField, contentField = parley.EventNewChannelMessage, "send_channel_message", "channelId", "content"
		users = users[:c.online]
	}

	capacity := c.rate*int(c.duration/time.Second+1) + c.rate + 64
	msgs := make([]groupMsg, capacity)
	run := strconv.FormatInt(time.Now().UnixNano()%1e10, 36)
	prefix := "g" + run + "-"
	start := time.Now()
	members := make([]*groupMember, len(users))
	var deliveries atomic.Int64
	for i, u := range users {
		members[i] = &groupMember{user: u, seen: make([]uint64, (capacity+63)/64)}
	}
	onRaw := func(m *groupMember) func([]byte) {
		return func(p []byte) {
			cmid, ok := rawStringField(p, recvEvent, "clientMessageId")
			if !ok {
				return
			}
			now := time.Since(start)
			m.mu.Lock()
			defer m.mu.Unlock()
			n, err := strconv.Atoi(strings.TrimPrefix(cmid, prefix))
			if err != nil || !strings.HasPrefix(cmid, prefix) || n < 0 || n >= capacity || msgs[n].sent.Load() == 0 {
				m.stray++
				return
			}
			if m.seen[n/64]&(1<<(n%64)) != 0 {
				m.dups++
				return
			}
			m.seen[n/64] |= 1 << (n % 64)
			gm := &msgs[n]
			m.lat = append(m.lat, now-time.Duration(gm.sent.Load()))
			gm.deliveries.Add(1)
			deliveries.Add(1)
			storeMax(&gm.last, int64(now))
		}
	}
	var connected atomic.Int64
	stop := everySecond(ctx, progress, func(time.Duration) string { return fmt.Sprintf("connected %d/%d", connected.Load(), len(members)) })
	err = forEach(ctx, c.concurrency, len(members), func(i int) error {
		m := members[i]
		base := c.base
		if c.second != nil && i%2 == 1 {
			base = c.second
		}
		s, err := dialSIO(ctx, dialOptions{base: base, token: m.user.Token, sourceIP: c.sourceIP(i), timeout: c.timeout, onRaw: onRaw(m)})
		if err != nil {
			return fmt.Errorf("connect %s: %w", m.user.Name, err)
		}
		m.sock = s
		connected.Add(1)
		return nil
	})
	stop()
	defer func() {
		for _, m := range members {
			if m.sock != nil {
				m.sock.Close()
			}
		}
	}()
	if err != nil {
		return nil, err
	}

	res := &groupResult{Members: len(members), Errors: map[string]int{}}
	var errMu sync.Mutex
	countErr := func(key string) {
		errMu.Lock()
		res.Errors[key]++
		errMu.Unlock()
	}
	pad := base64.StdEncoding.EncodeToString(make([]byte, c.size*3/4))
	content, _ := json.Marshal(payload{Message: pad, Key: "k", IV: "iv"})
	var sent, acked, failed, skipped atomic.Int64
	type sender struct {
		m     *groupMember
		slots chan struct{}
		jobs  chan int
	}
	senders := make([]*sender, c.senders)
	var senderWG, ackWG sync.WaitGroup
	for i := range senders {
		sd := &sender{m: members[i], slots: make(chan struct{}, c.maxInflight), jobs: make(chan int, 1024)}
		senders[i] = sd
		senderWG.Add(1)
		go func() {
			defer senderWG.Done()
			for n := range sd.jobs {
				select {
				case sd.slots <- struct{}{}:
				case <-ctx.Done():
					return
				}
				arg, _ := json.Marshal(map[string]string{idField: target, contentField: string(content), "type": "text",
					"clientMessageId": prefix + strconv.Itoa(n)})
				msgs[n].sent.Store(int64(time.Since(start)))
				ackWG.Add(1)
				err := sd.m.sock.EmitAck(sendEvent, arg, func(reply json.RawMessage, err error) {
					defer ackWG.Done()
					defer func() { <-sd.slots }()
					var env struct {
						envelope
						Data struct{ MessageID string } `json:"data"`
					}
					if err == nil && (json.Unmarshal(reply, &env) != nil || !env.Success || env.Data.MessageID == "") {
						err = errors.New("malformed ack")
						if env.Error != nil {
							err = errors.New(env.Error.Code)
						}
					}
					if err != nil {
						failed.Add(1)
						countErr("ack: " + errKey(err))
						return
					}
					msgs[n].acked.Store(true)
					acked.Add(1)
				})
				if err != nil {
					ackWG.Done()
					<-sd.slots
					failed.Add(1)
					countErr("emit: " + errKey(err))
					continue
				}
				sent.Add(1)
			}
		}()
	}

	var prevDel int64
	stop = everySecond(ctx, progress, func(time.Duration) string {
		d := deliveries.Load()
		line := fmt.Sprintf("sent %d, acked %d, failed %d, skipped %d, deliveries %d (%d/s)",
			sent.Load(), acked.Load(), failed.Load(), skipped.Load(), d, d-prevDel)
		prevDel = d
		return line
	})
	defer stop()
	sendCtx, stopSending := context.WithTimeout(ctx, c.duration)
	defer stopSending()
	sendStart := time.Since(start)
	res.LoadBefore = loadAverage()
	var cpuBefore time.Duration
	if c.serverPID != 0 {
		if cpuBefore, err = readCPU(c.serverPID); err != nil {
			return nil, fmt.Errorf("--server-pid: %w", err)
		}
	}
	waitProfile := c.profileServer(ctx, c.duration, progress)
	tick := time.NewTicker(time.Millisecond)
	var offered int
dispatch:
	for {
		select {
		case <-sendCtx.Done():
			break dispatch
		case <-tick.C:
		}
		due := int((time.Since(start) - sendStart).Seconds() * float64(c.rate))
		for ; offered < due && offered < capacity; offered++ {
			select {
			case senders[offered%len(senders)].jobs <- offered:
			default:
				skipped.Add(1)
			}
		}
	}
	tick.Stop()
	for _, sd := range senders {
		close(sd.jobs)
	}
	senderWG.Wait()
	ackWG.Wait() // every ack answered (or its socket closed)
	expected := acked.Load() * int64(len(members))
	// Wait until every acked message reached every member, or until no
	// delivery at all arrived for --grace: a node far behind is still
	// delivering, and a message it delivers later is late, not missing.
	// Deliveries of messages whose ack failed are not counted here (the
	// server may have stored and delivered a message whose ack was lost).
	idleSince, seen := time.Now(), deliveries.Load()
	for ctx.Err() == nil && ackedDeliveries(msgs[:offered]) < expected {
		if d := deliveries.Load(); d != seen {
			idleSince, seen = time.Now(), d
		} else if time.Since(idleSince) >= c.grace {
			break
		}
		sleep(ctx, 20*time.Millisecond)
	}
	if c.serverPID != 0 {
		cpuAfter, err := readCPU(c.serverPID)
		if err != nil {
			return nil, fmt.Errorf("--server-pid: %w", err)
		}
		res.ServerCPU = cpuAfter - cpuBefore
	}
	res.LoadAfter = loadAverage()
	stop()
	if err := waitProfile(); err != nil {
		fmt.Fprintln(progress, "warning:", err)
	}

	res.Offered, res.Sent, res.Acked, res.Failed, res.Skipped = int64(offered), sent.Load(), acked.Load(), failed.Load(), skipped.Load()
	res.Expected = expected
	var lastAt time.Duration
	for i := range offered {
		gm := &msgs[i]
		if !gm.acked.Load() {
			continue
		}
		d := gm.deliveries.Load()
		res.Missing += int64(len(members)) - d
		if d == int64(len(members)) {
			res.LastDelivery = append(res.LastDelivery, time.Duration(gm.last.Load()-gm.sent.Load()))
		}
		lastAt = max(lastAt, time.Duration(gm.last.Load()))
	}
	for _, m := range members {
		select {
		case <-m.sock.Done():
			res.Dropped++
		default:
		}
		m.mu.Lock()
		res.Deliveries += int64(len(m.lat))
		res.Duplicated += int64(m.dups)
		res.Stray += int64(m.stray)
		res.Delivery = append(res.Delivery, m.lat...)
		m.mu.Unlock()
	}
	res.Took = lastAt - sendStart
	if res.Missing > 0 {
		classifyMissing(ctx, rest, target, c.channel, prefix, msgs[:offered], members, res)
	}
	slices.Sort(res.LastDelivery)
	slices.Sort(res.Delivery)
	printGroup(out, c, res)
	return res, nil
}

// setupTarget makes what the scenario posts into: a group of all users
// created by the first, or a public community of theirs whose default
// channel every other user joins.
func (c *groupConfig) setupTarget(ctx context.Context, rest *restClient, users []*benchUser, progress io.Writer) (string, error) {
	if !c.channel {
		ids := make([]string, 0, len(users)-1)
		for _, u := range users[1:] {
			ids = append(ids, u.ID)
		}
		var g struct{ GroupID string }
		if err := rest.call(ctx, "POST", "/api/groups/create", users[0].Token, map[string]any{"name": "bench group", "members": ids}, &g); err != nil {
			return "", fmt.Errorf("create the group: %w", err)
		}
		if g.GroupID == "" {
			return "", errors.New("create the group: no groupId in the answer")
		}
		return g.GroupID, nil
	}
	var cm struct{ CommunityID, DefaultChannel string }
	if err := rest.call(ctx, "POST", "/api/communities/create", users[0].Token, map[string]any{"name": "bench community", "isPrivate": false,
		"plaintextAESKey": "k"}, &cm); err != nil {
		return "", fmt.Errorf("create the community: %w", err)
	}
	if cm.DefaultChannel == "" {
		return "", errors.New("create the community: no defaultChannel in the answer")
	}
	var joined atomic.Int64
	stop := everySecond(ctx, progress, func(time.Duration) string { return fmt.Sprintf("joined %d/%d", joined.Load(), len(users)-1) })
	defer stop()
	err := forEach(ctx, c.concurrency, len(users)-1, func(i int) error {
		if err := rest.call(ctx, "POST", "/api/communities/join", users[i+1].Token, map[string]any{"communityId": cm.CommunityID}, nil); err != nil {
			return fmt.Errorf("join as %s: %w", users[i+1].Name, err)
		}
		joined.Add(1)
		return nil
	})
	return cm.DefaultChannel, err
}

func printGroup(w io.Writer, c groupConfig, r *groupResult) {
	if c.channel {
		nodes := "one node"
		if c.second != nil {
			nodes = "two nodes (every other socket on --url2)"
		}
		fmt.Fprintf(w, "\n== channel: %d members, %d online on %s, %d senders, offered %d msg/s for %s, %d-byte padding ==\n",
			c.users, r.Members, nodes, c.senders, c.rate, c.duration, c.size)
	} else {
		fmt.Fprintf(w, "\n== group: %d members all online, %d senders, offered %d msg/s for %s, %d-byte padding ==\n",
			r.Members, c.senders, c.rate, c.duration, c.size)
	}
	fmt.Fprintf(w, "offered %d, skipped %d (sender queue full), sent %d, acked %d, failed %d\n", r.Offered, r.Skipped, r.Sent, r.Acked, r.Failed)
	fmt.Fprintf(w, "deliveries         %d of %d expected (%.0f deliveries/s over %s, first send to last delivery)\n",
		r.Deliveries, r.Expected, r.DeliveriesPerSecond(), r.Took.Round(time.Millisecond))
	if r.ServerCPU > 0 && r.Deliveries > 0 {
		fmt.Fprintf(w, "server CPU         %.2f s, %.2f µs per delivery (/proc/<pid>/stat, first send to last delivery)\n",
			r.ServerCPU.Seconds(), float64(r.ServerCPU.Microseconds())/float64(r.Deliveries))
	}
	fmt.Fprintf(w, "load average       %s at the start, %s at the end\n", r.LoadBefore, r.LoadAfter)
	fmt.Fprintln(w, latencyLine("send→last member", r.LastDelivery))
	fmt.Fprintln(w, latencyLine("send→each member", r.Delivery))
	fmt.Fprintf(w, "missing (acked, not delivered to a member) %d; duplicated %d; stray events %d\n", r.Missing, r.Duplicated, r.Stray)
	if r.Missing > 0 {
		fmt.Fprintf(w, "  at sockets still open (lost) %d; at sockets the server closed %d (found in their member's history afterwards: %d, not checked: %d)\n",
			r.MissingOpen, r.MissingClosed, r.Recovered, r.Unchecked)
	}
	if r.Dropped > 0 {
		fmt.Fprintf(w, "sockets closed by the server during the run: %d\n", r.Dropped)
	}
	printErrors(w, r.Errors)
}

// ackedDeliveries counts the deliveries of the acked messages.
func ackedDeliveries(msgs []groupMsg) int64 {
	var n int64
	for i := range msgs {
		if msgs[i].acked.Load() {
			n += msgs[i].deliveries.Load()
		}
	}
	return n
}

// checkMax bounds how many closed sockets' members classifyMissing looks
// up in the history.
const checkMax = 50

// classifyMissing splits the acked messages members did not receive into
// those at sockets still open and those at sockets the server closed, and
// checks that the latter are what a reconnecting client catches up on:
// each such member reads the conversation's history with its own token
// and must find every message it missed there.
func classifyMissing(ctx context.Context, rest *restClient, target string, channel bool, prefix string, msgs []groupMsg,
	members []*groupMember, res *groupResult) {
	history := "/api/group-messages/"
	if channel {
		history = "/api/channel-messages/"
	}
	checked := 0
	for _, m := range members {
		closed := false
		select {
		case <-m.sock.Done():
			closed = true
		default:
		}
		var missed []int
		m.mu.Lock()
		for i := range msgs {
			if msgs[i].acked.Load() && m.seen[i/64]&(1<<(i%64)) == 0 {
				missed = append(missed, i)
			}
		}
		m.mu.Unlock()
		if len(missed) == 0 {
			continue
		}
		if !closed {
			res.MissingOpen += int64(len(missed))
			continue
		}
		res.MissingClosed += int64(len(missed))
		if checked >= checkMax {
			res.Unchecked += int64(len(missed))
			continue
		}
		checked++
		found, err := historyHas(ctx, rest, history+url.PathEscape(target), m.user.Token, prefix, missed)
		if err != nil {
			res.Errors["history: "+errKey(err)]++
		}
		res.Recovered += int64(found)
	}
}

// historyHas pages through a conversation's history as one member and
// counts how many of the messages numbered want it holds.
func historyHas(ctx context.Context, rest *restClient, path, token, prefix string, want []int) (int, error) {
	need := map[string]bool{}
	for _, n := range want {
		need[prefix+strconv.Itoa(n)] = true
	}
	found := 0
	before := ""
	for found < len(want) {
		var page []struct {
			ClientMessageID string `json:"clientMessageId"`
			Seq             int64  `json:"seq"`
		}
		if err := rest.call(ctx, "GET", path+"?limit=200"+before, token, nil, &page); err != nil {
			return found, err
		}
		for _, v := range page {
			if need[v.ClientMessageID] {
				delete(need, v.ClientMessageID)
				found++
			}
		}
		if len(page) < 200 {
			break
		}
		before = "&beforeSeq=" + strconv.FormatInt(page[len(page)-1].Seq, 10)
	}
	return found, nil
}
