package conformance

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/linode/linodego"

	"apiv4/db/dbtest"
	"apiv4/gen"
)

const scopeRefusal = "Your OAuth token is not authorized to use this endpoint."

// TestTokens drives /profile/tokens with linodego: a token created with
// events:read_only and linodes:read_only reads events and Linodes but
// acts on none and makes no tokens, shows in the list by the first 16
// characters of its secret, and is refused as Invalid Token once revoked.
func TestTokens(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		ctx := context.Background()
		c, _ := tg.linodego(t, tg.owner)
		expiry := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
		label := "cf-" + runID + randomHex(2)
		tok, err := c.CreateToken(ctx, linodego.TokenCreateOptions{
			Label: label, Scopes: "linodes:read_only,events:read_only", Expiry: &expiry,
		})
		if err != nil {
			t.Fatal(err)
		}
		if tok.Scopes != "events:read_only linodes:read_only" || len(tok.Token) != 64 ||
			tok.Expiry == nil || !tok.Expiry.Equal(expiry) || tok.Label != label {
			t.Fatalf("created token = %+v", tok)
		}

		list, err := c.ListTokens(ctx, nil)
		i := slices.IndexFunc(list, func(x linodego.Token) bool { return x.ID == tok.ID })
		if err != nil || i < 0 || list[i].Token != tok.Token[:16] {
			t.Fatalf("ListTokens: %v; want token %d listed by its first 16 characters", err, tok.ID)
		}
		renamed, err := c.UpdateToken(ctx, tok.ID, linodego.TokenUpdateOptions{Label: label + "-r"})
		if err != nil || renamed.Label != label+"-r" || renamed.Scopes != tok.Scopes {
			t.Fatalf("UpdateToken = %+v, %v", renamed, err)
		}
		if got, err := c.GetToken(ctx, tok.ID); err != nil || got.Label != label+"-r" {
			t.Fatalf("GetToken = %+v, %v", got, err)
		}

		ro, _ := tg.linodego(t, tok.Token)
		if _, err := ro.ListEvents(ctx, &linodego.ListOptions{PageSize: 25}); err != nil {
			t.Errorf("ListEvents with events:read_only: %v", err)
		}
		if _, err := ro.ListInstances(ctx, &linodego.ListOptions{PageSize: 25}); err != nil {
			t.Errorf("ListInstances with linodes:read_only: %v", err)
		}
		_, err = ro.CreateInstance(ctx, linodego.InstanceCreateOptions{Region: "us-east",
			Type: "g6-nanode-1"})
		wantAPIError(t, err, http.StatusUnauthorized, scopeRefusal)
		_, err = ro.CreateToken(ctx, linodego.TokenCreateOptions{Label: "more"})
		wantAPIError(t, err, http.StatusUnauthorized, scopeRefusal)

		if err := c.DeleteToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		_, err = ro.ListEvents(ctx, nil)
		wantAPIError(t, err, http.StatusUnauthorized, "Invalid Token")
		_, err = c.GetToken(ctx, tok.ID)
		wantAPIError(t, err, http.StatusNotFound, "Not found")

		f := filterJSON(t, map[string]any{"entity.type": "token", "entity.id": tok.ID})
		events, err := c.ListEvents(ctx, &linodego.ListOptions{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, e := range events {
			actions = append(actions, string(e.Action))
		}
		want := []string{"token_delete", "token_update", "token_create"}
		if !slices.Equal(actions, want) {
			t.Errorf("token events = %v, want %v", actions, want)
		}
	})
}

