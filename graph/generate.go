// Package graph holds the gqlgen-generated executable schema; graph/model
// holds the GraphQL models. Both are generated from schema/*.graphqls.
package graph

//go:generate go -C .. run ./tools/gqlgen
