package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

// usersFile is what seed writes and --users-file reads: accounts that
// exist in the server's database, each with a bearer token of its own, and
// the direct conversations seeded between them. It holds live tokens of
// those (benchmark) accounts, so it is written with mode 0600.
type usersFile struct {
	Users         []*benchUser  `json:"users"`
	Conversations []*seededConv `json:"conversations"`
}

// seededConv is a direct conversation seed filled: A and B index Users,
// Messages is its last seq, Last the time of its last message (Unix ms, 0
// without messages; files of older builds lack it).
type seededConv struct {
	ID       string `json:"id"`
	A        int    `json:"a"`
	B        int    `json:"b"`
	Messages int    `json:"messages"`
	Last     int64  `json:"last,omitempty"`
}

func readUsersFile(path string) (*usersFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f usersFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for i, u := range f.Users {
		if u == nil || u.ID == "" || u.Token == "" {
			return nil, fmt.Errorf("%s: user %d has no id or token", path, i)
		}
	}
	for i, cv := range f.Conversations {
		if cv == nil || cv.A < 0 || cv.B < 0 || cv.A >= len(f.Users) || cv.B >= len(f.Users) {
			return nil, fmt.Errorf("%s: conversation %d names unknown users", path, i)
		}
	}
	return &f, nil
}

func writeUsersFile(path string, f *usersFile) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// getUsers returns c.users users: the first ones of --users-file, checked
// against the server with one authenticated call, or users registered now.
func (c *common) getUsers(ctx context.Context, rest *restClient, progress io.Writer) ([]*benchUser, error) {
	if c.usersFile == "" {
		return registerUsers(ctx, c, rest, c.users, progress)
	}
	f, err := readUsersFile(c.usersFile)
	if err != nil {
		return nil, err
	}
	if len(f.Users) < c.users {
		return nil, fmt.Errorf("--users-file holds %d users, %d wanted", len(f.Users), c.users)
	}
	if err := checkToken(ctx, rest, f.Users[0]); err != nil {
		return nil, err
	}
	return f.Users[:c.users], nil
}

// checkToken makes one authenticated call as u, so a users file seeded
// into another database fails clearly instead of as a storm of 401s.
func checkToken(ctx context.Context, rest *restClient, u *benchUser) error {
	var me struct{ UserID string }
	if err := rest.call(ctx, "GET", "/api/users/me", u.Token, nil, &me); err != nil {
		return fmt.Errorf("the users file does not match this server's database: %w", err)
	}
	if me.UserID != u.ID {
		return fmt.Errorf("the users file does not match this server's database: token of %s names %s", u.ID, me.UserID)
	}
	return nil
}

// profileServer starts fetching a CPU profile of the server covering the
// next d (whole seconds, at least one) into c.cpuProfile, and returns a
// function that waits for it. It does nothing without --cpu-profile.
func (c *common) profileServer(ctx context.Context, d time.Duration, progress io.Writer) (wait func() error) {
	if c.cpuProfile == "" {
		return func() error { return nil }
	}
	secs := max(1, int(d/time.Second))
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			req, err := http.NewRequestWithContext(ctx, "GET", c.debugURL+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), nil)
			if err != nil {
				return err
			}
			resp, err := (&http.Client{Timeout: time.Duration(secs)*time.Second + 30*time.Second}).Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			f, err := os.Create(c.cpuProfile)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, resp.Body)
			return errors.Join(err, f.Close())
		}()
	}()
	return func() error {
		err := <-done
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		fmt.Fprintf(progress, "server CPU profile of %ds written to %s\n", secs, c.cpuProfile)
		return nil
	}
}
