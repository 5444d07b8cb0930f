package httpapi

import (
	"encoding/json"

	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/parley-chat/parley"
	"github.com/parley-chat/parley/service"
)

var pathParam = regexp.MustCompile(`\{([A-Za-z]+)\}`)

// requiredIn lists, by request body type, the fields a request must give.
// Every other body field is optional (API.md marks them with ?).
var requiredIn = map[reflect.Type][]string{
	reflect.TypeOf(service.RegisterInput{}):      {"username", "password", "deviceId", "publicKey"},
	reflect.TypeOf(service.LoginInput{}):         {"username", "password"},
	reflect.TypeOf(emailInput{}):                 {"email"},
	reflect.TypeOf(resetInput{}):                 {"token", "newPassword"},
	reflect.TypeOf(service.KeyInput{}):           {"deviceId", "publicKey"},
	reflect.TypeOf(service.BlockInput{}):         {"blockedUserId"},
	reflect.TypeOf(service.MuteInput{}):          {"mutedUserId"},
	reflect.TypeOf(contactInput{}):               {"contactId"},
	reflect.TypeOf(service.SendInput{}):          {"recipientId"},
	reflect.TypeOf(service.ScheduleInput{}):      {"scheduledAt"},
	reflect.TypeOf(service.ReactInput{}):         {"messageId"},
	reflect.TypeOf(service.DeleteInput{}):        {"messageId"},
	reflect.TypeOf(service.EditInput{}):          {"messageId"},
	reflect.TypeOf(service.StatusInput{}):        {"messageId", "status"},
	reflect.TypeOf(messageIDInput{}):             {"messageId"},
	reflect.TypeOf(service.CreateGroupInput{}):   {"name"},
	reflect.TypeOf(service.AddMembersInput{}):    {"groupId", "members"},
	reflect.TypeOf(service.RemoveMemberInput{}):  {"groupId", "memberId"},
	reflect.TypeOf(service.RoleInput{}):          {"groupId", "memberId", "newRole"},
	reflect.TypeOf(service.GroupSettingsInput{}): {"groupId", "settings"},
	reflect.TypeOf(service.UpdateGroupInput{}):   {"groupId"},
	reflect.TypeOf(service.GroupStatusInput{}):   {"messageId", "status"},
	reflect.TypeOf(service.GroupReactInput{}):    {"messageId"},
	reflect.TypeOf(service.GroupDeleteInput{}):   {"messageId"},
	reflect.TypeOf(service.TypingInput{}):        {},
	reflect.TypeOf(service.DeleteGroupInput{}):   {"groupId"},
	reflect.TypeOf(service.GroupSendInput{}):     {"groupId"},
	reflect.TypeOf(service.CreateStatusInput{}):  {"type"},
	reflect.TypeOf(service.DeleteStatusInput{}):  {"statusId"},
}

