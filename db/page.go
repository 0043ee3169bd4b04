package db

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
)

// Page is one page of a collection with the envelope counts.
type Page[T any] struct {
	Items   []T
	Page    int
	Pages   int
	Results int
}

// listPage counts the rows of T that where selects and reads the page q
// asks for, in the given order. An empty collection is one empty page.
func listPage[T any](ctx context.Context, db bun.IDB, q ListQuery,
	where func(*bun.SelectQuery) *bun.SelectQuery, order string) (*Page[T], error) {
	total, err := where(db.NewSelect().Model((*T)(nil))).Count(ctx)
	if err != nil {
		return nil, translate(err)
	}
	ep := newPage(q, int64(total))
	page := &Page[T]{Items: []T{}, Page: ep.Page, Pages: ep.Pages, Results: ep.Results}
	if int64(q.Page-1)*int64(q.PageSize) >= int64(total) {
		return page, nil
	}
	err = where(db.NewSelect().Model(&page.Items)).
		OrderExpr(order).
		Limit(int64(q.PageSize)).
		Offset(int64(q.Page-1) * int64(q.PageSize)).
		Scan(ctx)
	return page, translate(err)
}

// filterWhere adds a parsed filter's clause to a query. Its placeholders
// start at ?2; ?0 and ?1 are reserved for the events list.
func filterWhere(sel *bun.SelectQuery, f *Filter) *bun.SelectQuery {
	if f == nil || f.where == "" {
		return sel
	}
	return sel.Where(f.where, append([]any{nil, nil}, f.args...)...)
}

// orderOf is the ORDER BY of a list under a filter: its +order_by field
// with ties broken by idCol, idCol alone when only +order is given, or def
// when the filter orders nothing.
func orderOf(f *Filter, fields map[string]field, idCol, def string) string {
	if f == nil || (f.orderBy == "" && !f.ordered) {
		return def
	}
	dir := "ASC"
	if f.desc {
		dir = "DESC"
	}
	fd, ok := fields[f.orderBy]
	if !ok || fd.column == idCol {
		return idCol + " " + dir
	}
	return fmt.Sprintf("%s %s, %s %s", fd.column, dir, idCol, dir)
}
