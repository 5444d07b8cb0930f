package service

// Analytics and operations (API.md §11): a user's own message counts,
// server-wide statistics and the health of every node, for admins.

import (
	"context"
	"encoding/json"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/jobs"
)

// Analytics limits.
const (
	MaxStatsDays     = 366 // the longest range of GET /api/stats/messages, in days
	DefaultStatsDays = 30  // its range when start_date is not given
	maxUserIDLen     = 128
)

// Periods of GET /api/analytics/message-count: each counts whole UTC days
// ending today, today included.
var countPeriods = map[string]int{"day": 1, "week": 7, "month": 30, "year": 365}

// JobNodeHealth is the job, run on every node, that samples this node's
// health and publishes it on the bus for the others' GET /api/system/health.
const JobNodeHealth = "node-health"

// eventNodeHealth is the internal bus event that carries a node's health.
const eventNodeHealth = "_node_health"

// UserAnalytics answers GET /api/analytics/user/{userId}.
type UserAnalytics struct {
	MessagesSent     int64 `json:"messagesSent"`
	MessagesReceived int64 `json:"messagesReceived"`
	TotalMessages    int64 `json:"totalMessages"` // sent + received
	ActiveChatsCount int64 `json:"activeChatsCount"`
	// LastActiveAt is when the user last sent a message; null if never.
	LastActiveAt parley.Time `json:"lastActiveAt"`
}

// ActiveChat is one conversation of GET /api/analytics/active-chats: the
// peer (userId) of a direct chat, or the groupId or channelId.
type ActiveChat struct {
	ConversationID string      `json:"conversationId"`
	Type           string      `json:"type"`
	UserID         string      `json:"userId,omitempty"`
	GroupID        string      `json:"groupId,omitempty"`
	ChannelID      string      `json:"channelId,omitempty"`
	LastMessageAt  parley.Time `json:"lastMessageAt"`
	LastMessageID  string      `json:"lastMessageId"`
}

// MessageCount answers GET /api/analytics/message-count/{userId}.
type MessageCount struct {
	Count  int64  `json:"count"` // messages sent and received in the period
	Period string `json:"period"`
	From   string `json:"from"` // the first UTC day counted, YYYY-MM-DD
	To     string `json:"to"`   // the last (today), YYYY-MM-DD
}

// DailyMessages is one day of MessageStats.
type DailyMessages struct {
	Date         string `json:"date"` // YYYY-MM-DD, UTC
	MessagesSent int64  `json:"messages_sent"`
	ActiveUsers  int64  `json:"active_users"` // users who sent a message that day
}

// MessageStats answers GET /api/stats/messages (seed 001's field names).
type MessageStats struct {
	MessagesSent int64           `json:"messages_sent"`
	ActiveUsers  int64           `json:"active_users"` // distinct users who sent a message in the range
	StartDate    string          `json:"start_date"`
	EndDate      string          `json:"end_date"`
	Daily        []DailyMessages `json:"daily"` // every day of the range, oldest first
}

// DBHealth is whether a node reaches the database and how fast.
type DBHealth struct {
	OK        bool    `json:"ok"`
	LatencyMs float64 `json:"latency_ms"`
}

// BusHealth is whether a node is connected to the bus between nodes.
type BusHealth struct {
	OK bool `json:"ok"`
}

// NodeReport is one node's state, as GET /api/system/health shows it.
type NodeReport struct {
	Node          string      `json:"node"`
	CPUUsage      string      `json:"cpu_usage"`   // e.g. "7%": this process's share of the machine's CPUs
	CPUPercent    float64     `json:"cpu_percent"` // the same as a number
	MemoryUsage   string      `json:"memory_usage"`
	MemoryPercent float64     `json:"memory_percent"` // the machine's memory in use (all processes), as memory_usage
	MemoryBytes   uint64      `json:"memory_bytes"`   // memory this process holds from the OS
	Goroutines    int         `json:"goroutines"`
	Connections   int         `json:"connections"` // sockets (both transports) held by the node
	Uptime        int64       `json:"uptime"`      // seconds since the node started
	DB            DBHealth    `json:"db"`
	Bus           BusHealth   `json:"bus"`
	ReportedAt    parley.Time `json:"reported_at"`
}

