package mmds

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// roundTrip parses raw as the guest's request and returns the service's
// answer as net/http reads it.
func roundTrip(t *testing.T, s *service, raw string) (*http.Response, string) {
	t.Helper()
	req, n, err := parseRequest([]byte(raw))
	var out []byte
	switch {
	case err == nil:
		if n != len(raw) {
			t.Fatalf("parsed %d of %d bytes", n, len(raw))
		}
		out = s.serve(req).bytes(req.minor)
	default:
		var b *badRequest
		if !errors.As(err, &b) {
			t.Fatalf("parse %q: %v", raw, err)
		}
		out = text(b.status, b.msg).bytes(1)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), nil)
	if err != nil {
		t.Fatalf("the answer is not HTTP: %v\n%s", err, out)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	return resp, body.String()
}

func testService(t *testing.T, version int, now func() time.Time) *service {
	t.Helper()
	st := NewStore(0)
	if err := st.Put([]byte(`{"latest":{"meta-data":{"id":"i-123","obj":{"k":"v"}}},"n":1}`)); err != nil {
		t.Fatal(err)
	}
	svc, err := newService(Config{Version: version, Interfaces: []string{"eth0"}}, st, now)
	if err != nil {
		t.Fatal(err)
	}
	return &svc.svc
}

func TestHTTPVersion1(t *testing.T) {
	s := testService(t, 1, time.Now)
	for _, tc := range []struct {
		raw, body, ctype string
		status           int
	}{
		{"GET /latest/meta-data/id HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n", "i-123", "text/plain", 200},
		{"GET http://169.254.169.254/latest/meta-data HTTP/1.0\r\n\r\n", "id\nobj/", "text/plain", 200},
		{"GET /latest/meta-data/obj HTTP/1.1\r\nAccept: application/json\r\n\r\n", `{"k":"v"}`, "application/json", 200},
		{"GET /latest/meta-data/id?x=1 HTTP/1.1\r\n\r\n", "i-123", "text/plain", 200},
		{"GET /nope HTTP/1.1\r\n\r\n", "Resource not found: /nope.", "text/plain", 404},
		{"GET /n HTTP/1.1\r\n\r\n", "Cannot retrieve value. The value has an unsupported type.", "text/plain", 501},
		{"GET http://169.254.169.254 HTTP/1.1\r\n\r\n", "Invalid URI.", "text/plain", 400},
		{"PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n", "Not allowed HTTP method.", "text/plain", 405},
		{"DELETE / HTTP/1.1\r\n\r\n", "Not allowed HTTP method.", "text/plain", 405},
		{"GET / HTTP/2.0\r\n\r\n", "", "text/plain", 505},
		{"GET /a b HTTP/1.1\r\n\r\n", "", "text/plain", 400},
		{"GET relative HTTP/1.1\r\n\r\n", "", "text/plain", 400},
		{"GET / HTTP/1.1\r\nno colon here\r\n\r\n", "", "text/plain", 400},
		{"GET / HTTP/1.1\r\nContent-Length: 99999\r\n\r\n", "", "text/plain", 413},
		{"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "", "text/plain", 501},
	} {
		resp, body := roundTrip(t, s, tc.raw)
		if resp.StatusCode != tc.status || (tc.body != "" && body != tc.body) || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) {
			t.Errorf("%q: %d %q (%s), want %d %q (%s)", tc.raw, resp.StatusCode, body, resp.Header.Get("Content-Type"), tc.status, tc.body, tc.ctype)
		}
		if resp.StatusCode == 405 && resp.Header.Get("Allow") != "GET" {
			t.Errorf("%q: Allow %q, want GET", tc.raw, resp.Header.Get("Allow"))
		}
	}
}

