package apitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Contract holds the OpenAPI and AsyncAPI documents a server serves and
// checks REST responses and real-time events against them: no field the
// documents do not name, no required field missing, every value of the
// documented type. Client and WS check everything they receive with it,
// so every end-to-end test keeps the documents true.
type Contract struct {
	openapi, asyncapi map[string]any
	routes            []docRoute
}

type docRoute struct {
	method string
	path   string
	re     *regexp.Regexp
	params int
	op     map[string]any
}

// quotedParam is a path parameter as regexp.QuoteMeta writes it: \{name\}.
var quotedParam = regexp.MustCompile(`\\\{[A-Za-z]+\\\}`)

// LoadContract fetches /api/openapi.json and /api/asyncapi.json from base.
// Every client and /ws socket of a test loads the contract of its server;
// the documents are fetched each time, but parsed once per distinct pair of
// documents (see parsed).
func LoadContract(hc *http.Client, base string) (*Contract, error) {
	var raw [2][]byte
	for i, path := range []string{"/api/openapi.json", "/api/asyncapi.json"} {
		resp, err := hc.Get(base + path)
		if err != nil {
			return nil, err
		}
		raw[i], err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
		}
	}
	return parsed(raw[0], raw[1])
}

// contracts holds the Contract of each distinct pair of documents seen.
// Parsing them (JSON into maps, a regexp per path) for every client and
// socket was nine tenths of the realtime race suites under -race, which
// dial hundreds of sockets; a Contract is never modified once built, so the
// clients of every server serving the same documents share one.
var contracts = struct {
	sync.Mutex
	byDocs map[[2]string]*Contract
}{byDocs: map[[2]string]*Contract{}}

// parsed returns the Contract of the given OpenAPI and AsyncAPI documents.
func parsed(openapi, asyncapi []byte) (*Contract, error) {
	key := [2]string{string(openapi), string(asyncapi)}
	contracts.Lock()
	defer contracts.Unlock()
	if c := contracts.byDocs[key]; c != nil {
		return c, nil
	}
	c := &Contract{}
	if err := decodeNumbers(openapi, &c.openapi); err != nil {
		return nil, fmt.Errorf("GET /api/openapi.json: %v", err)
	}
	if err := decodeNumbers(asyncapi, &c.asyncapi); err != nil {
		return nil, fmt.Errorf("GET /api/asyncapi.json: %v", err)
	}
	paths, _ := c.openapi["paths"].(map[string]any)
	for p, item := range paths {
		re := regexp.MustCompile("^" + quotedParam.ReplaceAllString(regexp.QuoteMeta(p), `[^/]+`) + "$")
		for m, op := range item.(map[string]any) {
			c.routes = append(c.routes, docRoute{method: strings.ToUpper(m), path: p, re: re, params: strings.Count(p, "{"), op: op.(map[string]any)})
		}
	}
	// Literal segments win over parameters, as in net/http's mux; between
	// two paths with as many parameters that match one URL (the pair
	// API.md §7 fixes), the leftmost literal wins, as the server decides.
	sort.Slice(c.routes, func(i, j int) bool {
		a, b := c.routes[i], c.routes[j]
		if a.params != b.params {
			return a.params < b.params
		}
		sa, sb := strings.Split(a.path, "/"), strings.Split(b.path, "/")
		for k := 0; k < len(sa) && k < len(sb); k++ {
			pa, pb := strings.HasPrefix(sa[k], "{"), strings.HasPrefix(sb[k], "{")
			if pa != pb {
				return pb
			}
		}
		return a.path < b.path
	})
	contracts.byDocs[key] = c
	return c, nil
}