// SystemHealth answers GET /api/system/health: this node's state at the
// top level (seed 001's fields) and every node that reported recently.
type SystemHealth struct {
	Node          string       `json:"node"`
	CPUUsage      string       `json:"cpu_usage"`
	CPUPercent    float64      `json:"cpu_percent"`
	MemoryUsage   string       `json:"memory_usage"`
	MemoryPercent float64      `json:"memory_percent"`
	MemoryBytes   uint64       `json:"memory_bytes"`
	Goroutines    int          `json:"goroutines"`
	Connections   int          `json:"connections"`
	Uptime        int64        `json:"uptime"`
	DB            DBHealth     `json:"db"`
	Bus           BusHealth    `json:"bus"`
	ReportedAt    parley.Time  `json:"reported_at"`
	Nodes         []NodeReport `json:"nodes"` // every node, this one first, then by name
}

// NodeProbe is what the service cannot see by itself about its node; the
// server sets it once the transports exist (SetNodeProbe).
type NodeProbe struct {
	Connections func() int  // sockets held by this node
	BusOK       func() bool // connected to the other nodes; nil: a one-node bus, always ok
}

// analytics is the state of the operations side of the service.
type analytics struct {
	started time.Time
	probe   atomic.Pointer[NodeProbe]
	cpu     cpuSampler
	unsub   func()

	mu      sync.Mutex
	reports map[string]*NodeReport // other nodes' latest reports, by node
	seen    map[string]time.Time   // when each arrived (this node's clock)
	// admins holds the tokens (by hash) that passed the admin check of
	// system/health lately, until when they may read it without the
	// database (SystemHealthCached); a revoked token leaves it at once.
	admins map[string]healthAdmin
}

type healthAdmin struct {
	userID string
	until  time.Time
}

const (
	nodeReportEvery = 5 * time.Second
	// nodeReportTTL is how long a node's report is shown after it arrived:
	// past it the node is taken as gone.
	nodeReportTTL    = 3 * nodeReportEvery
	healthAdminTTL   = 10 * time.Minute
	maxHealthAdmins  = 1024
	maxNodeReports   = 1024
	healthPingBudget = 2 * time.Second
)

// SetNodeProbe tells the service how to count this node's sockets and see
// its bus connection, for GET /api/system/health.
func (s *Service) SetNodeProbe(p NodeProbe) { s.ana.probe.Store(&p) }

// addAnalyticsJobs registers the node-health job and listens to the other
// nodes' reports.
func (s *Service) addAnalyticsJobs(r *jobs.Runner) {
	s.ana.unsub = s.bus.Subscribe(s.onBusEvent)
	r.Add(jobs.Job{Name: JobNodeHealth, Every: nodeReportEvery, Timeout: s.cfg.StoreTimeout, Run: s.reportNode})
}

// reportNode publishes this node's health to the others.
func (s *Service) reportNode(ctx context.Context) error {
	h := s.nodeHealth(ctx)
	raw, err := json.Marshal(h)
	if err != nil {
		return err
	}
	// Not through s.publish: the event is for nodes, not users.
	return s.bus.Publish(ctx, &parley.Event{Name: eventNodeHealth, Data: raw})
}

// onBusEvent keeps the other nodes' health reports and forgets revoked
// tokens of SystemHealthCached.
func (s *Service) onBusEvent(ev *parley.Event) {
	if ev.Name == EventSessionRevoked {
		s.forgetHealthAdmins(ev)
		return
	}
	if ev.Name != eventNodeHealth {
		return
	}
	var r NodeReport
	if json.Unmarshal(ev.Data, &r) != nil || r.Node == "" || r.Node == s.cfg.NodeID {
		return
	}
	now := s.now()
	a := &s.ana
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.reports) >= maxNodeReports {
		a.forgetStaleLocked(now)
	}
	if _, ok := a.reports[r.Node]; ok || len(a.reports) < maxNodeReports {
		a.reports[r.Node], a.seen[r.Node] = &r, now
	}
}