// enums lists the closed sets of string values, by "Type.field" or, for
// every type, by field name.
var enums = map[string][]string{
	"lastSeenVisibility":       {"everyone", "contacts", "nobody"},
	"newRole":                  {parley.RoleAdmin, parley.RoleMember},
	"role":                     {parley.RoleAdmin, parley.RoleMember},
	"type":                     parley.MessageTypes,
	"ChatView.type":            {parley.KindDirect, parley.KindGroup, parley.KindChannel},
	"status":                   {parley.StatusSent, parley.StatusDelivered, parley.StatusSeen},
	"StatusInput.status":       {parley.StatusDelivered, parley.StatusSeen},
	"GroupStatusInput.status":  {parley.StatusDelivered, parley.StatusSeen},
	"StatusResult.status":      {parley.StatusDelivered, parley.StatusSeen},
	"GroupStatusResult.status": {parley.StatusDelivered, parley.StatusSeen},
	"ScheduleResult.status":    {"scheduled"},
	"ScheduledView.status":     {"scheduled"},
	"groupStatusUpdate.status": {parley.StatusDelivered, parley.StatusSeen},
	"statusUpdate.status":      {parley.StatusDelivered, parley.StatusSeen},
	"healthData.status":        {"ok"},
	"CommunityView.role":       {parley.RoleOwner, parley.RoleAdmin, parley.RoleMember},
	"CommunityMemberView.role": {parley.RoleOwner, parley.RoleAdmin, parley.RoleMember},
	"CommunityView.status":     {parley.MemberActive, parley.MemberPending},
	"CommunityView.e2eeMode":   {parley.E2EEOn, parley.E2EETrusted},
	"ChannelView.e2eeMode":     {parley.E2EEOn, parley.E2EETrusted},
	"ChannelKeyView.e2eeMode":  {parley.E2EEOn, parley.E2EETrusted},
	"JoinResult.status":        {parley.MemberActive, parley.MemberPending, "rejected"},
	"ChannelView.type":         parley.ChannelTypes,
	"ChatChannel.type":         parley.ChannelTypes,
	"channelEvent.type":        parley.ChannelTypes,
	"CreateChannelInput.type":  parley.ChannelTypes,
	"CallInput.type":           callTypes,
	"CallStarted.type":         callTypes,
	"CallView.type":            callTypes,
	"callIncoming.type":        callTypes,
	"callAccepted.type":        callTypes,
	"CallStarted.status":       {parley.CallRinging, parley.CallBusy, "call_initiated", "video_call_initiated"},
	"AnswerResult.status":      {"call_accepted", "video_call_accepted", "call_rejected"},
	"CallView.status":          callStates,
	"EndResult.status":         callStates,
	"callFinished.status":      callStates,
	"callFinished.reason":      callReasons,
	"EndResult.reason":         callReasons,
	"CallView.reason":          callReasons,
	"CallView.direction":       {"outgoing", "incoming"},
	"CreateStatusInput.type":   parley.StatusTypes,
	"CreateStatusResult.type":  parley.StatusTypes,
	"StatusView.type":          parley.StatusTypes,
	"statusCreatedEvent.type":  parley.StatusTypes,
	"visibleTo":                parley.StatusAudiences,
	"ActiveChat.type":          {parley.KindDirect, parley.KindGroup, parley.KindChannel},
	"MessageCount.period":      {"day", "week", "month", "year"},
}

var (
	callTypes  = []string{parley.CallVoice, parley.CallVideo}
	callStates = []string{parley.CallRinging, parley.CallAccepted, parley.CallEnded, parley.CallRejected, parley.CallMissed,
		parley.CallCanceled, parley.CallBusy, parley.CallFailed}
	callReasons = []string{service.ReasonHangup, service.ReasonCanceled, service.ReasonRejected, service.ReasonMissed,
		service.ReasonBusy, service.ReasonConnectionLost, service.ReasonFailed}
)

// queryParams gives the schema of each query parameter by name.
var queryParams = map[string]map[string]any{
	"limit":     {"type": "integer", "minimum": 1, "maximum": service.MaxPageSize, "default": service.DefaultPageSize},
	"beforeSeq": {"type": "integer", "minimum": 1, "format": "int64"},
	"before": {"oneOf": []any{
		map[string]any{"type": "integer", "description": "epoch milliseconds", "format": "int64"},
		map[string]any{"type": "string", "format": "date-time"}}},
	"cursor":     {"type": "string"},
	"after":      {"type": "string", "maxLength": 64},
	"q":          {"type": "string", "minLength": 1},
	"thumbnail":  {"type": "string", "enum": []string{"true", "false"}},
	"period":     {"type": "string", "enum": []string{"day", "week", "month", "year"}, "default": "day"},
	"start_date": {"type": "string", "format": "date"},
	"end_date":   {"type": "string", "format": "date"},
}

// schemas collects the component schemas of a document: one per named Go
// struct, shared by every operation or message that uses it.
type schemas struct {
	defs map[string]any
}

func newSchemas() *schemas { return &schemas{defs: map[string]any{}} }

var (
	timeType = reflect.TypeOf(parley.Time{})
	rawType  = reflect.TypeOf(json.RawMessage{})
)

// of returns the JSON Schema of a Go type as encoding/json sees it, with
// named structs as references to components/schemas.
func (s *schemas) of(t reflect.Type) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": []string{"string", "null"}, "format": "date-time"}
	case t == rawType:
		return map[string]any{"description": "the payload of the real-time event named beside it, as that event carries it"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		sc := s.of(t.Elem())
		if ty, ok := sc["type"].(string); ok {
			cp := map[string]any{}
			for k, v := range sc {
				cp[k] = v
			}
			cp["type"] = []string{ty, "null"}
			return cp
		}
		if _, ok := sc["$ref"]; ok { // a nil *struct is sent as null (a chat without messages)
			return map[string]any{"oneOf": []any{sc, map[string]any{"type": "null"}}}
		}
		return sc
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": s.of(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": s.of(t.Elem())}
	case reflect.Struct:
		name := t.Name()
		if name == "" {
			return s.object(t)
		}
		name = strings.ToUpper(name[:1]) + name[1:]
		if _, ok := s.defs[name]; !ok {
			s.defs[name] = map[string]any{} // breaks cycles
			s.defs[name] = s.object(t)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

func (s *schemas) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	s.addFields(t, t.Name(), props, &required)
	if req, ok := requiredIn[t]; ok {
		required = append([]string(nil), req...)
		for _, e := range embedded(t) {
			required = append(required, requiredIn[e]...)
		}
	}
	sort.Strings(required)
	out := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		out["required"] = required
	}
	return out
}