func decodeNumbers(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

// CheckResponse checks a REST response body against the operation of
// method and path (a request path, without the query) for its status.
// Items of /api/sync are checked as the events they carry.
func (c *Contract) CheckResponse(method, path string, status int, body []byte) error {
	var v any
	if err := decodeNumbers(body, &v); err != nil {
		return fmt.Errorf("body is not JSON: %v", err)
	}
	var op map[string]any
	for _, r := range c.routes {
		if r.method == method && r.re.MatchString(path) {
			op = r.op
			break
		}
	}
	if op == nil {
		if status < 400 {
			return fmt.Errorf("status %d from a route the OpenAPI document does not describe", status)
		}
		return c.check(c.openapi, map[string]any{"$ref": "#/components/responses/Error"}, v, status)
	}
	responses, _ := op["responses"].(map[string]any)
	resp, ok := responses[fmt.Sprint(status)]
	if !ok {
		if status < 400 {
			return fmt.Errorf("undocumented success status %d", status)
		}
		if resp, ok = responses["default"]; !ok {
			return fmt.Errorf("undocumented status %d", status)
		}
	}
	if err := c.check(c.openapi, resp, v, status); err != nil {
		return err
	}
	if method == "GET" && path == "/api/sync" && status == 200 {
		var page struct {
			Data struct {
				Items []struct {
					Event string          `json:"event"`
					Data  json.RawMessage `json:"data"`
				} `json:"items"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return err
		}
		for i, it := range page.Data.Items {
			if err := c.CheckEvent(it.Event, it.Data); err != nil {
				return fmt.Errorf("items[%d]: %v", i, err)
			}
		}
	}
	return nil
}

// check validates v against a response object (or a reference to one).
func (c *Contract) check(doc map[string]any, resp any, v any, status int) error {
	r := resolve(doc, resp).(map[string]any)
	content, _ := r["content"].(map[string]any)
	media, _ := content["application/json"].(map[string]any)
	if media == nil {
		return fmt.Errorf("status %d documents no JSON body", status)
	}
	if errs := validate(doc, media["schema"], v, "body"); len(errs) > 0 {
		return fmt.Errorf("status %d: %s", status, strings.Join(errs, "; "))
	}
	return nil
}

// CheckEvent checks the data of a server event against the AsyncAPI
// message of that name.
func (c *Contract) CheckEvent(name string, data []byte) error {
	return c.checkMessage(name, data)
}

// CheckAck checks the data of the acknowledgement of a client event.
// Events the document does not list are answered by an error envelope.
func (c *Contract) CheckAck(event string, data []byte) error {
	if c.message(event+"_ack") == nil {
		var v any
		if err := decodeNumbers(data, &v); err != nil {
			return err
		}
		return c.check(c.openapi, map[string]any{"$ref": "#/components/responses/Error"}, v, 0)
	}
	return c.checkMessage(event+"_ack", data)
}

func (c *Contract) message(name string) map[string]any {
	comps, _ := c.asyncapi["components"].(map[string]any)
	msgs, _ := comps["messages"].(map[string]any)
	m, _ := msgs[name].(map[string]any)
	return m
}

func (c *Contract) checkMessage(name string, data []byte) error {
	m := c.message(name)
	if m == nil {
		return fmt.Errorf("event %s is not in the AsyncAPI document", name)
	}
	var v any
	if err := decodeNumbers(data, &v); err != nil {
		return fmt.Errorf("%s: data is not JSON: %v", name, err)
	}
	if errs := validate(c.asyncapi, m["payload"], v, name); len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// pointerEscapes undoes the escapes of a JSON Pointer's segment (RFC 6901).
var pointerEscapes = strings.NewReplacer("~1", "/", "~0", "~")

// resolve follows a local $ref.
func resolve(doc map[string]any, s any) any {
	for {
		m, ok := s.(map[string]any)
		if !ok {
			return s
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return s
		}
		var cur any = doc
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			part = pointerEscapes.Replace(part)
			cur, _ = cur.(map[string]any)[part]
		}
		s = cur
	}
}

// validate checks v against the JSON Schema subset the documents use
// (type, properties, required, additionalProperties, items, enum, const,
// oneOf, $ref) and returns what does not conform, with JSON paths.
func validate(doc map[string]any, schema any, v any, at string) []string {
	s, _ := resolve(doc, schema).(map[string]any)
	if s == nil {
		return []string{at + ": schema not found"}
	}
	if one, ok := s["oneOf"].([]any); ok {
		var all []string
		matched := 0
		for _, o := range one {
			errs := validate(doc, o, v, at)
			if len(errs) == 0 {
				matched++
			}
			all = append(all, errs...)
		}
		if matched != 1 {
			return []string{fmt.Sprintf("%s: matches %d of oneOf, want 1 (%s)", at, matched, strings.Join(all, "; "))}
		}
		return nil
	}
	if c, ok := s["const"]; ok && fmt.Sprint(c) != fmt.Sprint(v) {
		return []string{fmt.Sprintf("%s: %v, want %v", at, v, c)}
	}
	if e, ok := s["enum"].([]any); ok {
		found := false
		for _, x := range e {
			found = found || fmt.Sprint(x) == fmt.Sprint(v)
		}
		if !found {
			return []string{fmt.Sprintf("%s: %v is not one of %v", at, v, e)}
		}
	}
	if t, ok := s["type"]; ok && !hasType(t, v) {
		return []string{fmt.Sprintf("%s: %s, want type %v", at, kindOf(v), t)}
	}
	var errs []string
	switch x := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		req, _ := s["required"].([]any)
		for _, r := range req {
			if _, ok := x[r.(string)]; !ok {
				errs = append(errs, fmt.Sprintf("%s: required field %s missing", at, r))
			}
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if p, ok := props[k]; ok {
				errs = append(errs, validate(doc, p, x[k], at+"."+k)...)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					errs = append(errs, fmt.Sprintf("%s: undocumented field %s", at, k))
				}
			case map[string]any:
				errs = append(errs, validate(doc, ap, x[k], at+"."+k)...)
			}
		}
	case []any:
		if items, ok := s["items"]; ok {
			for i, it := range x {
				errs = append(errs, validate(doc, items, it, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	return errs
}

func hasType(t any, v any) bool {
	switch tt := t.(type) {
	case string:
		return isType(tt, v)
	case []any:
		for _, x := range tt {
			if s, ok := x.(string); ok && isType(s, v) {
				return true
			}
		}
	}
	return false
}

func isType(t string, v any) bool {
	switch x := v.(type) {
	case nil:
		return t == "null"
	case bool:
		return t == "boolean"
	case string:
		return t == "string"
	case json.Number:
		if t == "number" {
			return true
		}
		f, err := x.Float64()
		return t == "integer" && err == nil && f == math.Trunc(f)
	case []any:
		return t == "array"
	case map[string]any:
		return t == "object"
	}
	return false
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		return "number"
	case []any:
		return "array"
	}
	return "object"
}

// Record is one thing an end-to-end script saw, as e2e/js/lib.mjs writes
// it to the file named by PARLEY_RECORD.
type Record struct {
	Kind   string          `json:"kind"` // rest, event or ack
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Status int             `json:"status"`
	Body   string          `json:"body"`  // rest: the raw response body
	Event  string          `json:"event"` // event and ack: the event's name
	Data   json.RawMessage `json:"data"`  // event and ack: the payload
}

// CheckRecording checks every record of a PARLEY_RECORD file against the
// documents and returns how many it checked and the problems found.
func (c *Contract) CheckRecording(path string) (int, []string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, nil, err
	}
	var problems []string
	n := 0
	for _, line := range bytes.Split(raw, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			return n, problems, fmt.Errorf("record %d: %w", n+1, err)
		}
		n++
		switch r.Kind {
		case "rest":
			err = c.CheckResponse(r.Method, r.Path, r.Status, []byte(r.Body))
		case "event":
			err = c.CheckEvent(r.Event, r.Data)
		case "ack":
			err = c.CheckAck(r.Event, r.Data)
		default:
			err = fmt.Errorf("unknown record kind %q", r.Kind)
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s %s%s %s: %v", r.Kind, r.Method, r.Path, r.Event, err))
		}
	}
	return n, problems, nil
}
