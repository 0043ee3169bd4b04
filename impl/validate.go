package impl

import (
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/labstack/echo/v4"
)

// validate checks each request to an operation of the spec against it
// (parameters, headers and body) and answers the first violation as the
// error handler words an openapi3filter.RequestError. Other requests pass
// through. The operation is the one echo routed the request to, found by
// routeKey: routing the request a second time, through a router of
// kin-openapi's own, cost as much as checking it.
func validate(spec *openapi3.T) echo.MiddlewareFunc {
	ops := map[string]*routers.Route{}
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			key := method + " /v4" + pathParam.ReplaceAllString(path, ":$1")
			ops[key] = &routers.Route{Spec: spec, Path: path, PathItem: item, Method: method, Operation: op}
		}
	}
	// authenticate has checked the token and its scope already.
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			route, ok := ops[routeKey(c)]
			if !ok {
				return next(c)
			}
			var params map[string]string
			if names := c.ParamNames(); len(names) > 0 {
				params = make(map[string]string, len(names))
				for i, v := range c.ParamValues()[:len(names)] {
					params[names[i]] = v
				}
			}
			in := &openapi3filter.RequestValidationInput{Request: c.Request(), PathParams: params,
				Route: route, Options: opts}
			if err := openapi3filter.ValidateRequest(c.Request().Context(), in); err != nil {
				return err
			}
			return next(c)
		}
	}
}
