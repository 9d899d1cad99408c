// Package scriptargs holds the argument tables of package redis's Lua
// scripts, in its test: `go test -update` generates
// store/redis/scriptargs_gen.go from them, and without -update fails when
// that file is stale.
package scriptargs
