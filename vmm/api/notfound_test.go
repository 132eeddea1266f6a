package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// The mux's own answers (unknown path, wrong method, unclean path) were
// plain text or a redirect; found by FuzzHandler.
func TestMuxErrorsAreJSONFaults(t *testing.T) {
	for _, c := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/nope", http.StatusNotFound},
		{"POST", "/vm", http.StatusMethodNotAllowed},
		{"GET", "//vm", http.StatusNotFound},
		{"GET", "/vm/../balloon", http.StatusNotFound},
	} {
		req := httptest.NewRequest(c.method, "http://localhost"+c.path, nil)
		rec := httptest.NewRecorder()
		Handler(&fakeVM{}).ServeHTTP(rec, req)
		if rec.Code != c.code {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, rec.Code, c.code)
		}
		checkReply(t, c.method, c.path, rec)
	}
}
