package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// defaultChatsPage is the server's page when the request names no limit
// (service.DefaultPageSize).
const defaultChatsPage = 50

// chatsConfig is the configuration of the chats scenario.
type chatsConfig struct {
	common
	readsFlags
	pageSize int // 0: no limit parameter, the server's default page
	minChats int
}

func parseChats(args []string, out io.Writer) (chatsConfig, error) {
	var c chatsConfig
	fs := flag.NewFlagSet("parley-bench chats", flag.ContinueOnError)
	fs.SetOutput(out)
	rawURL, debugURL := c.register(fs, 0)
	c.readsFlags.addFlags(fs, 1, "chat list")
	fs.IntVar(&c.pageSize, "page", 200, "chats per page (limit); 0 sends no limit and expects the server's default page of 50")
	fs.IntVar(&c.minChats, "min-chats", 1000, "read as the seeded accounts with at least this many conversations with messages (seed --hubs)")
	if err := parseReads(fs, args, &c.common, &c.readsFlags, rawURL, debugURL, "--hubs N --hub-chats 1000 --messages M"); err != nil {
		return c, err
	}
	switch {
	case c.pageSize < 0 || c.pageSize > 200:
		return c, errors.New("--page must be between 0 and 200")
	case c.minChats < 1 || c.minChats > 1_000_000:
		return c, errors.New("--min-chats must be between 1 and 1000000")
	}
	return c, nil
}

// chatsReader is a seeded account that reads its chat list, with the
// conversation ids the page must hold, in order.
type chatsReader struct {
	user *benchUser
	want []string
}

// chatsResult is what the chats scenario measured; a read is a chat list.
type chatsResult struct {
	*readsResult
	Readers int // accounts whose lists were read
}

// chatsReaders picks the accounts of f with at least minChats direct
// conversations that have messages (the server lists no empty direct
// chat), and the first page each must see: its conversations by last
// message, newest first, ties by id.
func chatsReaders(f *usersFile, minChats, page int) ([]*chatsReader, error) {
	byUser := map[int][]*seededConv{}
	for _, cv := range f.Conversations {
		if cv.Messages == 0 {
			continue
		}
		if cv.Last == 0 {
			return nil, errors.New("the users file has no time of each conversation's last message: seed it again with this build")
		}
		byUser[cv.A] = append(byUser[cv.A], cv)
		byUser[cv.B] = append(byUser[cv.B], cv)
	}
	var out []*chatsReader
	for i, u := range f.Users {
		convs := byUser[i]
		if len(convs) < minChats {
			continue
		}
		slices.SortFunc(convs, func(a, b *seededConv) int {
			if a.Last != b.Last {
				return int(b.Last - a.Last)
			}
			return strings.Compare(a.ID, b.ID)
		})
		r := &chatsReader{user: u}
		for _, cv := range convs[:min(len(convs), page)] {
			r.want = append(r.want, cv.ID)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no seeded account has %d conversations with messages (seed --hubs N --hub-chats %d --messages M)", minChats, minChats)
	}
	return out, nil
}

// runChats has every worker read the chat list of a random reader (an
// account with --min-chats conversations or more): GET
// /api/chats?limit=N. A list counts when it holds exactly the
// conversations expected, in order of activity, each with its last
// message.
func runChats(ctx context.Context, c chatsConfig, out, progress io.Writer) (*chatsResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.limit)
	defer cancel()
	f, err := readUsersFile(c.usersFile)
	if err != nil {
		return nil, err
	}
	page := c.pageSize
	if page == 0 {
		page = defaultChatsPage
	}
	readers, err := chatsReaders(f, c.minChats, page)
	if err != nil {
		return nil, err
	}
	rest := newREST(&c.common)
	if err := checkToken(ctx, rest, readers[0].user); err != nil {
		return nil, err
	}
	res := &chatsResult{Readers: len(readers)}
	res.readsResult = runReads(ctx, &c.common, c.workers, c.duration, "lists", progress,
		func(ctx context.Context, rng *rand.Rand) (time.Duration, time.Duration, error) {
			return readChats(ctx, rest, readers[rng.IntN(len(readers))], c.pageSize)
		})
	limit := "limit=" + strconv.Itoa(c.pageSize)
	if c.pageSize == 0 {
		limit = "no limit (default page)"
	}
	printReads(out, fmt.Sprintf("chats: %d workers reading the chat lists (%s) of %d accounts with %d+ conversations for %s",
		c.workers, limit, res.Readers, c.minChats, c.duration), "lists", res.readsResult)
	return res, nil
}

var (
	conversationIDKey = []byte(`"conversationId":"`)
	lastMessageKey    = []byte(`"lastMessage":{`)
)

// readChats reads r's chat list and checks it: status 200, the
// conversations of r.want in that order, each with a last message. A
// chat's conversationId comes twice (the chat's, then its last
// message's); the check reads the ids in order without decoding the JSON,
// which would cost the bench more CPU than the server spends, on the same
// cores. It returns the client-side latency and the server's own
// (Server-Timing), -1 when the server does not say.
func readChats(ctx context.Context, rest *restClient, r *chatsReader, limit int) (client, server time.Duration, err error) {
	url := rest.base + "/api/chats"
	if limit > 0 {
		url += "?limit=" + strconv.Itoa(limit)
	}
	body, client, server, err := getChecked(ctx, rest, url, r.user.Token, 16<<20)
	if err != nil {
		return 0, 0, err
	}
	if err := checkChats(body, r.want); err != nil {
		return 0, 0, err
	}
	return client, server, nil
}

// checkChats checks a chat list's body against the ids it must hold, in
// order.
func checkChats(body []byte, want []string) error {
	if n := bytes.Count(body, lastMessageKey); n != len(want) {
		return fmt.Errorf("%d chats with a last message, want %d", n, len(want))
	}
	var got []string
	for rest := body; ; {
		i := bytes.Index(rest, conversationIDKey)
		if i < 0 {
			break
		}
		rest = rest[i+len(conversationIDKey):]
		j := bytes.IndexByte(rest, '"')
		if j < 0 {
			return errors.New("unterminated conversationId")
		}
		if id := string(rest[:j]); len(got) == 0 || got[len(got)-1] != id {
			got = append(got, id)
		}
		rest = rest[j:]
	}
	if len(got) != len(want) {
		return fmt.Errorf("%d chats, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			return fmt.Errorf("chat %d is not the one expected by activity", i)
		}
	}
	return nil
}
