package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// checkReply holds a response to the API's promise: success, or a 4xx
// with a JSON {"fault_message": ...} body.
func checkReply(t *testing.T, method, path string, rec *httptest.ResponseRecorder) {
	t.Helper()
	code := rec.Code
	switch {
	case code >= 200 && code < 300:
		if body := rec.Body.Bytes(); len(body) > 0 && !json.Valid(body) {
			t.Fatalf("%s %q: %d with a body that is not JSON: %q", method, path, code, body)
		}
	case code >= 400 && code < 500:
		var f struct {
			Fault *string `json:"fault_message"`
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %q: %d with Content-Type %q: %q", method, path, code, ct, rec.Body.String())
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &f); err != nil || f.Fault == nil || *f.Fault == "" {
			t.Fatalf("%s %q: %d with body %q, not a fault", method, path, code, rec.Body.String())
		}
	default:
		t.Fatalf("%s %q: status %d, body %q", method, path, code, rec.Body.String())
	}
}

// FuzzHandler sends arbitrary methods, paths and bodies to the API with
// a fake VM behind it.
func FuzzHandler(f *testing.F) {
	for _, s := range [][3]string{
		{"PATCH", "/balloon", `{"amount_mib": 64}`}, {"PATCH", "/balloon", `{"amount_mib": -1}`},
		{"PATCH", "/balloon", `{"amount_mib": 1, "x": 2}`}, {"GET", "/balloon", ""}, {"GET", "/balloon/statistics", ""},
		{"GET", "/vm", ""}, {"PATCH", "/vm", `{"state": "Paused"}`}, {"PATCH", "/vm", `{"state": "Resumed"}{}`},
		{"PUT", "/snapshot/create", `{"dir": "/tmp/s", "snapshot_type": "Diff"}`}, {"PUT", "/snapshot/create", `{"dir": ""}`},
		{"PUT", "/migration/send", `{"to": "tcp:nowhere:1"}`}, {"PUT", "/migration/send", `{"to": "unix:/m"}`},
		{"PUT", "/migration/cancel", ""}, {"GET", "/migration?watch=1", ""}, {"POST", "/vm", "{}"},
		{"GET", "/nope", ""}, {"GET", "//vm", ""}, {"GET", "/vm/../balloon", ""}, {"PATCH", "/balloon", strings.Repeat(" ", 5000) + "{}"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, method, path, body string) {
		req, err := http.NewRequest(method, "http://localhost"+path, strings.NewReader(body))
		if err != nil {
			return // no client could send it
		}
		vm := &fakeVM{has: true, refuseN: 1 << 20, stats: map[string]uint64{"free-memory": 1}}
		rec := httptest.NewRecorder()
		Handler(vm).ServeHTTP(rec, req)
		checkReply(t, method, path, rec)
	})
}
