package bench

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestReadResponse reads answers of net/http's own server, one after the
// other on one connection: with a length, chunked, empty, and closing.
func TestReadResponse(t *testing.T) {
	big := strings.Repeat("x", 70_000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", "5")
			_, _ = w.Write([]byte("hello"))
		case "/chunked":
			_, _ = w.Write([]byte(big)) // too big for net/http to set a length
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/close":
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)

	tests := []struct {
		path   string
		status int
		closed bool
	}{
		{"/length", 200, false}, {"/chunked", 200, false}, {"/empty", 204, false},
		{"/length", 200, false}, {"/close", 404, true},
	}
	for _, tt := range tests {
		req := appendRequest(nil, request{method: "GET", path: tt.path}, addr, "t")
		status, closed, err := roundTrip(conn, br, req)
		if err != nil || status != tt.status || closed != tt.closed {
			t.Errorf("%s: status %d closed %v err %v, want %d %v", tt.path, status, closed, err,
				tt.status, tt.closed)
		}
	}
}
