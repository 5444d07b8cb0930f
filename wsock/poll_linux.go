//go:build linux

package wsock

import (
	"encoding/binary"
	"io"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// pollers is an Upgrader's epoll instance, started with its first watched
// connection and stopped after its last one closed, so an Upgrader with
// no connections holds no goroutine and no file descriptor.
type pollers struct {
	mu  sync.Mutex // taken before poller.mu
	cur *poller
}

// poller is one epoll instance and the goroutine waiting on it. Sockets
// are registered EPOLLONESHOT: once one is reported readable it is not
// reported again until its reader re-arms it, so at most one goroutine
// reads a connection at a time and a busy socket cannot starve the loop.
// Registrations carry an id, never reused, rather than the descriptor,
// which the kernel may hand to a new socket once the old one is closed.
type poller struct {
	epfd   int
	wakefd int // an eventfd, registered with id 0, to stop the loop

	mu      sync.Mutex
	conns   map[uint64]*Conn
	lastID  uint64
	stopped bool // no more registrations: the loop is exiting
}

// pollConn is a connection's registration with its poller.
type pollConn struct {
	raw   syscall.RawConn // nil: the connection cannot be polled
	p     *poller
	id    uint64
	added bool // registered with epoll_ctl (ADD done; later MOD)
}

// pollEvents are the events a connection waits for: readable (data, end
// of stream, error) and disarmed once reported. Level triggered, so
// re-arming a socket with unread bytes reports it again at once.
const pollEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

// initPoll keeps the socket's raw descriptor access when the connection
// has one (a TCP or Unix socket, not TLS or a wrapper).
func (c *Conn) initPoll() {
	if sc, ok := c.nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.poll.raw = raw
		}
	}
}

// startPolled hands the connection to the Upgrader's poller and reports
// whether it did; if not, the caller reads it with a goroutine.
func (c *Conn) startPolled() bool {
	if c.poll.raw == nil {
		return false
	}
	p, id, err := c.u.polls.add(c)
	if err != nil {
		return false
	}
	c.readMu.Lock()
	defer c.readMu.Unlock()
	c.poll.p, c.poll.id = p, id
	if c.early != nil {
		// Parse them on a reader goroutine (it registers the socket
		// when it is done), not on the caller's.
		go c.readReady()
		return true
	}
	if err := c.arm(); err != nil {
		p.remove(id)
		c.poll.p = nil
		return false
	}
	return true
}

// add registers c with the running poller, starting one if there is none.
func (ps *pollers) add(c *Conn) (*poller, uint64, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for {
		p := ps.cur
		if p == nil {
			var err error
			if p, err = newPoller(); err != nil {
				return nil, 0, err
			}
			ps.cur = p
			go p.run()
		}
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			ps.cur = nil
			continue
		}
		p.lastID++
		id := p.lastID
		p.conns[id] = c
		p.mu.Unlock()
		return p, id, nil
	}
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN} // id 0
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(wakefd)
		return nil, err
	}
	return &poller{epfd: epfd, wakefd: wakefd, conns: make(map[uint64]*Conn)}, nil
}

// remove forgets a connection; the last one out stops the poller.
func (p *poller) remove(id uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, id)
	if len(p.conns) == 0 && !p.stopped {
		p.stopped = true
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		_, _ = unix.Write(p.wakefd, one[:])
	}
}

// run waits for readable sockets and starts a reader goroutine for each,
// until the poller is stopped.
//
// epoll_wait blocks its thread in a system call while still holding the
// scheduler's P, and the readers just started sit in that P's run queue:
// the runtime hands the P to another thread only when sysmon notices,
// which can take up to 10 ms on a quiet process. So the loop polls without
// blocking while there are events, and before it blocks it yields once,
// letting the readers it started run first.
func (p *poller) run() {
	events := make([]unix.EpollEvent, 128)
	started := false
	for {
		n, err := unix.EpollWait(p.epfd, events, 0)
		if err == nil && n == 0 {
			if started {
				started = false
				runtime.Gosched()
				continue
			}
			n, err = unix.EpollWait(p.epfd, events, -1)
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			// Only invalid arguments make epoll_wait fail: a bug here.
			panic("wsock: epoll_wait: " + err.Error())
		}
		stop := false
		for i := range events[:n] {
			id := uint64(uint32(events[i].Fd)) | uint64(uint32(events[i].Pad))<<32
			if id == 0 {
				p.mu.Lock()
				stop = p.stopped
				p.mu.Unlock()
				continue
			}
			p.mu.Lock()
			c := p.conns[id]
			p.mu.Unlock()
			if c != nil {
				go c.readReady()
				started = true
			}
		}
		if stop {
			_ = unix.Close(p.epfd)
			_ = unix.Close(p.wakefd)
			return
		}
	}
}

// arm registers the socket for one readiness report (first time) or
// re-arms it. The caller holds readMu.
func (c *Conn) arm() error {
	id := c.poll.id
	ev := unix.EpollEvent{Events: pollEvents, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
	op := unix.EPOLL_CTL_MOD
	if !c.poll.added {
		op = unix.EPOLL_CTL_ADD
	}
	var err error
	if cerr := c.poll.raw.Control(func(fd uintptr) {
		err = unix.EpollCtl(c.poll.p.epfd, op, int(fd), &ev)
	}); cerr != nil {
		return cerr
	}
	if err == nil {
		c.poll.added = true
	}
	return err
}

// readReady runs when the poller reported the socket: it reads what is
// there (until a read comes back short, which almost always means the
// socket is drained; if not, the level-triggered re-arm reports it
// again), hands the frames to the Handler, and re-arms the socket; or,
// at the end of the stream, finishes the connection. The read buffer is
// taken from a pool for this call only.
func (c *Conn) readReady() {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.early != nil {
		early := c.early
		c.early = nil
		c.received(early)
	}
	bp := readBufs.Get().(*[]byte)
	for {
		if c.closed.Load() {
			readBufs.Put(bp)
			c.finish(nil)
			return
		}
		n, err := c.readSocket(*bp)
		if err == unix.EAGAIN {
			break
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			readBufs.Put(bp)
			if err == nil {
				err = io.EOF
			}
			c.finish(err)
			return
		}
		c.received((*bp)[:n])
		if n < len(*bp) {
			break
		}
	}
	readBufs.Put(bp)
	if err := c.arm(); err != nil {
		c.finish(err)
	}
}

// readSocket is one non-blocking read(2). It holds the descriptor while it
// reads, so a concurrent Close cannot let the number be reused under it.
func (c *Conn) readSocket(b []byte) (n int, err error) {
	if cerr := c.poll.raw.Read(func(fd uintptr) bool {
		n, err = unix.Read(int(fd), b)
		return true
	}); cerr != nil {
		return 0, cerr
	}
	return n, err
}

// closeSocket makes both directions of the socket end without closing its
// descriptor: the reader (or the poller, for an idle connection) then sees
// the end of the stream and finishes the connection, and a write blocked
// on a peer that does not read fails. Closing the descriptor instead would
// silently drop it from epoll and no reader would ever run. A connection
// that is not polled is simply closed.
func (c *Conn) closeSocket() {
	if c.poll.raw == nil {
		_ = c.nc.Close()
		return
	}
	_ = c.poll.raw.Control(func(fd uintptr) {
		_ = unix.Shutdown(int(fd), unix.SHUT_RDWR)
	})
}

// stopPolling unregisters the connection from its poller before its
// socket is closed. The caller holds readMu.
func (c *Conn) stopPolling() {
	if c.poll.p != nil {
		c.poll.p.remove(c.poll.id)
		c.poll.p = nil
	}
}
