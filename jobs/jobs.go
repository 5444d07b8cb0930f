// Package jobs runs Parley's periodic background work: each job every so
// often, on one node at a time when it is leased, with a deadline, backing
// off while it fails. The server starts the runner in Run and stops it in
// Close; nothing else starts background loops of its own.
//
// A leased job runs only on the node that holds its lease, taken (or
// renewed) in the store before every run and good for LeaseTTL: a node that
// dies loses the job to another one after at most that long. The lease is
// the only coordination between nodes; a job must still be safe to run
// twice (a lease can lapse while a run is slow), as the scheduled-message
// claims and the presence sweep are.
package jobs

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Leases is the store of job leases shared by the nodes.
type Leases interface {
	// TakeLease gives the lease of name to holder until until, if it is
	// free, expired at now, or held by holder already; it reports whether
	// holder has it.
	TakeLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error)
	// ReleaseLease gives up holder's lease of name, if it holds it.
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Job is one periodic piece of work.
type Job struct {
	Name  string        // unique; the lease's name
	Every time.Duration // the wait between the end of a run and the next
	// Leased jobs run on one node at a time; the others run on every node
	// (renewing this node's own presence lease, say).
	Leased bool
	// Timeout bounds one run; default Every, at least 5s.
	Timeout time.Duration
	Run     func(ctx context.Context) error
}

// Options configures a Runner.
type Options struct {
	Clock      Clock         // default Real
	Logger     *slog.Logger  // default slog.Default()
	LeaseTTL   time.Duration // how long a lease outlives its last renewal; default 3 × Every of the job, at least 10s
	MaxBackoff time.Duration // the longest wait between runs of a failing job; default 1 minute
}

// Runner runs jobs until Close.
type Runner struct {
	leases Leases
	node   string
	opts   Options

	mu      sync.Mutex
	jobs    []*running
	started bool
	closed  bool
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

type running struct {
	Job
	r    *Runner
	kick chan struct{}

	mu      sync.Mutex
	failing time.Duration
	holds   bool // this node may hold the lease (it took it, and has not lost it since)
	// until is when the lease this node took ends; it is renewed only
	// once less than half of it is left, not at every run: each renewal
	// is a database write, and with SQLite every write makes the readers
	// reload their page caches.
	until time.Time
}

// New returns a runner for node (its name in leases). leases may be nil
// when no job is leased.
func New(leases Leases, node string, opts Options) *Runner {
	if opts.Clock == nil {
		opts.Clock = Real
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = time.Minute
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Runner{leases: leases, node: node, opts: opts, ctx: ctx, cancel: cancel}
}

// Add registers j; jobs added after Start start at once.
func (r *Runner) Add(j Job) {
	if j.Timeout <= 0 {
		j.Timeout = max(j.Every, 5*time.Second)
	}
	rj := &running{Job: j, r: r, kick: make(chan struct{}, 1)}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.jobs = append(r.jobs, rj)
	if r.started {
		r.wg.Add(1)
		go rj.loop()
	}
}

// Start runs every job once now, then every Every.
func (r *Runner) Start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.closed {
		return
	}
	r.started = true
	for _, j := range r.jobs {
		r.wg.Add(1)
		go j.loop()
	}
}

// Kick runs job name soon on this node (if it holds the lease), without
// waiting for its next turn.
func (r *Runner) Kick(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, j := range r.jobs {
		if j.Name == name {
			select {
			case j.kick <- struct{}{}:
			default:
			}
		}
	}
}

// Close stops every job, waits for runs in progress, and gives up the
// leases this node holds. It is idempotent.
func (r *Runner) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	jobs := r.jobs
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	for _, j := range jobs {
		j.mu.Lock()
		holds := j.holds
		j.mu.Unlock()
		if j.Leased && holds && r.leases != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := r.leases.ReleaseLease(ctx, j.Name, r.node); err != nil {
				r.opts.Logger.Warn("release job lease", "job", j.Name, "err", err)
			}
			cancel()
		}
	}
}

func (j *running) loop() {
	defer j.r.wg.Done()
	for {
		wait := j.runOnce()
		timer := make(chan struct{})
		stop := j.r.opts.Clock.AfterFunc(wait, func() { close(timer) })
		select {
		case <-j.r.ctx.Done():
			stop()
			return
		case <-timer:
		case <-j.kick:
			stop()
		}
	}
}

// runOnce runs the job if this node may, and returns how long to wait
// before the next try.
func (j *running) runOnce() time.Duration {
	r := j.r
	now := r.opts.Clock.Now()
	ctx, cancel := context.WithTimeout(r.ctx, j.Timeout)
	defer cancel()
	err := r.ctx.Err()
	if err != nil {
		return j.Every
	}
	if j.Leased {
		ttl := r.opts.LeaseTTL
		if ttl <= 0 {
			ttl = max(3*j.Every, 10*time.Second)
		}
		j.mu.Lock()
		fresh := j.holds && now.Before(j.until.Add(-ttl/2))
		j.mu.Unlock()
		if !fresh {
			var held bool
			held, err = r.leases.TakeLease(ctx, j.Name, r.node, now, now.Add(ttl))
			if err == nil { // after an error it may still hold it: Close releases it then too
				j.mu.Lock()
				j.holds, j.until = held, now.Add(ttl)
				j.mu.Unlock()
			}
			if err == nil && !held {
				return j.Every // another node runs it
			}
		}
	}
	if err == nil {
		err = j.Run(ctx)
	}
	if r.ctx.Err() != nil {
		return j.Every // stopping: not a failure
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err != nil {
		if j.failing == 0 {
			r.opts.Logger.Error("background job failing; backing off", "job", j.Name, "err", err)
		}
		j.failing = min(max(2*j.failing, j.Every), r.opts.MaxBackoff)
		return j.failing
	}
	if j.failing > 0 {
		r.opts.Logger.Info("background job recovered", "job", j.Name)
		j.failing = 0
	}
	return j.Every
}
