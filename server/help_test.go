package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestHelp: the built server, run with -h or --help, prints the settings
// and exits 0 at once, creating nothing (no data dir, no demo data); any
// other argument is refused with exit code 2 and a pointer to --help.
func TestHelp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "halo")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, arg := range []string{"-h", "--help", "-help"} {
		cmd := exec.Command(bin, arg)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HALO_DATA_DIR="+filepath.Join(dir, "data"), "HALO_ADDR=127.0.0.1:0")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\n%s", arg, err, stderr.String())
		}
		for _, s := range settings {
			if !strings.Contains(stdout.String(), s.name) {
				t.Errorf("%s: %s is not listed", arg, s.name)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
			t.Fatalf("%s: the data dir was created (%v): the server started", arg, err)
		}
	}
	for _, arg := range []string{"--port=8080", "serve"} {
		cmd := exec.Command(bin, arg)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "--help") {
			t.Errorf("%s: %v, %s; want exit code 2 and a pointer to --help", arg, err, out)
		}
	}
}

// TestHelpMatchesDocs: --help lists the variables docs/operations.md
// explains, no more and no fewer.
func TestHelpMatchesDocs(t *testing.T) {
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	row := regexp.MustCompile("(?m)^\\| (`[A-Z_]+`(?:, `[A-Z_]+`)*) \\|")
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		for _, name := range strings.Split(m[1], ", ") {
			documented = append(documented, strings.Trim(name, "`"))
		}
	}
	var listed []string
	for _, s := range settings {
		listed = append(listed, s.name)
	}
	slices.Sort(documented)
	slices.Sort(listed)
	if !slices.Equal(documented, listed) {
		t.Errorf("docs/operations.md documents %v\n--help lists %v", documented, listed)
	}
}
