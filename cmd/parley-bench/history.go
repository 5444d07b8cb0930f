package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"
)

// historyConfig is the configuration of the history scenario.
type historyConfig struct {
	common
	readsFlags
	pageSize int
}

func parseHistory(args []string, out io.Writer) (historyConfig, error) {
	var c historyConfig
	fs := flag.NewFlagSet("parley-bench history", flag.ContinueOnError)
	fs.SetOutput(out)
	rawURL, debugURL := c.register(fs, 0)
	c.readsFlags.addFlags(fs, 32, "page")
	fs.IntVar(&c.pageSize, "page", 50, "messages per page (limit)")
	if err := parseReads(fs, args, &c.common, &c.readsFlags, rawURL, debugURL, "--conversations N --messages M"); err != nil {
		return c, err
	}
	if c.pageSize < 1 || c.pageSize > 200 {
		return c, errors.New("--page must be between 1 and 200")
	}
	return c, nil
}

// historyResult is what the history scenario measured; a read is a page.
type historyResult = readsResult

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
	res := runReads(ctx, &c.common, c.workers, c.duration, "pages", progress,
		func(ctx context.Context, rng *rand.Rand) (time.Duration, time.Duration, error) {
			cv := convs[rng.IntN(len(convs))]
			me, peer := f.Users[cv.A], f.Users[cv.B]
			if rng.IntN(2) == 1 {
				me, peer = peer, me
			}
			before := c.pageSize + 1 + rng.IntN(cv.Messages-c.pageSize+1) // newest page: before = Messages+1
			return readPage(ctx, rest, me, peer, before, c.pageSize)
		})
	printReads(out, fmt.Sprintf("history: %d workers reading pages of %d from %d conversations for %s",
		c.workers, c.pageSize, len(convs), c.duration), "pages", res)
	return res, nil
}

var messageIDKey = []byte(`"messageId":`)

// readPage reads one page and checks it: status 200, exactly size
// messages, the first one at seq before-1. It returns the client-side
// latency and the server's own (Server-Timing), -1 when the server does
// not say.
func readPage(ctx context.Context, rest *restClient, me, peer *benchUser, before, size int) (client, server time.Duration, err error) {
	body, client, server, err := getChecked(ctx, rest, rest.base+"/api/messages/"+me.ID+"/"+peer.ID+
		"?limit="+strconv.Itoa(size)+"&beforeSeq="+strconv.Itoa(before), me.Token, 8<<20)
	if err != nil {
		return 0, 0, err
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
	return client, server, nil
}