func TestHTTPVersion2Tokens(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := testService(t, 2, func() time.Time { return now })

	resp, body := roundTrip(t, s, "GET /latest/meta-data/id HTTP/1.1\r\n\r\n")
	if resp.StatusCode != 401 {
		t.Fatalf("GET without a token: %d %q, want 401", resp.StatusCode, body)
	}
	resp, tok := roundTrip(t, s, "PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n")
	if resp.StatusCode != 200 || tok == "" {
		t.Fatalf("token: %d %q", resp.StatusCode, tok)
	}
	get := "GET /latest/meta-data/id HTTP/1.1\r\nX-metadata-token: " + tok + "\r\n\r\n"
	if resp, body := roundTrip(t, s, get); resp.StatusCode != 200 || body != "i-123" {
		t.Fatalf("GET with the token: %d %q", resp.StatusCode, body)
	}
	// EC2's header names work too, in any case.
	if resp, body := roundTrip(t, s, "GET /latest/meta-data/id HTTP/1.1\r\nx-AWS-ec2-metadata-TOKEN: "+tok+"\r\n\r\n"); resp.StatusCode != 200 || body != "i-123" {
		t.Fatalf("GET with X-aws-ec2-metadata-token: %d %q", resp.StatusCode, body)
	}
	for name, bad := range map[string]string{
		"changed":  tok[:len(tok)-2] + "AA",
		"garbage":  "not-a-token",
		"too long": strings.Repeat("A", 200),
		"empty":    "",
	} {
		if resp, _ := roundTrip(t, s, "GET / HTTP/1.1\r\nX-metadata-token: "+bad+"\r\n\r\n"); resp.StatusCode != 401 {
			t.Errorf("%s token: %d, want 401", name, resp.StatusCode)
		}
	}
	now = now.Add(61 * time.Second)
	if resp, _ := roundTrip(t, s, get); resp.StatusCode != 401 {
		t.Errorf("GET with an expired token: %d, want 401", resp.StatusCode)
	}
	for _, tc := range []struct {
		raw    string
		status int
	}{
		{"PUT /latest/api/token HTTP/1.1\r\n\r\n", 400},
		{"PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 0\r\n\r\n", 400},
		{"PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 21601\r\n\r\n", 400},
		{"PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: ten\r\n\r\n", 400},
		{"PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 21600\r\n\r\n", 200},
		{"PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 1\r\n\r\n", 200},
		{"PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 5\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n", 400},
		{"PUT /other HTTP/1.1\r\nX-metadata-token-ttl-seconds: 5\r\n\r\n", 404},
		{"PATCH / HTTP/1.1\r\n\r\n", 405},
	} {
		if resp, body := roundTrip(t, s, tc.raw); resp.StatusCode != tc.status {
			t.Errorf("%q: %d %q, want %d", tc.raw, resp.StatusCode, body, tc.status)
		} else if tc.status == 405 && resp.Header.Get("Allow") != "GET, PUT" {
			t.Errorf("Allow %q", resp.Header.Get("Allow"))
		}
	}
}

func TestHTTPIMDSCompat(t *testing.T) {
	st := NewStore(0)
	st.Put([]byte(`{"a":{"b":"c"}}`))
	svc, err := newService(Config{IMDSCompat: true, Interfaces: []string{"x"}}, st, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := roundTrip(t, &svc.svc, "GET /a HTTP/1.1\r\nAccept: application/json\r\n\r\n")
	if resp.StatusCode != 200 || body != "b" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("IMDS-compatible GET asking for JSON: %d %q %s, want the key list as text", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
}

func TestParseRequestIncomplete(t *testing.T) {
	full := "GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
	for i := 0; i < len(full); i++ {
		if _, _, err := parseRequest([]byte(full[:i])); err != errIncomplete {
			t.Fatalf("%d bytes of a request: %v, want errIncomplete", i, err)
		}
	}
	if _, n, err := parseRequest([]byte(full + "GET")); err != nil || n != len(full) {
		t.Fatalf("full request: n=%d err=%v", n, err)
	}
	if _, _, err := parseRequest(bytes.Repeat([]byte("A"), maxRequestHead+1)); err == nil || err == errIncomplete {
		t.Fatalf("an endless head: %v, want a refusal", err)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Interfaces: []string{"net0"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if got := ok.WithDefaults(); got.Version != 1 || got.IPv4.String() != "169.254.169.254" {
		t.Errorf("defaults: %+v", got)
	}
	for name, c := range map[string]Config{
		"version 3":      {Version: 3, Interfaces: []string{"a"}},
		"no interface":   {},
		"twice":          {Interfaces: []string{"a", "a"}},
		"empty id":       {Interfaces: []string{""}},
		"not link-local": {IPv4: mustAddr("10.0.0.1"), Interfaces: []string{"a"}},
		"range start":    {IPv4: mustAddr("169.254.0.0"), Interfaces: []string{"a"}},
		"broadcast":      {IPv4: mustAddr("169.254.255.255"), Interfaces: []string{"a"}},
		"IPv6":           {IPv4: mustAddr("fe80::1"), Interfaces: []string{"a"}},
	} {
		if err := c.Validate(); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: %v, want ErrBadConfig", name, err)
		}
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
