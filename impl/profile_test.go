package impl

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// send makes one request with a token and decodes the JSON answer into out
// (when not nil), returning the status.
func send(t *testing.T, ts *httptest.Server, method, path, token, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

type errorsBody struct {
	Errors []struct{ Reason, Field string }
}

func (e errorsBody) reason() string {
	if len(e.Errors) != 1 {
		return ""
	}
	return e.Errors[0].Reason
}

// TestReadOnlyEventsToken walks the case of the issue: a token made over
// the API with events:read_only lists events but may not act on Linodes,
// and once revoked is refused as Invalid Token.
func TestReadOnlyEventsToken(t *testing.T) {
	ts, store := newTestServer(t)
	ctx := context.Background()
	u, err := store.EnsureUser(ctx, "acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := store.CreateToken(ctx, u, "admin", "*", nil)
	if err != nil {
		t.Fatal(err)
	}

	var tok struct {
		ID            int
		Scopes, Token string
	}
	status := send(t, ts, "POST", "/v4/profile/tokens", admin,
		`{"label": "watcher", "scopes": "events:read_only", "expiry": null}`, &tok)
	if status != 200 || tok.Scopes != "events:read_only" || len(tok.Token) != 64 {
		t.Fatalf("create token: %d %+v", status, tok)
	}

	var page struct{ Results int }
	if status := send(t, ts, "GET", "/v4/account/events", tok.Token, "", &page); status != 200 ||
		page.Results != 1 { // the token_create event
		t.Fatalf("list events with events:read_only: %d, %d results", status, page.Results)
	}
	var e errorsBody
	status = send(t, ts, "POST", "/v4/linode/instances", tok.Token,
		`{"region": "us-east", "type": "g6-nanode-1"}`, &e)
	if status != 401 || e.reason() != "Your OAuth token is not authorized to use this endpoint." {
		t.Fatalf("create a Linode with events:read_only: %d %+v", status, e)
	}
	status = send(t, ts, "POST", "/v4/profile/tokens", tok.Token, `{"label": "x"}`, &e)
	if status != 401 {
		t.Fatalf("create a token with events:read_only: %d %+v", status, e)
	}

	// A token may not grant more than it has.
	var narrow struct{ Token string }
	send(t, ts, "POST", "/v4/profile/tokens", admin,
		`{"label": "ops", "scopes": "account:read_write events:read_only"}`, &narrow)
	status = send(t, ts, "POST", "/v4/profile/tokens", narrow.Token,
		`{"label": "more", "scopes": "linodes:read_only"}`, &e)
	if status != 400 || e.Errors[0].Field != "scopes" ||
		e.reason() != "Scopes may not exceed those of the token making the request." {
		t.Fatalf("widen scopes: %d %+v", status, e)
	}

	path := "/v4/profile/tokens/" + strconv.Itoa(tok.ID)
	if status := send(t, ts, "DELETE", path, admin, "", nil); status != 200 {
		t.Fatalf("revoke: %d", status)
	}
	e = errorsBody{}
	status = send(t, ts, "GET", "/v4/account/events", tok.Token, "", &e)
	if status != 401 || e.reason() != "Invalid Token" {
		t.Fatalf("revoked token: %d %+v", status, e)
	}
}

func TestInvalidTokenHeaders(t *testing.T) {
	ts, _ := newTestServer(t)
	for name, auth := range map[string]string{
		"missing": "", "unknown": "Bearer nope", "not bearer": "Basic YWxpY2U6eA==",
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", ts.URL+"/v4/profile/tokens", nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e errorsBody
			_ = json.NewDecoder(resp.Body).Decode(&e)
			if resp.StatusCode != 401 || e.reason() != "Invalid Token" ||
				resp.Header.Get("X-OAuth-Scopes") != "unknown" ||
				resp.Header.Get("X-Accepted-OAuth-Scopes") != "account:read_only" {
				t.Errorf("%d %+v, headers %v", resp.StatusCode, e, resp.Header)
			}
		})
	}
}