func (a *analytics) forgetStaleLocked(now time.Time) {
	for n, at := range a.seen {
		if now.Sub(at) > nodeReportTTL {
			delete(a.seen, n)
			delete(a.reports, n)
		}
	}
}

// nodeHealth samples this node now: one database ping bounded by ctx.
func (s *Service) nodeHealth(ctx context.Context) *NodeReport {
	now := s.now()
	h := &NodeReport{Node: s.cfg.NodeID, Goroutines: runtime.NumGoroutine(), ReportedAt: parley.Time{Time: now},
		Uptime: int64(time.Since(s.ana.started) / time.Second), Bus: BusHealth{OK: true}}
	h.CPUPercent = s.ana.cpu.percent()
	h.MemoryPercent, h.MemoryBytes = memoryUse()
	h.CPUUsage, h.MemoryUsage = percentString(h.CPUPercent), percentString(h.MemoryPercent)
	if p := s.ana.probe.Load(); p != nil {
		if p.Connections != nil {
			h.Connections = p.Connections()
		}
		if p.BusOK != nil {
			h.Bus.OK = p.BusOK()
		}
	}
	pctx, cancel := context.WithTimeout(ctx, healthPingBudget)
	defer cancel()
	start := time.Now()
	err := s.store.Health.Ping(pctx)
	h.DB = DBHealth{OK: err == nil, LatencyMs: float64(time.Since(start).Microseconds()) / 1000}
	return h
}

// percentString formats a percentage as the seed does: "70%".
func percentString(p float64) string { return strconv.FormatFloat(p, 'f', 0, 64) + "%" }

// checkAnalyticsAccess allows a user's analytics to themselves and to
// admins; anyone else gets EFORBIDDEN (the path names a user, like the
// other self-only routes). An admin asking about no such user gets ENOTFOUND.
func (s *Service) checkAnalyticsAccess(ctx context.Context, caller *parley.Identity, userID string) error {
	if userID == "" || len(userID) > maxUserIDLen {
		return parley.Errorf(parley.EINVALID, "userId must be 1 to %d characters", maxUserIDLen)
	}
	if userID == caller.UserID {
		return nil
	}
	if !s.IsAdmin(ctx, caller) {
		return parley.Errorf(parley.EFORBIDDEN, "you may only read your own analytics")
	}
	_, err := s.store.Users.UserByID(ctx, userID)
	return err
}

// UserAnalytics returns a user's message counts (API.md §11), from the
// daily counters. Errors: EINVALID, EFORBIDDEN, ENOTFOUND.
func (s *Service) UserAnalytics(ctx context.Context, caller *parley.Identity, userID string) (*UserAnalytics, error) {
	if err := s.checkAnalyticsAccess(ctx, caller, userID); err != nil {
		return nil, err
	}
	c, err := s.store.Analytics.UserCounts(ctx, userID, parley.Day(-1<<40), parley.DayOf(s.now()))
	if err != nil {
		return nil, err
	}
	chats, err := s.store.Analytics.ActiveChatsCount(ctx, userID)
	if err != nil {
		return nil, err
	}
	return &UserAnalytics{MessagesSent: c.Sent, MessagesReceived: c.Received, TotalMessages: c.Sent + c.Received,
		ActiveChatsCount: chats, LastActiveAt: parley.Time{Time: c.LastSentAt}}, nil
}

// ActiveChats lists a user's conversations that have messages, most recent
// first, up to limit (default 50, at most 200). Errors: EINVALID,
// EFORBIDDEN, ENOTFOUND.
func (s *Service) ActiveChats(ctx context.Context, caller *parley.Identity, userID string, limit int) ([]*ActiveChat, error) {
	if err := s.checkAnalyticsAccess(ctx, caller, userID); err != nil {
		return nil, err
	}
	if limit < 0 {
		return nil, parley.Errorf(parley.EINVALID, "limit must be 1 to %d", MaxPageSize)
	}
	if limit == 0 {
		limit = DefaultPageSize
	}
	chats, err := s.store.Conversations.Chats(ctx, userID, min(limit, MaxPageSize))
	if err != nil {
		return nil, err
	}
	out := []*ActiveChat{}
	for _, c := range chats {
		if c.LastMessage == nil {
			continue // no message it can see: not active
		}
		a := &ActiveChat{ConversationID: c.Conversation.ID, Type: c.Conversation.Kind,
			LastMessageAt: parley.Time{Time: c.LastMessage.SentAt}, LastMessageID: c.LastMessage.ID}
		switch c.Conversation.Kind {
		case parley.KindDirect:
			a.UserID = c.PeerID
		case parley.KindGroup:
			a.GroupID = c.Conversation.ID
		case parley.KindChannel:
			a.ChannelID = c.Conversation.ID
		}
		out = append(out, a)
	}
	return out, nil
}

