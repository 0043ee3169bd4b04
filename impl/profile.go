package impl

import (
	"context"
	"time"

	"github.com/oapi-codegen/nullable"

	"apiv4/db"
	"apiv4/gen"
)

// ListTokens returns a page of the caller's live tokens, oldest first.
func (s *Server) ListTokens(ctx context.Context,
	req gen.ListTokensRequestObject) (gen.ListTokensResponseObject, error) {
	q := listQuery(req.Params.Page, req.Params.PageSize, req.Params.XFilter)
	page, err := s.store.ListTokens(ctx, principal(ctx), q)
	if err != nil {
		return nil, err
	}
	out := gen.ListTokens200JSONResponse{
		Data: make([]gen.Token, len(page.Items)), Page: page.Page, Pages: page.Pages,
		Results: page.Results,
	}
	for i := range page.Items {
		out.Data[i] = tokenOut(&page.Items[i], "")
	}
	return out, nil
}

// CreateToken creates a token for the caller and answers its whole secret.
func (s *Server) CreateToken(ctx context.Context,
	req gen.CreateTokenRequestObject) (gen.CreateTokenResponseObject, error) {
	b := req.Body
	var expiry *time.Time
	if b.Expiry.IsSpecified() && !b.Expiry.IsNull() {
		t, err := parseExpiry(b.Expiry.MustGet())
		if err != nil {
			return nil, err
		}
		expiry = &t
	}
	scopes := ""
	if b.Scopes.IsSpecified() && !b.Scopes.IsNull() {
		scopes = b.Scopes.MustGet()
	}
	t, secret, err := s.store.IssueToken(ctx, principal(ctx), b.Label, scopes, expiry)
	if err != nil {
		return nil, err
	}
	return gen.CreateToken200JSONResponse(tokenOut(t, secret)), nil
}

// GetToken returns one of the caller's live tokens.
func (s *Server) GetToken(ctx context.Context,
	req gen.GetTokenRequestObject) (gen.GetTokenResponseObject, error) {
	t, err := s.store.GetToken(ctx, principal(ctx), int64(req.TokenId))
	if err != nil {
		return nil, err
	}
	return gen.GetToken200JSONResponse(tokenOut(t, "")), nil
}

// UpdateToken renames one of the caller's live tokens.
func (s *Server) UpdateToken(ctx context.Context,
	req gen.UpdateTokenRequestObject) (gen.UpdateTokenResponseObject, error) {
	t, err := s.store.RenameToken(ctx, principal(ctx), int64(req.TokenId), req.Body.Label)
	if err != nil {
		return nil, err
	}
	return gen.UpdateToken200JSONResponse(tokenOut(t, "")), nil
}

// DeleteToken revokes one of the caller's live tokens, possibly its own.
func (s *Server) DeleteToken(ctx context.Context,
	req gen.DeleteTokenRequestObject) (gen.DeleteTokenResponseObject, error) {
	if err := s.store.RevokeToken(ctx, principal(ctx), int64(req.TokenId)); err != nil {
		return nil, err
	}
	return gen.DeleteToken200JSONResponse{}, nil
}

// parseExpiry reads an expiry as UTC YYYY-MM-DDTHH:MM:SS, or as RFC 3339
// with a zone or offset; the spec's pattern has already let only these in.
func parseExpiry(s string) (time.Time, error) {
	if t, err := time.Parse(db.TimeLayout, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, db.Errorf(db.Invalid, "expiry", "expiry is not a valid time")
}

// tokenOut is the wire form of a stored token: with its whole secret when
// just created, else the first 16 characters.
func tokenOut(t *db.Token, secret string) gen.Token {
	shown := secret
	if shown == "" {
		shown = t.Prefix
	}
	out := gen.Token{
		Id: int(t.ID), Label: t.Label, Scopes: t.Scopes, Created: db.FormatTime(t.Created),
		Expiry: nullable.NewNullNullable[gen.Datetime](), Token: shown,
	}
	if t.Expiry != nil {
		out.Expiry = nullable.NewNullableWithValue(db.FormatTime(*t.Expiry))
	}
	return out
}
