package parley_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/parley-chat/parley"
)

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"invalid shows its message", parley.Errorf(parley.EINVALID, "name too long"), "name too long"},
		{"wrapped not found shows its message", fmt.Errorf("lookup: %w", parley.Errorf(parley.ENOTFOUND, "user not found")), "user not found"},
		{"internal hides its message", parley.Errorf(parley.EINTERNAL, "device vanished"), "internal error"},
		{"plain error hides its text", errors.New("pq: connection refused"), "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parley.ErrorMessage(tt.err); got != tt.want {
				t.Fatalf("ErrorMessage(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestUnreachableIsUnavailable(t *testing.T) {
	for _, err := range []error{
		context.DeadlineExceeded,
		fmt.Errorf("query: %w", context.DeadlineExceeded),
		&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED},
		fmt.Errorf("connect: %w", io.ErrUnexpectedEOF),
		driver.ErrBadConn,
	} {
		if got := parley.ErrorCode(err); got != parley.EUNAVAILABLE {
			t.Errorf("parley.ErrorCode(%v) = %q, want unavailable", err, got)
		}
		if msg := parley.ErrorMessage(err); strings.Contains(msg, "connect") || strings.Contains(msg, "query") {
			t.Errorf("parley.ErrorMessage(%v) = %q shows internal detail", err, msg)
		}
	}
	for _, err := range []error{errors.New("boom"), context.Canceled, io.EOF} {
		if got := parley.ErrorCode(err); got != parley.EINTERNAL {
			t.Errorf("parley.ErrorCode(%v) = %q, want internal", err, got)
		}
	}
	if got := parley.ErrorCode(parley.Errorf(parley.ENOTFOUND, "x: %v", context.DeadlineExceeded)); got != parley.ENOTFOUND {
		t.Errorf("an application error keeps its code, got %q", got)
	}
}