// MessageCount counts the messages a user sent and received in the period
// (day: today, week: the last 7 days, month: the last 30, year: the last
// 365; UTC days, today included). Errors: EINVALID, EFORBIDDEN, ENOTFOUND.
func (s *Service) MessageCount(ctx context.Context, caller *parley.Identity, userID, period string) (*MessageCount, error) {
	if period == "" {
		period = "day"
	}
	days, ok := countPeriods[period]
	if !ok {
		return nil, parley.Errorf(parley.EINVALID, "period must be day, week, month or year")
	}
	if err := s.checkAnalyticsAccess(ctx, caller, userID); err != nil {
		return nil, err
	}
	to := parley.DayOf(s.now())
	from := to - parley.Day(days-1)
	c, err := s.store.Analytics.UserCounts(ctx, userID, from, to)
	if err != nil {
		return nil, err
	}
	return &MessageCount{Count: c.Sent + c.Received, Period: period, From: from.String(), To: to.String()}, nil
}

// parseDay parses a YYYY-MM-DD query date.
func parseDay(field, v string) (parley.Day, error) {
	t, err := time.Parse(time.DateOnly, v)
	if err != nil || len(v) != len(time.DateOnly) {
		return 0, parley.Errorf(parley.EINVALID, "%s must be a date, YYYY-MM-DD", field)
	}
	return parley.DayOf(t), nil
}

// MessageStats returns, for admins, the messages sent and active users of
// each day from start to end (YYYY-MM-DD, UTC, both included; at most 366
// days; end defaults to today and start to 30 days before end). Errors:
// EFORBIDDEN (not an admin), EINVALID.
func (s *Service) MessageStats(ctx context.Context, caller *parley.Identity, start, end string) (*MessageStats, error) {
	if !s.IsAdmin(ctx, caller) {
		return nil, parley.Errorf(parley.EFORBIDDEN, "only admins may read statistics")
	}
	to := parley.DayOf(s.now())
	var err error
	if end != "" {
		if to, err = parseDay("end_date", end); err != nil {
			return nil, err
		}
	}
	from := to - DefaultStatsDays + 1
	if start != "" {
		if from, err = parseDay("start_date", start); err != nil {
			return nil, err
		}
	}
	if from > to {
		return nil, parley.Errorf(parley.EINVALID, "start_date must not be after end_date")
	}
	if to-from+1 > MaxStatsDays {
		return nil, parley.Errorf(parley.EINVALID, "the range may span at most %d days", MaxStatsDays)
	}
	days, users, err := s.store.Analytics.DailyStats(ctx, from, to)
	if err != nil {
		return nil, err
	}
	st := &MessageStats{ActiveUsers: users, StartDate: from.String(), EndDate: to.String(),
		Daily: make([]DailyMessages, 0, int(to-from+1))}
	i := 0
	for d := from; d <= to; d++ {
		day := DailyMessages{Date: d.String()}
		if i < len(days) && days[i].Day == d {
			day.MessagesSent, day.ActiveUsers = days[i].MessagesSent, days[i].ActiveUsers
			i++
		}
		st.MessagesSent += day.MessagesSent
		st.Daily = append(st.Daily, day)
	}
	return st, nil
}

