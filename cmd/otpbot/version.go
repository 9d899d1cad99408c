package main

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// version is stamped at build time:
//
//	go build -ldflags "-X main.version=v1.2.3" ./cmd/otpbot
//
// It is the one package-level variable of the program, because -ldflags -X
// can set nothing else. When it is empty, buildInfo falls back to what the
// Go toolchain recorded (the module version under `go install ...@v1.2.3`,
// the VCS revision of a local build).
var version string

// BuildInfo describes the running binary.
type BuildInfo struct {
	Version   string // v1.2.3, or "devel"
	Revision  string // VCS commit, "" when unknown
	Modified  bool   // built from a work tree with uncommitted changes
	GoVersion string
}

// buildInfo returns the stamped version, or what debug.ReadBuildInfo knows.
func buildInfo() BuildInfo {
	bi := BuildInfo{Version: version, GoVersion: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if ok {
		if bi.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			bi.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				bi.Revision = s.Value
			case "vcs.modified":
				bi.Modified = s.Value == "true"
			}
		}
	}
	if bi.Version == "" {
		bi.Version = "devel"
	}
	return bi
}

// versionLine is what `otpbot version` prints.
func versionLine() string {
	bi := buildInfo()
	var b strings.Builder
	b.WriteString("otpbot ")
	b.WriteString(bi.Version)
	var extra []string
	if bi.Revision != "" {
		rev := bi.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if bi.Modified {
			rev += "-dirty"
		}
		extra = append(extra, "commit "+rev)
	}
	extra = append(extra, bi.GoVersion)
	b.WriteString(" (" + strings.Join(extra, ", ") + ")")
	return b.String()
}