// embedded lists the struct types embedded in t.
func embedded(t reflect.Type) []reflect.Type {
	var out []reflect.Type
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.Anonymous {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			out = append(out, ft)
		}
	}
	return out
}

// addFields adds t's JSON fields to props. For responses (types without a
// requiredIn entry) a field is required unless it has omitempty.
func (s *schemas) addFields(t reflect.Type, owner string, props map[string]any, required *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		parts := strings.Split(tag, ",")
		name := parts[0]
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			s.addFields(ft, owner, props, required)
			continue
		}
		if name == "" {
			name = f.Name
		}
		sc := s.of(f.Type)
		if e, ok := enums[owner+"."+name]; ok {
			sc = withEnum(sc, e)
		} else if e, ok := enums[name]; ok && f.Type.Kind() == reflect.String {
			sc = withEnum(sc, e)
		}
		props[name] = sc
		if !strings.Contains(tag, ",omitempty") {
			*required = append(*required, name)
		}
	}
}

func withEnum(sc map[string]any, e []string) map[string]any {
	cp := map[string]any{}
	for k, v := range sc {
		cp[k] = v
	}
	cp["enum"] = e
	return cp
}

// example builds a value of schema sc (resolving references) that the
// schema accepts: the first enum value, a sample id, time or number.
func (s *schemas) example(sc map[string]any, field string, depth int) any {
	if ref, ok := sc["$ref"].(string); ok {
		return s.example(s.defs[strings.TrimPrefix(ref, "#/components/schemas/")].(map[string]any), field, depth)
	}
	if e, ok := sc["enum"].([]string); ok {
		return e[0]
	}
	if c, ok := sc["const"]; ok {
		return c
	}
	if o, ok := sc["oneOf"].([]any); ok {
		return s.example(o[0].(map[string]any), field, depth)
	}
	ty := sc["type"]
	if l, ok := ty.([]string); ok {
		ty = l[0]
	}
	switch ty {
	case "string":
		if sc["format"] == "date-time" {
			return "2025-04-12T11:56:12.043Z"
		}
		return sampleString(field)
	case "boolean":
		return false
	case "integer", "number":
		if m, ok := sc["minimum"]; ok {
			return m
		}
		return 1
	case "array":
		if depth > 8 {
			return []any{}
		}
		return []any{s.example(sc["items"].(map[string]any), strings.TrimSuffix(field, "s"), depth+1)}
	case "object":
		out := map[string]any{}
		if depth > 8 {
			return out
		}
		props, _ := sc["properties"].(map[string]any)
		for name, p := range props {
			out[name] = s.example(p.(map[string]any), name, depth+1)
		}
		if ap, ok := sc["additionalProperties"].(map[string]any); ok && len(props) == 0 {
			out["usr_1"] = s.example(ap, "", depth+1)
		}
		return out
	}
	return nil
}

// sampleString is a plausible value of a string field, by its name.
func sampleString(field string) string {
	f := strings.ToLower(field)
	switch {
	case strings.HasSuffix(f, "groupid"):
		return "group_1"
	case strings.HasSuffix(f, "messageid") || f == "replytoid":
		return "msg_1"
	case strings.HasSuffix(f, "conversationid"):
		return "conv_1"
	case strings.HasSuffix(f, "deviceid"):
		return "dev_1"
	case strings.HasSuffix(f, "id") || f == "member" || f == "newmember" || f == "userid":
		return "usr_1"
	case strings.Contains(f, "hash"):
		return "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	case f == "token":
		return "token"
	}
	return "text"
}

// rawSchema is the JSON Schema of a raw body: its own, or binary.
func rawSchema(d *rawDoc) map[string]any {
	if d.Schema != nil {
		return d.Schema
	}
	return map[string]any{"type": "string", "format": "binary"}
}

