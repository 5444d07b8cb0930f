package httpapi

import (
	"encoding/json"
	"reflect"

	"github.com/parley-chat/parley/service"
)

// asyncAPI builds the AsyncAPI 3.0 description of the real-time events
// from service.Events: the payload schemas come from the Go types the
// service encodes (server events) and decodes (client events).
func asyncAPI() []byte {
	sc := newSchemas()
	messages := map[string]any{}
	chanMessages := map[string]any{}
	operations := map[string]any{}
	ref := func(name string) map[string]any { return map[string]any{"$ref": "#/channels/user/messages/" + name} }
	channel := map[string]any{"$ref": "#/channels/user"}
	for _, ev := range service.Events() {
		payload := sc.of(reflect.TypeOf(ev.Payload))
		key := ev.Name
		if _, taken := messages[key]; taken && ev.Client {
			// An event that goes both ways with different payloads
			// (call_signal): the client's is described under its own key.
			key = ev.Name + "_send"
		}
		messages[key] = map[string]any{"name": ev.Name, "title": ev.Name, "summary": ev.Summary, "payload": payload,
			"examples": []any{map[string]any{"name": ev.Name, "payload": sc.example(payload, "", 0)}}}
		chanMessages[key] = map[string]any{"$ref": "#/components/messages/" + key}
		if !ev.Client {
			operations["receive_"+ev.Name] = map[string]any{"action": "receive", "channel": channel, "summary": ev.Summary,
				"messages": []any{ref(key)}}
			continue
		}
		env := map[string]any{"type": "object", "required": []string{"success"}, "additionalProperties": false,
			"properties": map[string]any{"success": map[string]any{"const": true}, "message": map[string]any{"type": "string"}}}
		if ev.Ack != nil {
			env["properties"].(map[string]any)["data"] = sc.of(reflect.TypeOf(ev.Ack))
		}
		ackErr := errorResponse("")["content"].(map[string]any)["application/json"].(map[string]any)["schema"]
		ack := map[string]any{"oneOf": []any{env, ackErr}}
		messages[ev.Name+"_ack"] = map[string]any{"name": ev.Name + "_ack", "title": ev.Name + " acknowledgement",
			"summary": "The acknowledgement of " + ev.Name + ": the REST envelope ({\"ack\": id, \"data\": envelope} on /ws).", "payload": ack,
			"examples": []any{map[string]any{"name": ev.Name + "_ack", "payload": sc.example(env, "", 0)}}}
		chanMessages[ev.Name+"_ack"] = map[string]any{"$ref": "#/components/messages/" + ev.Name + "_ack"}
		operations["send_"+ev.Name] = map[string]any{"action": "send", "channel": channel, "summary": ev.Summary,
			"messages": []any{ref(key)},
			"reply":    map[string]any{"channel": channel, "messages": []any{ref(ev.Name + "_ack")}}}
	}
	// The transport's own event: its answer to a frame it cannot read.
	errEnv := errorResponse("")["content"].(map[string]any)["application/json"].(map[string]any)
	messages["error"] = map[string]any{"name": "error", "title": "error", "payload": errEnv["schema"],
		"summary":  "On /ws, the answer to a frame that is not a JSON text frame with an event name: an error envelope.",
		"examples": []any{map[string]any{"name": "error", "payload": errEnv["example"]}}}
	chanMessages["error"] = map[string]any{"$ref": "#/components/messages/error"}
	operations["receive_error"] = map[string]any{"action": "receive", "channel": channel, "summary": messages["error"].(map[string]any)["summary"],
		"messages": []any{ref("error")}}
	security := []any{map[string]any{"$ref": "#/components/securitySchemes/token"}}
	doc := map[string]any{
		"asyncapi": "3.0.0",
		"info": map[string]any{"title": "Parley real-time events", "version": "1.0.0",
			"description": "Events between a Parley server and an authenticated client. The same events travel over Socket.IO v5 " +
				"(socket.io-client 4.x with default options; path /socket.io/ with its trailing slash; token in auth: {token} or ?token=) " +
				"and over the plain WebSocket at /ws?token= (JSON text frames {\"event\", \"data\", \"id\"?}; a frame with an id is answered by " +
				"{\"ack\": id, \"data\": envelope}). A socket's events are handled in the order sent; sends (send_message, send_group_message, " +
				"send_channel_message) may be pipelined, up to 32 per socket, and are numbered (seq) in the order sent, but their acks may " +
				"follow the answers to later events: match acks by id. Extra fields may be added to payloads in later versions; documented ones stay."},
		"defaultContentType": "application/json",
		"servers": map[string]any{
			"socketio": map[string]any{"host": "127.0.0.1:8080", "protocol": "ws", "pathname": "/socket.io/", "security": security,
				"description": "Socket.IO v5 over Engine.IO v4 (long-polling and WebSocket). Keep the trailing slash (the client default): /socket.io without it answers a 307 redirect to /socket.io/."},
			"ws": map[string]any{"host": "127.0.0.1:8080", "protocol": "ws", "pathname": "/ws", "security": security,
				"description": "Plain WebSocket with JSON text frames. Instead of ?token=, a browser passes ?ticket= with a single-use ticket from POST /api/auth/ws-ticket (valid 30 seconds), so its token never appears in a URL."},
		},
		"channels": map[string]any{"user": map[string]any{"address": "user", "title": "The user's sockets",
			"description": "Every socket of the authenticated user, on any node, receives the events addressed to that user.",
			"messages":    chanMessages}},
		"operations": operations,
		"components": map[string]any{
			"messages": messages,
			"schemas":  sc.defs,
			"securitySchemes": map[string]any{"token": map[string]any{"type": "httpApiKey", "name": "token", "in": "query",
				"description": "The bearer token from login or register; Socket.IO clients may pass it as auth: {token} instead."}},
		},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err) // the document is built from static data; failing here is a programming error
	}
	return b
}
