package parley_test

import (
	"errors"
	"fmt"
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
