package main

import (
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// result is one row of the table.
type result struct {
	area, what, target, figure string
	ok                         string // met, NOT MET, info, FAILED
}

func (h *harness) add(r result) {
	if r.ok == "" {
		r.ok = "info"
	}
	h.results = append(h.results, r)
	h.logf("  %s: %s = %s (%s)", r.area, r.what, r.figure, r.ok)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}

// sourceCommit names the commit the working tree is at, "-dirty" when it
// holds changes: the server binary is built from the tree, not the commit.
func sourceCommit() string {
	commit, _ := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	c := strings.TrimSpace(string(commit))
	if st, _ := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); len(st) > 0 {
		c += "-dirty"
	}
	return c
}

func (h *harness) header() string {
	return fmt.Sprintf("%s, %d CPUs, %s, commit %s, dataset %d profiles / %d events (seed %d)",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.Version(), h.commit,
		h.opts.data.Profiles, h.opts.data.Events, h.opts.data.Seed)
}

func (h *harness) table() string {
	var b strings.Builder
	fmt.Fprintln(&b, h.header())
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "area\twhat\ttarget\tfigure\tverdict")
	for _, r := range h.results {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.area, r.what, r.target, r.figure, r.ok)
	}
	w.Flush()
	return b.String()
}

func (h *harness) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n| area | what | target | figure | verdict |\n|---|---|---|---|---|\n", h.header())
	for _, r := range h.results {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", r.area, r.what, r.target, r.figure, r.ok)
	}
	return b.String()
}
