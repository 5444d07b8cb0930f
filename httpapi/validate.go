package httpapi

import (
	"bytes"
	"net/http"
	"unicode/utf8"

	"github.com/parley-chat/parley"
)

// checkText reports whether one path segment or query value (already
// percent-decoded) is valid UTF-8 without NUL; what names it goes in the
// message.
func checkText(what, s string) error {
	if !utf8.ValidString(s) {
		return parley.Errorf(parley.EINVALID, "%s must be valid UTF-8", what)
	}
	if bytes.IndexByte([]byte(s), 0) >= 0 {
		return parley.Errorf(parley.EINVALID, "%s must not contain NUL characters", what)
	}
	return nil
}

// checkParams applies checkText to the decoded path and to every query
// parameter name and value of r.

func checkParams(r *http.Request) error {
	if err := checkText("the request path", r.URL.Path); err != nil {
		return err
	}
	for name, values := range r.URL.Query() {
		if err := checkText("a query parameter name", name); err != nil {
			return err
		}
		for _, v := range values {
			if err := checkText("query parameter "+name, v); err != nil {
				return err
			}
		}
	}
	return nil
}
