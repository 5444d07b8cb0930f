package httpapi

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"

	"github.com/parley-chat/parley"
)

var pathParam = regexp.MustCompile(`\{([A-Za-z]+)\}`)

// openAPI builds the OpenAPI 3.1 description from the route table; the
// schemas come from the Go types the handlers decode and return.
func (a *API) openAPI() []byte {
	paths := map[string]map[string]any{}
	for _, rt := range a.routes {
		op := map[string]any{
			"summary":     rt.Summary,
			"operationId": strings.ToLower(rt.Method) + strings.NewReplacer("/", "_", "{", "", "}", "", "-", "_").Replace(rt.Path),
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range rt.Query {
			params = append(params, map[string]any{"name": q.Name, "in": "query", "description": q.Desc, "schema": map[string]any{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.In != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(rt.In))}}}
		}
		if rt.Public {
			op["security"] = []any{}
		}
		status := "200"
		if rt.Status == 201 {
			status = "201"
		}
		data := map[string]any{}
		if rt.Out != nil {
			data = schemaOf(reflect.TypeOf(rt.Out))
		}
		op["responses"] = map[string]any{
			status: map[string]any{"description": "success", "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{
				"type": "object", "required": []string{"success"},
				"properties": map[string]any{"success": map[string]any{"const": true}, "data": data, "message": map[string]any{"type": "string"}},
			}}}},
			"default": map[string]any{"$ref": "#/components/responses/Error"},
		}
		if paths[rt.Path] == nil {
			paths[rt.Path] = map[string]any{}
		}
		paths[rt.Path][strings.ToLower(rt.Method)] = op
	}
	paths["/api/openapi.json"] = map[string]any{"get": map[string]any{"summary": "This OpenAPI description.", "security": []any{},
		"operationId": "get_api_openapi", "responses": map[string]any{"200": map[string]any{"description": "the OpenAPI 3.1 document"}}}}
	paths["/ws"] = map[string]any{"get": map[string]any{"operationId": "get_ws", "security": []any{},
		"summary": "Plain WebSocket. Token in ?token= or the Authorization header (401 before the upgrade otherwise). " +
			`Frames both ways are JSON text {"event": "...", "data": {...}, "id"?: n}; a client frame with an id is answered by ` +
			`{"ack": n, "data": <envelope>}. Client events: send_message, send_group_message, typing (recipientId or groupId), message_status. ` +
			"Server events: new_message, new_group_message, typing_indicator, message_status_update, group_message_status_update, " +
			"message_reaction, group_message_reaction, message_edited, message_deleted, group_message_deleted, group_member_added, " +
			"group_member_removed, group_updated, group_deleted, presence_update, profile_updated, key_changed.",
		"parameters": []any{map[string]any{"name": "token", "in": "query", "required": false, "schema": map[string]any{"type": "string"}}},
		"responses": map[string]any{"101": map[string]any{"description": "switched to WebSocket"}, "401": map[string]any{"description": "bad token"},
			"403": map[string]any{"description": "origin not allowed"}}}}
	paths["/socket.io/"] = map[string]any{"get": map[string]any{"operationId": "get_socketio", "security": []any{},
		"summary": "Socket.IO v5 over Engine.IO v4 (long-polling and WebSocket, upgrade, acks, binary) for socket.io-client 4.x. " +
			"Pass the token as auth: {token} (or ?token=, or Authorization); a bad token gets CONNECT_ERROR \"unauthorized\". " +
			"Events and acks as for /ws; acks carry the REST envelope.",
		"responses": map[string]any{"200": map[string]any{"description": "Engine.IO handshake or polling payload"}}}}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "Parley API", "version": "1.0.0",
			"description": "Parley messaging server. Every response is an envelope: {success, data, message?} or {success:false, error:{code, message}}. " +
				"Error codes: invalid_argument 400, unauthorized/invalid_credentials 401, forbidden/blocked 403, not_found 404, conflict/username_taken 409, " +
				"too_large 413, unsupported_media_type 415, rate_limited 429 (with Retry-After), unavailable 503, internal 500. " +
				"Identity comes only from the bearer token; optional userId-like body fields and userId, viewerId or senderId query parameters must equal the caller (else 403). " +
				"Objects the caller may not see answer 404. Register, login and password reset are rate-limited per client address. " +
				"Real-time: Socket.IO v4 at /socket.io/ and plain WebSocket at /ws?token=."},
		"paths":    paths,
		"security": []any{map[string]any{"bearer": []any{}}},
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
			"responses": map[string]any{"Error": map[string]any{"description": "an error envelope", "content": map[string]any{"application/json": map[string]any{
				"schema": map[string]any{"type": "object", "properties": map[string]any{
					"success": map[string]any{"const": false},
					"error": map[string]any{"type": "object", "required": []string{"code", "message"}, "properties": map[string]any{
						"code": map[string]any{"type": "string"}, "message": map[string]any{"type": "string"}}},
				}}}}}},
		},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err) // the document is built from static data; failing here is a programming error
	}
	return b
}

var timeType = reflect.TypeOf(parley.Time{})

// schemaOf returns the JSON Schema of a Go type as encoding/json sees it.
func schemaOf(t reflect.Type) map[string]any {
	if t == timeType {
		return map[string]any{"type": []string{"string", "null"}, "format": "date-time"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaOf(t.Elem())
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.Struct:
		props := map[string]any{}
		addFields(t, props)
		return map[string]any{"type": "object", "properties": props}
	}
	return map[string]any{}
}

func addFields(t reflect.Type, props map[string]any) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name := strings.Split(tag, ",")[0]
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			addFields(ft, props)
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = schemaOf(f.Type)
	}
}
