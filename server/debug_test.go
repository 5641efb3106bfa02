package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// The profiler answers on HALO_DEBUG_ADDR only; the API's listener,
// which faces clients, has no such route.
func TestDebugListenerServesProfilerApart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := startServer(t, serverOptions{Env: map[string]string{"HALO_DEBUG_ADDR": addr}})

	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Fatalf("profiler: %d %.200s", resp.StatusCode, body)
	}
	if code, _ := s.get(t, "/debug/pprof/"); code != http.StatusNotFound {
		t.Fatalf("API listener serves /debug/pprof/: %d", code)
	}
}

func TestDebugAddrMustBeHostPort(t *testing.T) {
	_, err := loadConfig(env(map[string]string{"HALO_DEBUG_ADDR": "6060"}))
	if err == nil || !strings.Contains(err.Error(), "HALO_DEBUG_ADDR") {
		t.Fatalf("err %v", err)
	}
}
