// Package scriptargs holds the argument tables of package redis's Lua
// scripts, in its test: `go test -update` generates
// store/redis/scriptargs_*_gen.go from them, and without -update fails when
// one of them is stale.
package scriptargs
