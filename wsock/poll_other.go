//go:build !linux

package wsock

// pollers is empty where wsock has no poller: every connection is read by a
// goroutine of its own.
type pollers struct{}

// pollConn is empty where wsock has no poller.
type pollConn struct{}

func (c *Conn) initPoll() {}

// startPolled reports that the connection must be read by a goroutine.
func (c *Conn) startPolled() bool { return false }

// closeSocket closes the connection; its reading goroutine then finishes
// it.
func (c *Conn) closeSocket() { _ = c.nc.Close() }

func (c *Conn) stopPolling() {}
