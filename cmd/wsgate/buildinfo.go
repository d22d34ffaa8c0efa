package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/wsgate/wsgate/internal/server"
)

// The packaging build sets these with -ldflags -X from git, for trees the
// Go toolchain cannot stamp itself (it does not see a git worktree, whose
// .git is a file); the toolchain's own stamp wins when there is one.
var buildCommit, buildTime, buildModified string

// versionString is wsgate's release version.
func versionString() string { return server.Version }

// writeVersion prints -v, or with long -V: the commit, its time and
// whether the tree had uncommitted changes, from the VCS stamp the Go
// toolchain embeds (absent in builds made with -buildvcs=false).
func writeVersion(w io.Writer, long bool) {
	fmt.Fprintf(w, "wsgate version: wsgate/%s\n", versionString())
	if !long {
		return
	}
	bi, _ := debug.ReadBuildInfo()
	fmt.Fprint(w, buildDetails(bi))
	fmt.Fprintf(w, "built with %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// buildDetails renders the commit lines of -V from bi.
func buildDetails(bi *debug.BuildInfo) string {
	var rev, at, modified string
	if bi != nil {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
	}
	if rev == "" {
		rev, at, modified = buildCommit, buildTime, buildModified
	}
	if rev == "" {
		return "commit: unknown (built without version control information)\n"
	}
	if modified == "true" {
		rev += " (with uncommitted changes)"
	}
	out := "commit: " + rev + "\n"
	if at != "" {
		out += "commit time: " + at + "\n"
	}
	return out
}
