// Package apiv4 holds the contract, openapi.yaml, as written: the bytes the
// server publishes at /openapi.yaml and the docs portal reads.
package apiv4

import _ "embed"

// Spec is openapi.yaml exactly as committed. gen embeds a copy too, but
// with its operationIds renamed to Go names; publish this one.
//
//go:embed openapi.yaml
var Spec []byte
