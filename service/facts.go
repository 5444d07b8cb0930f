package service

import "sync"

// maxFacts bounds one generation of a facts cache (two are kept).
const maxFacts = 1 << 15

// facts remembers answers of the store that, once true, stay true, so the
// send path need not read them on every message, nor history on every
// page:
//
//   - a user id names an account (accounts are never deleted);
//   - two users' direct conversation has a given id (direct conversations
//     are never deleted; only group conversations are).
//
// Nothing that can change back is kept here: blocks, membership, roles and
// settings are read from the store on every use, so a block stops the very
// next send on every node. A fact learnt on one node is true on all of
// them, so the cache needs no invalidation across nodes.
//
// Memory is bounded by two generations of maxFacts entries: when the
// current map is full it becomes the previous one, whose entries move back
// into the current map when used; the others are dropped with it.
type facts struct {
	mu   sync.Mutex
	cur  map[string]string
	prev map[string]string
	max  int
}

func newFacts(max int) *facts {
	return &facts{cur: make(map[string]string), max: max}
}

// get returns the value recorded for key.
func (f *facts) get(key string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.cur[key]; ok {
		return v, true
	}
	v, ok := f.prev[key]
	if ok {
		f.putLocked(key, v)
	}
	return v, ok
}

// put records value for key.
func (f *facts) put(key, value string) {
	f.mu.Lock()
	f.putLocked(key, value)
	f.mu.Unlock()
}

func (f *facts) putLocked(key, value string) {
	if _, ok := f.cur[key]; !ok && len(f.cur) >= f.max {
		f.prev, f.cur = f.cur, make(map[string]string, len(f.cur))
	}
	f.cur[key] = value
}

// userFact is the key of "this user id names an account".
func userFact(userID string) string { return "u\x00" + userID }

// directFact is the key of the direct conversation of a and b, whichever
// of them sends.
func directFact(a, b string) string {
	if a > b {
		a, b = b, a
	}
	return "d\x00" + a + "\x00" + b
}
