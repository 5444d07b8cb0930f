//go:build linux

package wsock

import (
	"io"
	"os"
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
//
// The epoll descriptor itself is non-blocking and watched by the Go
// runtime's own poller (an epoll instance is readable while it has events
// ready): the loop goroutine parks like any goroutine waiting for I/O
// instead of blocking a thread in epoll_wait, which would keep the
// scheduler's P, and the readers it just started in that P's run queue,
// until sysmon took the P back.
type poller struct {
	epfd int
	file *os.File        // epfd, for the runtime's poller; closed to stop the loop
	raw  syscall.RawConn // file's

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
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd)
		return nil, err
	}
	// A non-blocking descriptor makes a File the runtime polls.
	file := os.NewFile(uintptr(epfd), "wsock-epoll")
	raw, err := file.SyscallConn()
	if err != nil {
		_ = file.Close()
		return nil, err
	}
	return &poller{epfd: epfd, file: file, raw: raw, conns: make(map[uint64]*Conn)}, nil
}

// remove forgets a connection; the last one out stops the poller.
func (p *poller) remove(id uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, id)
	if len(p.conns) == 0 && !p.stopped {
		p.stopped = true
		_ = p.file.Close() // the loop's wait returns an error
	}
}

// run waits for readable sockets and starts a reader goroutine for each,
// until the poller is stopped.
func (p *poller) run() {
	events := make([]unix.EpollEvent, 128)
	for {
		var n int
		var werr error
		// Read calls the function until it returns true, parking the
		// goroutine until the epoll descriptor is readable in between.
		if err := p.raw.Read(func(fd uintptr) bool {
			n, werr = unix.EpollWait(int(fd), events, 0)
			return n > 0 || (werr != nil && werr != unix.EAGAIN)
		}); err != nil {
			p.mu.Lock()
			stopped := p.stopped
			p.mu.Unlock()
			if stopped {
				return // remove closed the file
			}
			// The runtime polls any epoll descriptor; failing to means
			// every connection of this poller would hang unread.
			panic("wsock: waiting on the epoll descriptor: " + err.Error())
		}
		if werr == unix.EINTR {
			continue
		}
		if werr != nil {
			// Only invalid arguments make epoll_wait fail: a bug here.
			panic("wsock: epoll_wait: " + werr.Error())
		}
		p.mu.Lock()
		for i := range events[:n] {
			id := uint64(uint32(events[i].Fd)) | uint64(uint32(events[i].Pad))<<32
			if c := p.conns[id]; c != nil {
				go c.readReady()
			}
		}
		p.mu.Unlock()
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
	c.receiveEarly()
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
