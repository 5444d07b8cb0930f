package service

import (
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/parley-chat/parley"
)

func normalizeUsername(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func validateUsername(u string) error {
	if len(u) < parley.MinUsernameLen || len(u) > parley.MaxUsernameLen {
		return parley.Errorf(parley.EINVALID, "username must be %d to %d characters", parley.MinUsernameLen, parley.MaxUsernameLen)
	}
	for _, c := range u {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
		if !ok {
			return parley.Errorf(parley.EINVALID, "username may only contain letters, digits, '_', '.' and '-'")
		}
	}
	return nil
}

func validatePassword(p, field string) error {
	if utf8.RuneCountInString(p) < parley.MinPasswordLen {
		return parley.Errorf(parley.EINVALID, "%s must be at least %d characters", field, parley.MinPasswordLen)
	}
	if len(p) > parley.MaxPasswordLen {
		return parley.Errorf(parley.EINVALID, "%s must be at most %d bytes", field, parley.MaxPasswordLen)
	}
	return nil
}

func validateEmail(e string) error {
	if e == "" {
		return nil
	}
	if len(e) > parley.MaxEmailLen {
		return parley.Errorf(parley.EINVALID, "email must be at most %d characters", parley.MaxEmailLen)
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e {
		return parley.Errorf(parley.EINVALID, "email is not a valid address")
	}
	return nil
}

// validateDevice checks a device id and key; required says both must be present.
func validateDevice(deviceID, publicKey string, required bool) error {
	if required && deviceID == "" {
		return parley.Errorf(parley.EINVALID, "deviceId is required")
	}
	if required && publicKey == "" {
		return parley.Errorf(parley.EINVALID, "publicKey is required")
	}
	if err := maxLen("deviceId", deviceID, parley.MaxDeviceIDLen); err != nil {
		return err
	}
	for _, c := range deviceID {
		if c < 0x21 || c > 0x7e {
			return parley.Errorf(parley.EINVALID, "deviceId must be printable ASCII without spaces")
		}
	}
	return maxLen("publicKey", publicKey, parley.MaxPublicKeyLen)
}

func maxLen(field, v string, n int) error {
	if len(v) > n {
		return parley.Errorf(parley.EINVALID, "%s must be at most %d bytes", field, n)
	}
	if !utf8.ValidString(v) {
		return parley.Errorf(parley.EINVALID, "%s must be valid UTF-8", field)
	}
	return nil
}

func required(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return parley.Errorf(parley.EINVALID, "%s is required", field)
	}
	return nil
}
