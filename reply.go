package parley

// Reply is the envelope of every answer, REST or socket ack (API.md §1):
// {"success": true, "data": ...} or {"success": false, "error": {...}}.
type Reply struct {
	Success bool        `json:"success"`
	Data    any         `json:"data,omitempty"`
	Message string      `json:"message,omitempty"`
	Error   *ReplyError `json:"error,omitempty"`
}

// ReplyError is the error part of a Reply.
type ReplyError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ReplyOf builds the envelope for a result: an error reply when err is
// not nil (internal errors show only "internal error"), else a success.
func ReplyOf(data any, err error) Reply {
	if err != nil {
		return Reply{Error: &ReplyError{Code: ErrorCode(err), Message: ErrorMessage(err)}}
	}
	return Reply{Success: true, Data: data}
}
