package parley

import (
	"context"
	"time"
)

// Day is a calendar day in UTC, counted from 1970-01-01 (day 0): the unit
// of the analytics counters.
type Day int64

// DayOf returns the UTC day t falls on.
func DayOf(t time.Time) Day {
	ms := t.UnixMilli()
	d := ms / msPerDay
	if ms < 0 && ms%msPerDay != 0 {
		d-- // floor, not truncation, before 1970
	}
	return Day(d)
}

const msPerDay = 24 * 60 * 60 * 1000

// Start returns the first instant of the day, in UTC.
func (d Day) Start() time.Time { return time.UnixMilli(int64(d) * msPerDay).UTC() }

// String formats the day as YYYY-MM-DD.
func (d Day) String() string { return d.Start().Format(time.DateOnly) }

// UserCounts is what the daily counters hold for one user over a range of
// days.
type UserCounts struct {
	Sent       int64     // messages the user sent
	Received   int64     // messages delivered to the user by others (one per message, whatever the number of devices)
	LastSentAt time.Time // when the user last sent a message; zero when never in the range
}

// DayStats is the server-wide activity of one day.
type DayStats struct {
	Day          Day
	MessagesSent int64 // messages sent that day, of every conversation kind
	ActiveUsers  int64 // users who sent at least one message that day
}

// AnalyticsStore reads the daily counters that MessageStore.SendMessages
// maintains in the same transaction as the messages it commits: per user
// and UTC day the messages sent and received, and per day the messages
// sent and the users who sent. Edits and deletions do not change them; a
// repeated send (same clientMessageId) is not counted again. Nothing here
// scans the messages table.
type AnalyticsStore interface {
	// UserCounts sums a user's counters over the days from..to (inclusive).
	UserCounts(ctx context.Context, userID string, from, to Day) (UserCounts, error)
	// ActiveChatsCount counts the conversations of userID in which they can
	// see at least one message.
	ActiveChatsCount(ctx context.Context, userID string) (int64, error)
	// DailyStats returns the days from..to (inclusive, at most 366 days)
	// that had messages, in order, and the number of distinct users who
	// sent a message in that range.
	DailyStats(ctx context.Context, from, to Day) ([]DayStats, int64, error)
}
