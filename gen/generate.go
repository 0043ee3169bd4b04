// Package gen is generated from openapi.yaml by oapi-codegen; do not edit it by hand.
package gen

//go:generate go tool oapi-codegen -config cfg.yaml ../openapi.yaml
