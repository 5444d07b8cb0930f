package httpapi

import (
	"encoding/json"
	"reflect"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/service"
)

// alias is another spelling of a body field, from seed 001: the value of
// From is decoded as To; List wraps a single value in an array (seed 001
// adds or removes one user_id where API.md takes members[]).
type alias struct {
	From, To string
	List     bool
}

// aliases lists, by the Go type of the body, the seed 001 spellings that
// are accepted beside API.md's. A body giving both spellings is refused.
var aliases = map[reflect.Type][]alias{
	reflect.TypeOf(service.ProfileInput{}):      {{From: "profile_pic", To: "avatar"}},
	reflect.TypeOf(service.CreateGroupInput{}):  {{From: "group_name", To: "name"}, {From: "participants", To: "members"}},
	reflect.TypeOf(service.AddMembersInput{}):   {{From: "user_id", To: "members", List: true}},
	reflect.TypeOf(service.RemoveMemberInput{}): {{From: "user_id", To: "memberId"}},
	reflect.TypeOf(service.CallInput{}):         {{From: "caller_id", To: "callerId"}, {From: "receiver_id", To: "receiverId"}},
	reflect.TypeOf(service.AnswerInput{}):       {{From: "call_id", To: "callId"}, {From: "caller_id", To: "callerId"}, {From: "receiver_id", To: "receiverId"}},
}

// applyAliases rewrites the seed 001 spellings of v's type in data to
// API.md's. Data that is not a JSON object is returned as it is, for the
// decoder to report.
func applyAliases(data []byte, v any) ([]byte, error) {
	t := reflect.TypeOf(v)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	list := aliases[t]
	if len(list) == 0 {
		return data, nil
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil || obj == nil {
		return data, nil
	}
	changed := false
	for _, a := range list {
		val, ok := obj[a.From]
		if !ok {
			continue
		}
		if _, both := obj[a.To]; both {
			return nil, parley.Errorf(parley.EINVALID, "give %s or %s, not both", a.To, a.From)
		}
		if a.List {
			val = append(append([]byte{'['}, val...), ']')
		}
		obj[a.To] = val
		delete(obj, a.From)
		changed = true
	}
	if !changed {
		return data, nil
	}
	return json.Marshal(obj)
}
