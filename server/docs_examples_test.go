package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestDocsExamplesRun runs the manual's shell examples, in order, as a
// reader would (bash, curl and jq, HALO_URL and TOKEN set) against a
// fresh server: every answer must be JSON without errors, and no example
// may hold a placeholder id (ids come from earlier answers).
func TestDocsExamplesRun(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("the docs' examples need %s (.ci/run installs it)", tool)
			}
			t.Skipf("needs %s", tool)
		}
	}
	var script strings.Builder
	block := regexp.MustCompile("(?s)```sh\n(.*?)```")
	for _, f := range []string{"../README.md", "api.md", "identity.md", "segments.md", "consent.md", "traits-and-scores.md", "crm.md"} {
		doc, err := os.ReadFile("../docs/" + f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range block.FindAllStringSubmatch(string(doc), -1) {
			if f == "../README.md" && !strings.Contains(m[1], "HALO_URL") {
				continue // the README's commands to start and test
			}
			if strings.Contains(m[1], " id>") {
				t.Errorf("docs/%s: an example holds a placeholder id:\n%s", f, m[1])
			}
			script.WriteString("# docs/" + f + "\n" + m[1] + "\n")
		}
	}
	s := startServer(t, serverOptions{})
	cmd := exec.Command("bash", "-eu", "-o", "pipefail", "-c", script.String())
	cmd.Env = append(os.Environ(), "HALO_URL="+s.URL, "TOKEN="+s.token(t, "docs"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the examples stopped: %v\n%s\n%s", err, out, stderr.String())
	}
	// Answers one after the other (curl adds no newline of its own).
	answers := 0
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var answer struct {
			Errors []json.RawMessage
			Data   json.RawMessage
		}
		err := dec.Decode(&answer)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not a GraphQL answer after %d: %v\n%s", answers, err, out)
		}
		if len(answer.Errors) > 0 {
			t.Errorf("an example failed: %s", answer.Errors[0])
		}
		answers++
	}
	if answers < 25 {
		t.Errorf("only %d answers", answers)
	}
}
