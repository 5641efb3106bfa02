package main

import (
	"embed"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"strings"

	"github.com/halo-cdp/halo/internal/platform/auth"
)

// The playground's page and the pinned browser builds of GraphiQL and
// React (tools/playground vendors them): everything is served from the
// binary, so it works with no internet, and no request leaves for another
// host.
//
//go:embed playground/index.html playground/assets
var playgroundFiles embed.FS

var playgroundPage = template.Must(template.ParseFS(playgroundFiles, "playground/index.html"))

// playgroundCSP lets the page's own scripts and styles run and talk to
// this server only ('self'; the websocket's host is added per request).
// GraphiQL sets inline styles from JavaScript; its fonts are data: URLs.
const playgroundCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'none'; connect-src 'self'"

// playgroundHandler serves GraphiQL at /playground and its files under
// /playground/assets/. In dev mode, to a browser on this machine, the page
// carries the dev token (issued with secret); anyone else pastes a token.
func playgroundHandler(secret []byte, devMode bool) http.Handler {
	assets, err := fs.Sub(playgroundFiles, "playground")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(assets)
	mux := http.NewServeMux()
	mux.Handle("GET /playground/assets/", http.StripPrefix("/playground", files))
	mux.HandleFunc("GET /playground", func(w http.ResponseWriter, r *http.Request) {
		csp := playgroundCSP
		// 'self' does not cover websockets in every browser.
		if validHost(r.Host) {
			csp += " ws://" + r.Host + " wss://" + r.Host
		}
		w.Header().Set("Content-Security-Policy", csp)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		var data struct{ Token string }
		if devMode && fromLoopback(r) {
			p := auth.Principal{Workspace: devWorkspace, Subject: "dev", Scopes: auth.AllScopes}
			if tok, err := auth.IssueHS256(secret, p, devTokenTTL); err == nil {
				data.Token = tok
			}
		}
		_ = playgroundPage.Execute(w, data)
	})
	return mux
}

// fromLoopback tells whether r came from this machine (and not through a
// proxy, which would name the client in X-Forwarded-For).
func fromLoopback(r *http.Request) bool {
	if r.Header.Get("X-Forwarded-For") != "" || r.Header.Get("Forwarded") != "" {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(strings.TrimPrefix(strings.TrimSuffix(host, "]"), "["))
	return ip != nil && ip.IsLoopback()
}