// errorCodes are the error statuses an operation may answer, besides 500
// and 503 which any may.
func errorStatuses(rt *route) []string {
	set := map[string]bool{}
	if rt.In != nil || rt.RawIn != nil || len(rt.Query) > 0 || strings.Contains(rt.Path, "{") {
		set["400"] = true
	}
	if rt.In != nil || rt.RawIn != nil {
		set["413"], set["415"] = true, true
	}
	if !rt.Public {
		set["401"], set["403"] = true, true
	}
	if strings.Contains(rt.Path, "{") || rt.In != nil {
		set["404"] = true
	}
	if rt.limit != nil || strings.Contains(rt.Path, "typing") {
		set["429"] = true
	}
	if rt.Method == "POST" && rt.In != nil {
		set["409"] = true
	}
	if len(set) == 0 {
		set["404"] = true // a wrong path or method, as for every route
	}
	var out []string
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var statusText = map[string]string{
	"400": "invalid_argument: a field is missing, malformed or out of range (the message names it)",
	"401": "unauthorized: no valid bearer token (or invalid_credentials on login)",
	"403": "forbidden or blocked: a userId-like field names someone else, or the caller may not do this",
	"404": "not_found: no such object, or one the caller may not see",
	"409": "conflict (or username_taken, email_taken): the request clashes with the current state",
	"413": "too_large: the body is over 1 MiB or a field over its limit",
	"415": "unsupported_media_type: the body is not application/json",
	"429": "rate_limited: retry after Retry-After seconds",
}

// openAPI builds the OpenAPI 3.1 description from the route table; the
// schemas come from the Go types the handlers decode and return.
func (a *API) openAPI() []byte {
	sc := newSchemas()
	paths := map[string]map[string]any{}
	for i := range a.routes {
		rt := &a.routes[i]
		op := map[string]any{
			"summary":     rt.Summary,
			"operationId": strings.ToLower(rt.Method) + strings.NewReplacer("/", "_", "{", "", "}", "", "-", "_").Replace(rt.Path),
			"tags":        []string{tagOf(rt.Path)},
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true,
				"schema": map[string]any{"type": "string"}, "example": sampleString(m[1])})
		}
		for _, q := range rt.Query {
			p := map[string]any{"name": q.Name, "in": "query", "description": q.Desc, "schema": queryParams[q.Name]}
			if q.Name == "q" {
				p["required"] = true
			}
			params = append(params, p)
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.In != nil {
			in := sc.of(reflect.TypeOf(rt.In))
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": in, "example": sc.example(in, "", 0)}}}
		}
		if rt.RawIn != nil {
			op["requestBody"] = map[string]any{"required": true, "description": rt.RawIn.Description,
				"content": map[string]any{rt.RawIn.ContentType: map[string]any{"schema": rawSchema(rt.RawIn)}}}
		}
		if rt.Public {
			op["security"] = []any{}
		}
		status := "200"
		if rt.Status == 201 {
			status = "201"
		}
		env := map[string]any{"type": "object", "required": []string{"success"}, "additionalProperties": false,
			"properties": map[string]any{"success": map[string]any{"const": true}, "message": map[string]any{"type": "string"}}}
		if rt.Out != nil {
			env["properties"].(map[string]any)["data"] = sc.of(reflect.TypeOf(rt.Out))
			env["required"] = []string{"success", "data"}
		} else {
			env["required"] = []string{"success", "message"}
		}
		responses := map[string]any{
			status: map[string]any{"description": "success", "content": map[string]any{"application/json": map[string]any{
				"schema": env, "example": sc.example(env, "", 0)}}},
			"default": map[string]any{"$ref": "#/components/responses/Error"},
		}
		if out := rt.RawOut; out != nil {
			responses[status] = map[string]any{"description": out.Description,
				"content": map[string]any{out.ContentType: map[string]any{"schema": rawSchema(out)}}}
		}
		for _, code := range errorStatuses(rt) {
			responses[code] = map[string]any{"$ref": "#/components/responses/E" + code}
		}
		if rt.unhealthy {
			responses["503"] = unhealthyResponse(sc.of(reflect.TypeOf(rt.Out)))
		}
		op["responses"] = responses
		if paths[rt.Path] == nil {
			paths[rt.Path] = map[string]any{}
		}
		paths[rt.Path][strings.ToLower(rt.Method)] = op
	}
	for _, doc := range []struct{ path, summary string }{
		{"/api/openapi.json", "This OpenAPI 3.1 description of the REST API."},
		{"/api/asyncapi.json", "The AsyncAPI 3.0 description of the real-time events (Socket.IO at /socket.io/ and plain WebSocket at /ws)."},
	} {
		id := "get" + strings.NewReplacer("/", "_", ".", "_").Replace(doc.path)
		paths[doc.path] = map[string]any{"get": map[string]any{"summary": doc.summary, "security": []any{}, "operationId": id, "tags": []string{"docs"},
			"responses": map[string]any{
				"200": map[string]any{"description": "the document", "content": map[string]any{"application/json": map[string]any{
					"schema": map[string]any{"type": "object"}, "example": map[string]any{"info": map[string]any{"title": "Parley API"}}}}},
				"404": map[string]any{"$ref": "#/components/responses/E404"}}}}
	}
	responses := map[string]any{"Error": errorResponse("an error envelope")}
	for code, text := range statusText {
		responses["E"+code] = errorResponse(text)
	}
	tags := map[string]bool{"docs": true}
	for _, rt := range a.routes {
		tags[tagOf(rt.Path)] = true
	}
	var tagList []any
	for _, t := range sortedKeys(tags) {
		tagList = append(tagList, map[string]any{"name": t, "description": "Routes under /api/" + t + "."})
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "Parley API", "version": "1.0.0",
			"license": map[string]any{"name": "Proprietary", "url": "https://parley.invalid/license"},
			"description": "Parley messaging server. Every response is an envelope: {success, data, message?} or {success:false, error:{code, message}}. " +
				"Error codes: invalid_argument 400, unauthorized/invalid_credentials 401, forbidden/blocked 403, not_found 404, conflict/username_taken/email_taken 409, " +
				"too_large 413, unsupported_media_type 415, rate_limited 429 (with Retry-After), unavailable 503, internal 500. " +
				"Identity comes only from the bearer token; optional userId-like body fields and userId, viewerId or senderId query parameters must equal the caller (else 403). " +
				"Objects the caller may not see answer 404. Unknown body fields are refused with 400 naming them; seed 001's spellings " +
				"profile_pic (avatar), group_name (name), participants (members) and user_id (members/memberId) are accepted. " +
				"A deleted message (deletedForEveryone) has content null and the contentHash of the empty string. " +
				"Register, login and password reset are rate-limited per client address. " +
				"Real-time events (Socket.IO v5 at /socket.io/ with its trailing slash, plain WebSocket at /ws) are described by the AsyncAPI document at /api/asyncapi.json."},
		"servers": []any{map[string]any{"url": "{scheme}://{host}", "description": "your Parley server (go run ./cmd/parley listens on port 8080)",
			"variables": map[string]any{
				"scheme": map[string]any{"default": "http", "enum": []string{"http", "https"}},
				"host":   map[string]any{"default": "127.0.0.1:8080", "description": "host and port of the server"}}}},
		"tags":     tagList,
		"paths":    paths,
		"security": []any{map[string]any{"bearer": []any{}}},
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
			"responses":       responses,
			"schemas":         sc.defs,
		},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err) // the document is built from static data; failing here is a programming error
	}
	return b
}

