package mmds

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Bounds of what the guest may send in one request.
const (
	maxRequestHead = 8192 // request line and headers
	maxRequestBody = 4096 // ignored, but read
	maxHeaders     = 64
)

// request is one parsed HTTP/1.x request, reduced to what the service
// looks at.
type request struct {
	method   string
	path     string // absolute path, without query; "" if the target had none
	minor    int    // HTTP/1.minor
	json     bool   // Accept names application/json
	token    string
	hasToken bool
	ttl      string
	hasTTL   bool
	xff      bool // X-Forwarded-For present
}

// errIncomplete means the bytes so far are the start of a request.
var errIncomplete = errors.New("incomplete request")

// badRequest is a request that cannot be parsed; the connection answers
// status and closes.
type badRequest struct {
	status int
	msg    string
}

func (e *badRequest) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.msg) }

func bad(status int, format string, a ...any) error {
	return &badRequest{status: status, msg: fmt.Sprintf(format, a...)}
}

// parseRequest parses the request at the start of b and returns it with
// the bytes it took. errIncomplete asks for more bytes; a *badRequest is
// a request to refuse.
func parseRequest(b []byte) (request, int, error) {
	var req request
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) > maxRequestHead {
			return req, 0, bad(431, "request head longer than %d bytes", maxRequestHead)
		}
		return req, 0, errIncomplete
	}
	if end > maxRequestHead {
		return req, 0, bad(431, "request head longer than %d bytes", maxRequestHead)
	}
	lines := strings.Split(string(b[:end]), "\r\n")
	if err := req.parseRequestLine(lines[0]); err != nil {
		return req, 0, err
	}
	if len(lines)-1 > maxHeaders {
		return req, 0, bad(431, "more than %d headers", maxHeaders)
	}
	bodyLen := 0
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok || name == "" || !isToken(name) {
			return req, 0, bad(400, "malformed header line")
		}
		value = strings.Trim(value, " \t")
		switch strings.ToLower(name) {
		case "accept":
			req.json = acceptsJSON(value)
		case "content-length":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 {
				return req, 0, bad(400, "invalid Content-Length")
			}
			if n > maxRequestBody {
				return req, 0, bad(413, "body longer than %d bytes", maxRequestBody)
			}
			bodyLen = n
		case "transfer-encoding":
			return req, 0, bad(501, "Transfer-Encoding is not supported")
		case "x-metadata-token", "x-aws-ec2-metadata-token":
			req.token, req.hasToken = value, true
		case "x-metadata-token-ttl-seconds", "x-aws-ec2-metadata-token-ttl-seconds":
			req.ttl, req.hasTTL = value, true
		case "x-forwarded-for":
			req.xff = true
		}
	}
	n := end + 4 + bodyLen
	if len(b) < n {
		return req, 0, errIncomplete
	}
	return req, n, nil
}

func (req *request) parseRequestLine(l string) error {
	parts := strings.Split(l, " ")
	if len(parts) != 3 || parts[0] == "" || !isToken(parts[0]) {
		return bad(400, "malformed request line")
	}
	switch parts[2] {
	case "HTTP/1.0":
		req.minor = 0
	case "HTTP/1.1":
		req.minor = 1
	default:
		return bad(505, "HTTP version not supported")
	}
	req.method = parts[0]
	target := parts[1]
	if rest, ok := strings.CutPrefix(target, "http://"); ok {
		// An absolute URI, as proxies get: the path follows the host.
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			target = rest[i:]
		} else {
			target = ""
		}
	} else if !strings.HasPrefix(target, "/") {
		return bad(400, "request target must be a path or an http:// URI")
	}
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	req.path = target
	return nil
}

// isToken reports whether s is an RFC 9110 token (method, header name).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// acceptsJSON reports whether an Accept value names application/json.
func acceptsJSON(v string) bool {
	for _, r := range strings.Split(v, ",") {
		mt, _, _ := strings.Cut(r, ";")
		if strings.EqualFold(strings.TrimSpace(mt), "application/json") {
			return true
		}
	}
	return false
}

// response is what the service answers.
type response struct {
	status int
	ctype  string
	body   []byte
	allow  string
}

// bytes renders the response for an HTTP/1.minor client; the connection
// closes after it.
func (r response) bytes(minor int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.%d %d %s\r\n", minor, r.status, statusText(r.status))
	ctype := r.ctype
	if ctype == "" {
		ctype = "text/plain"
	}
	fmt.Fprintf(&b, "Content-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n", ctype, len(r.body))
	if r.allow != "" {
		fmt.Fprintf(&b, "Allow: %s\r\n", r.allow)
	}
	b.WriteString("\r\n")
	b.Write(r.body)
	return b.Bytes()
}

func statusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 413:
		return "Payload Too Large"
	case 431:
		return "Request Header Fields Too Large"
	case 501:
		return "Not Implemented"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Error"
}

// service answers requests from one store with one configuration.
type service struct {
	store *Store
	cfg   Config
	tok   *tokens
}

func text(status int, msg string) response {
	return response{status: status, body: []byte(msg)}
}

// serve answers req as Firecracker's MMDS does.
func (s *service) serve(req request) response {
	if req.path == "" {
		return text(400, "Invalid URI.")
	}
	switch req.method {
	case "GET":
		if s.cfg.Version == 2 {
			if !req.hasToken {
				return text(401, "No MMDS token provided. Use `X-metadata-token` header to specify the session token.")
			}
			if err := s.tok.check(req.token); err != nil {
				return text(401, "MMDS token not valid.")
			}
		}
		return s.get(req)
	case "PUT":
		if s.cfg.Version == 2 {
			return s.putToken(req)
		}
	}
	allow := "GET"
	if s.cfg.Version == 2 {
		allow = "GET, PUT"
	}
	return response{status: 405, body: []byte("Not allowed HTTP method."), allow: allow}
}

func (s *service) get(req request) response {
	asJSON := req.json && !s.cfg.IMDSCompat
	v, err := s.store.Value(req.path, !asJSON)
	switch {
	case errors.Is(err, ErrNotFound):
		return text(404, fmt.Sprintf("Resource not found: %s.", req.path))
	case errors.Is(err, ErrUnsupportedType):
		return text(501, "Cannot retrieve value. The value has an unsupported type.")
	case err != nil:
		return text(400, err.Error())
	}
	r := response{status: 200, body: v}
	if asJSON {
		r.ctype = "application/json"
	}
	return r
}

func (s *service) putToken(req request) response {
	if req.xff {
		return text(400, "Invalid header. Reason: Unsupported header name. Key: X-Forwarded-For")
	}
	if cleanPath(req.path) != tokenPath {
		return text(404, fmt.Sprintf("Resource not found: %s.", req.path))
	}
	if !req.hasTTL {
		return text(400, "Token time to live value not found. Use `X-metadata-token-ttl-seconds` header to specify the token's lifetime.")
	}
	ttl, err := strconv.ParseInt(req.ttl, 10, 64)
	if err != nil {
		return text(400, fmt.Sprintf("Invalid time to live value provided for token: %q.", req.ttl))
	}
	t, err := s.tok.issue(ttl)
	if err != nil {
		return text(400, fmt.Sprintf("Invalid time to live value provided for token: %d. Please provide a value between %d and %d.", ttl, MinTokenTTL, MaxTokenTTL))
	}
	return response{status: 200, body: []byte(t)}
}
