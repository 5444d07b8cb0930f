package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/service"
)

// MaxBodyBytes is the largest JSON body accepted (API.md §1).
const MaxBodyBytes = 1 << 20

// statusOf maps every error code to its HTTP status. Codes not listed are 500.
var statusOf = map[string]int{
	parley.EINVALID:            http.StatusBadRequest,
	parley.EUNAUTHORIZED:       http.StatusUnauthorized,
	parley.EINVALIDCREDENTIALS: http.StatusUnauthorized,
	parley.EFORBIDDEN:          http.StatusForbidden,
	parley.EBLOCKED:            http.StatusForbidden,
	parley.ENOTFOUND:           http.StatusNotFound,
	parley.ECONFLICT:           http.StatusConflict,
	parley.EUSERNAMETAKEN:      http.StatusConflict,
	parley.EEMAILTAKEN:         http.StatusConflict,
	parley.ETOOLARGE:           http.StatusRequestEntityTooLarge,
	parley.EQUOTA:              http.StatusRequestEntityTooLarge,
	parley.EUNSUPPORTED:        http.StatusUnsupportedMediaType,
	parley.ERATELIMITED:        http.StatusTooManyRequests,
	parley.EUNAVAILABLE:        http.StatusServiceUnavailable,
	parley.EINTERNAL:           http.StatusInternalServerError,
	"method_not_allowed":       http.StatusMethodNotAllowed,
}

// StatusOf returns the HTTP status of an error code.
func StatusOf(code string) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// writeJSON writes a success envelope.
func writeJSON(w http.ResponseWriter, status int, data any, message string) {
	// Pages of history and chat lists: the hand-written encoders make the
	// same bytes as encoding/json without its reflection, into a buffer
	// reused across requests (Write does not keep it).
	buf := pageBuffers.Get().(*[]byte)
	body, ok := appendReply((*buf)[:0], data, message)
	if ok {
		*buf = body
		defer func() {
			if cap(*buf) <= maxPooledPage {
				pageBuffers.Put(buf)
			}
		}()
	} else {
		pageBuffers.Put(buf)
		var err error
		if body, err = json.Marshal(parley.Reply{Success: true, Data: data, Message: message}); err != nil {
			body = []byte(`{"success":false,"error":{"code":"internal","message":"internal error"}}`)
			status = http.StatusInternalServerError
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// pageBuffers holds encoding buffers of hand-encoded replies; one of at
// most maxPooledPage bytes goes back for the next reply, larger ones
// (pages of 200 long messages) are left to the collector.
var pageBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

const maxPooledPage = 256 << 10

// appendReply appends the success envelope of data, as json.Marshal of
// parley.Reply encodes it, when data is of a type encoded by hand (a page
// of message views, a chat list); otherwise it reports false and what it
// appended is to be dropped.
func appendReply(b []byte, data any, message string) ([]byte, bool) {
	b = append(b, `{"success":true,"data":`...)
	switch v := data.(type) {
	case []*service.MessageView:
		b = service.AppendMessageViews(b, v)
	case []*service.ChatView:
		b = service.AppendChatViews(b, v)
	default:
		return b, false
	}
	if message != "" {
		msg, _ := json.Marshal(message) // a string always encodes
		b = append(append(b, `,"message":`...), msg...)
	}
	return append(b, '}'), true
}

// writeError writes an error envelope. Internal errors are logged with the
// request id and shown only as "internal error".
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := parley.ErrorCode(err)
	switch code {
	case parley.EINTERNAL:
		if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			// The client went away (closed its connection) mid-request:
			// nothing failed here, and the answer reaches no one.
			loggerFrom(r).Debug("request cancelled by the client", "err", err)
			break
		}
		loggerFrom(r).Error("internal error", "err", err)
	case parley.EINVALIDCREDENTIALS:
		securityEvent(r, parley.SecLoginFailed, "login failed")
	}
	body, _ := json.Marshal(parley.ReplyOf(nil, err))
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(StatusOf(code))
	_, _ = w.Write(body)
}

// decode reads a JSON object body into v. An empty body decodes as {} so
// that validation reports the missing fields by name. Errors: EINVALID
// naming the offending field, ETOOLARGE, EUNSUPPORTED.
func decode(w http.ResponseWriter, r *http.Request, v any) error { return decodeWith(w, r, v, nil) }

// decodeWith is decode for v whose flat fields (FlatFieldsOf) the route
// computed once.
func decodeWith(w http.ResponseWriter, r *http.Request, v any, flat FlatFields) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return parley.Errorf(parley.EUNSUPPORTED, "Content-Type must be application/json")
		}
	}
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	data, err := io.ReadAll(body)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return parley.Errorf(parley.ETOOLARGE, "request body must be at most %d bytes", MaxBodyBytes)
	} else if err != nil {
		return parley.Errorf(parley.EINVALID, "could not read request body")
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		data = []byte("{}")
	} else if err := parley.CheckJSONText(data); err != nil {
		return err
	}
	return decodeBytesFlat(data, v, flat)
}

// DecodeJSON decodes one client JSON object (a REST body or a socket
// event's data) into v by the same rules: storable text only, seed
// aliases mapped, unknown fields refused by name. Errors are EINVALID.
func DecodeJSON(data []byte, v any) error { return DecodeJSONFlat(data, v, nil) }

// DecodeJSONFlat is DecodeJSON for v of a struct type whose flat fields
// (FlatFieldsOf; nil: none) the caller computed once: the usual flat
// object of strings is decoded without encoding/json, with the same
// result.
func DecodeJSONFlat(data []byte, v any, flat FlatFields) error {
	if err := parley.CheckJSONText(data); err != nil {
		return err
	}
	return decodeBytesFlat(data, v, flat)
}

// decodeBytes decodes one JSON object from data into v, naming the field
// in any type error.
func decodeBytes(data []byte, v any) error { return decodeBytesFlat(data, v, nil) }

// decodeBytesFlat is decodeBytes trying decodeFlat first; data has passed
// parley.CheckJSONText.
func decodeBytesFlat(data []byte, v any, flat FlatFields) error {
	if flat != nil && decodeFlat(data, v, flat) {
		return nil
	}
	data, err := applyAliases(data, v)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields() // a misspelt field must not look like success
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return parley.Errorf(parley.EINVALID, "request body must hold a single JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return parley.Errorf(parley.EINVALID, "malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return parley.Errorf(parley.EINVALID, "request body must be a JSON object")
		}
		return parley.Errorf(parley.EINVALID, "field %s must be of type %s, not %s", typ.Field, jsonType(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no error type for this; the message is stable.
		return parley.Errorf(parley.EINVALID, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return parley.Errorf(parley.EINVALID, "malformed JSON: unexpected end of body")
	}
	return parley.Errorf(parley.EINVALID, "malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "map", "struct", "ptr":
		return "object"
	}
	return "number"
}

// queryInt parses an optional integer query parameter within [lo, hi].
func queryInt(r *http.Request, name string, def, lo, hi int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, parley.Errorf(parley.EINVALID, "%s must be an integer from %d to %d", name, lo, hi)
	}
	return n, nil
}

// notFoundError is the answer for routes that do not exist.
func notFoundError(r *http.Request) error {
	return parley.Errorf(parley.ENOTFOUND, "no route for %s %s", r.Method, r.URL.Path)
}

// methodError is the answer for a known path with a wrong method.
func methodError(r *http.Request) error {
	return &parley.Error{Code: "method_not_allowed", Message: fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path)}
}