func errorResponse(desc string) map[string]any {
	return map[string]any{"description": desc, "content": map[string]any{"application/json": map[string]any{
		"schema": map[string]any{"type": "object", "required": []string{"success", "error"}, "additionalProperties": false, "properties": map[string]any{
			"success": map[string]any{"const": false},
			"error": map[string]any{"type": "object", "required": []string{"code", "message"}, "additionalProperties": false, "properties": map[string]any{
				"code": map[string]any{"type": "string"}, "message": map[string]any{"type": "string"}}},
		}},
		"example": map[string]any{"success": false, "error": map[string]any{"code": "invalid_argument", "message": "recipientId is required"}}}}}
}

// unhealthyResponse describes the 503 of a route that answers its data
// beside the error (route.unhealthy).
func unhealthyResponse(data map[string]any) map[string]any {
	return map[string]any{"description": "unavailable: the node cannot reach the database; data, when the caller could be served, is the report that shows it",
		"content": map[string]any{"application/json": map[string]any{
			"schema": map[string]any{"type": "object", "required": []string{"success", "error"}, "additionalProperties": false,
				"properties": map[string]any{
					"success": map[string]any{"const": false},
					"data":    data,
					"error": map[string]any{"type": "object", "required": []string{"code", "message"}, "additionalProperties": false,
						"properties": map[string]any{"code": map[string]any{"const": "unavailable"}, "message": map[string]any{"type": "string"}}},
				}}}}}
}

// tagOf groups a route by its first path segment after /api/.
func tagOf(path string) string {
	seg := strings.Split(strings.TrimPrefix(path, "/api/"), "/")[0]
	return seg
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
