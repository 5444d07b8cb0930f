package service

import (
	"strconv"
	"unicode/utf8"

	"github.com/parley-chat/parley"
)

// A page of history is most of the CPU of its request in encoding: 50
// messages through encoding/json's reflection. AppendMessageViews writes
// the same bytes by hand; FuzzMessageViewJSON holds it to encoding/json.

// AppendMessageViews appends the JSON array of views to b, byte for byte
// what encoding/json.Marshal makes of them (HTML-escaped strings, null for
// a nil slice or element).
func AppendMessageViews(b []byte, views []*MessageView) []byte { return appendJSONArray(b, views) }

// appendJSONArray appends the JSON array of views, null for a nil slice;
// each element's AppendJSON writes null for a nil element.
func appendJSONArray[V interface{ AppendJSON([]byte) []byte }](b []byte, views []V) []byte {
	if views == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, v := range views {
		if i > 0 {
			b = append(b, ',')
		}
		b = v.AppendJSON(b)
	}
	return append(b, ']')
}

// AppendJSON appends v as JSON to b, byte for byte what
// encoding/json.Marshal makes of it (null for a nil v).
func (v *MessageView) AppendJSON(b []byte) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"messageId":`...)
	b = appendJSONString(b, v.MessageID)
	b = append(b, `,"conversationId":`...)
	b = appendJSONString(b, v.ConversationID)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, v.Seq, 10)
	b = append(b, `,"senderId":`...)
	b = appendJSONString(b, v.SenderID)
	b = appendOptional(b, `,"recipientId":`, v.RecipientID)
	b = appendOptional(b, `,"groupId":`, v.GroupID)
	b = appendOptional(b, `,"channelId":`, v.ChannelID)
	b = appendOptional(b, `,"clientMessageId":`, v.ClientMessageID)
	b = append(b, `,"content":`...)
	if v.Content == nil {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, *v.Content)
	}
	b = append(b, `,"contentHash":`...)
	b = appendJSONString(b, v.ContentHash)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, v.Type)
	b = append(b, `,"mediaId":`...)
	b = appendJSONString(b, v.MediaID)
	b = append(b, `,"replyToId":`...)
	b = appendJSONString(b, v.ReplyToID)
	b = appendOptional(b, `,"replyToStatusId":`, v.ReplyToStatusID)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, v.Status)
	b = append(b, `,"sentAt":`...)
	b = appendJSONTime(b, v.SentAt)
	b = append(b, `,"deliveredAt":`...)
	b = appendJSONTime(b, v.DeliveredAt)
	b = append(b, `,"seenAt":`...)
	b = appendJSONTime(b, v.SeenAt)
	b = append(b, `,"editedAt":`...)
	b = appendJSONTime(b, v.EditedAt)
	b = append(b, `,"reactions":`...)
	if v.Reactions == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, r := range v.Reactions {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"userId":`...)
			b = appendJSONString(b, r.UserID)
			b = append(b, `,"reaction":`...)
			b = appendJSONString(b, r.Reaction)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"deletedForEveryone":`...)
	b = strconv.AppendBool(b, v.DeletedForEveryone)
	return append(b, '}')
}

// appendOptional appends key and s unless s is empty (omitempty).
func appendOptional(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendJSONString(append(b, key...), s)
}

// appendJSONTime appends t as parley.Time.MarshalJSON encodes it, in
// parley.TimeFormat; four times a message, so without time.Format's
// layout parsing for the years that layout prints as four digits.
func appendJSONTime(b []byte, t parley.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	u := t.UTC()
	year, month, day := u.Date()
	if year < 0 || year > 9999 {
		b = append(b, '"')
		b = u.AppendFormat(b, parley.TimeFormat)
		return append(b, '"')
	}
	hour, minute, sec := u.Clock()
	ms := u.Nanosecond() / 1e6
	return append(b, '"',
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-', byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':', byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z', '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string the way encoding/json does
// by default: <, > and & escaped for HTML, invalid UTF-8 replaced by
// U+FFFD, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