// SystemHealth returns, for admins, this node's health and that of every
// node that reported in the last 15 seconds. The bool is false when this
// node cannot reach the database (the transport answers 503 with the
// report). Errors: EFORBIDDEN (not an admin).
func (s *Service) SystemHealth(ctx context.Context, caller *parley.Identity) (*SystemHealth, bool, error) {
	if !s.IsAdmin(ctx, caller) {
		return nil, false, parley.Errorf(parley.EFORBIDDEN, "only admins may read the system health")
	}
	s.rememberHealthAdmin(caller)
	h := s.systemHealth(ctx)
	return h, h.DB.OK, nil
}

// SystemHealthCached answers system/health while the database is
// unreachable, when the caller's token could not be checked: a token that
// passed the admin check of this route on this node in the last 10 minutes
// still gets the report (an outage is when operators need it most);
// any other gets EUNAVAILABLE, as every route does then.
func (s *Service) SystemHealthCached(ctx context.Context, token string) (*SystemHealth, error) {
	hash := HashToken(token)
	a := &s.ana
	a.mu.Lock()
	adm, ok := a.admins[hash]
	a.mu.Unlock()
	if !ok || !s.now().Before(adm.until) {
		return nil, parley.Errorf(parley.EUNAVAILABLE, "database is unreachable")
	}
	return s.systemHealth(ctx), nil
}

func (s *Service) rememberHealthAdmin(caller *parley.Identity) {
	now := s.now()
	until := now.Add(healthAdminTTL)
	if caller.ExpiresAt.Before(until) {
		until = caller.ExpiresAt
	}
	a := &s.ana
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.admins) >= maxHealthAdmins {
		for h, adm := range a.admins {
			if !now.Before(adm.until) {
				delete(a.admins, h)
			}
		}
		if len(a.admins) >= maxHealthAdmins {
			return
		}
	}
	a.admins[caller.TokenHash] = healthAdmin{userID: caller.UserID, until: until}
}

// forgetHealthAdmins drops the revoked tokens (one, or all of the users
// the event is addressed to) from the admins SystemHealthCached serves.
func (s *Service) forgetHealthAdmins(ev *parley.Event) {
	var r sessionRevoked
	if json.Unmarshal(ev.Data, &r) != nil {
		return
	}
	a := &s.ana
	a.mu.Lock()
	defer a.mu.Unlock()
	for h, adm := range a.admins {
		if h == r.TokenHash || (r.All && slices.Contains(ev.To, adm.userID)) {
			delete(a.admins, h)
		}
	}
}

func (s *Service) systemHealth(ctx context.Context) *SystemHealth {
	self := s.nodeHealth(ctx)
	h := &SystemHealth{Node: self.Node, CPUUsage: self.CPUUsage, CPUPercent: self.CPUPercent, MemoryUsage: self.MemoryUsage,
		MemoryPercent: self.MemoryPercent, MemoryBytes: self.MemoryBytes, Goroutines: self.Goroutines,
		Connections: self.Connections, Uptime: self.Uptime, DB: self.DB, Bus: self.Bus, ReportedAt: self.ReportedAt,
		Nodes: []NodeReport{*self}}
	now := s.now()
	a := &s.ana
	a.mu.Lock()
	a.forgetStaleLocked(now)
	var others []NodeReport
	for _, r := range a.reports {
		others = append(others, *r)
	}
	a.mu.Unlock()
	sort.Slice(others, func(i, j int) bool { return others[i].Node < others[j].Node })
	h.Nodes = append(h.Nodes, others...)
	return h
}

// cpuSampler turns the process's CPU time into a share of the machine:
// the CPU time used between two samples over the wall time between them
// times the number of CPUs. A sample at least a second after the previous
// one replaces it; until the second sample the share is 0.
type cpuSampler struct {
	mu       sync.Mutex
	lastWall time.Time
	lastCPU  time.Duration
	share    float64
}

func (c *cpuSampler) percent() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	cpu, ok := processCPUTime()
	if !ok {
		return 0
	}
	if c.lastWall.IsZero() {
		c.lastWall, c.lastCPU = now, cpu
		return 0
	}
	if wall := now.Sub(c.lastWall); wall >= time.Second {
		c.share = 100 * float64(cpu-c.lastCPU) / (float64(wall) * float64(runtime.NumCPU()))
		c.share = min(max(c.share, 0), 100)
		c.lastWall, c.lastCPU = now, cpu
	}
	return c.share
}