// TestTokenLimits checks what a new token may not be: wider than the
// token that makes it, of an unknown scope, or expired already; and that
// a token refuses requests from the moment it expires.
func TestTokenLimits(t *testing.T) {
	forEachTarget(t, func(t *testing.T, tg *target) {
		a := tg.api(t, tg.owner)
		var narrow gen.Token
		a.must(http.StatusOK, "POST", "/profile/tokens",
			map[string]any{"label": "narrow", "scopes": "account:read_write events:read_only"}).
			decode(t, &narrow)
		n := a.as(narrow.Token)
		n.do("POST", "/profile/tokens", map[string]any{"label": "x", "scopes": "linodes:read_only"}).
			wantError(t, http.StatusBadRequest,
				"Scopes may not exceed those of the token making the request.", "scopes")
		n.do("POST", "/profile/tokens", map[string]any{"label": "x", "scopes": "*"}).
			wantError(t, http.StatusBadRequest,
				"Scopes may not exceed those of the token making the request.", "scopes")
		var same gen.Token
		n.must(http.StatusOK, "POST", "/profile/tokens", map[string]any{"label": "same"}).
			decode(t, &same)
		if same.Scopes != "account:read_write events:read_only" {
			t.Errorf("a token made without scopes has %q, want its maker's", same.Scopes)
		}
		a.do("POST", "/profile/tokens", map[string]any{"label": "x", "scopes": "events:write"}).
			wantError(t, http.StatusBadRequest,
				`unknown scope "events:write": the levels are read_only and read_write`, "scopes")
		a.do("POST", "/profile/tokens", map[string]any{"label": "x",
			"expiry": time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04:05")}).
			wantError(t, http.StatusBadRequest, "expiry must be in the future", "expiry")

		// A token that expires in two seconds works now and is refused
		// once they have passed.
		var brief gen.Token
		expiry := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339)
		a.must(http.StatusOK, "POST", "/profile/tokens",
			map[string]any{"label": "brief", "expiry": expiry}).decode(t, &brief)
		b := a.as(brief.Token)
		eventually(t, "the brief token to expire", func() (bool, string) {
			r := b.do("GET", "/account/events?page_size=25", nil)
			return r.Status == http.StatusUnauthorized, fmt.Sprint("status ", r.Status)
		})
		b.do("GET", "/account/events", nil).wantError(t, http.StatusUnauthorized, "Invalid Token", "")
	})
}

// TestRevocationAcrossProcesses revokes tokens through one server process
// and has another process on the same database refuse them at once: on
// the events list and on a Linode's settings update, the two routes that
// take a token's fixed facts from the process's memory.
func TestRevocationAcrossProcesses(t *testing.T) {
	if !local() {
		t.Skip("needs two server processes of its own")
	}
	databaseURL := migrated(t, dbtest.PostgresURL(t))
	token, err := createToken(databaseURL, "alice", "acme", "*")
	if err != nil {
		t.Fatal(err)
	}
	apis, _ := startProcesses(t, databaseURL, token, 2)
	var tok gen.Token
	apis[0].must(http.StatusOK, "POST", "/profile/tokens",
		map[string]any{"label": "shared", "scopes": "events:read_only"}).decode(t, &tok)
	apis[1].as(tok.Token).must(http.StatusOK, "GET", "/account/events", nil)
	var writer gen.Token
	apis[0].must(http.StatusOK, "POST", "/profile/tokens",
		map[string]any{"label": "writer", "scopes": "linodes:read_write"}).decode(t, &writer)
	var l gen.Linode
	apis[0].must(http.StatusOK, "POST", "/linode/instances",
		map[string]any{"region": "us-east", "type": "g6-nanode-1", "label": "kept"}).decode(t, &l)
	rename := map[string]any{"label": "renamed"}
	apis[1].as(writer.Token).must(http.StatusOK, "PUT", fmt.Sprint("/linode/instances/", l.Id), rename)

	for _, id := range []int{tok.Id, writer.Id} {
		apis[0].must(http.StatusOK, "DELETE", fmt.Sprint("/profile/tokens/", id), nil)
	}
	for _, path := range []string{"/account/events", "/account/events?page=0"} {
		apis[1].as(tok.Token).do("GET", path, nil).wantError(t, http.StatusUnauthorized, "Invalid Token", "")
	}
	// A scope it lacks is no business of a revoked token either.
	apis[1].as(tok.Token).do("PUT", fmt.Sprint("/linode/instances/", l.Id), rename).
		wantError(t, http.StatusUnauthorized, "Invalid Token", "")
	// Whether the Linode exists, or the body is valid, is no business of a revoked token.
	for _, id := range []int{l.Id, l.Id + 1000} {
		for _, label := range []string{"other", "x"} {
			apis[1].as(writer.Token).do("PUT", fmt.Sprint("/linode/instances/", id), map[string]any{"label": label}).
				wantError(t, http.StatusUnauthorized, "Invalid Token", "")
		}
	}
	var got gen.Linode
	apis[0].must(http.StatusOK, "GET", fmt.Sprint("/linode/instances/", l.Id), nil).decode(t, &got)
	if got.Label != "renamed" {
		t.Errorf("label after the refused update = %q, want renamed", got.Label)
	}
}
