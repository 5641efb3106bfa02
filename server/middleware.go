package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/rs/cors"

	"github.com/halo-cdp/halo/internal/platform/apperr"
)

// ---- request id and access log ----

type requestIDKey struct{}

// requestID returns the id withRequestLog gave the request, or "".
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// withRequestLog gives every request an id (context, X-Request-Id response
// header, every log line made with its context) and logs one line when it
// ends. Client-sent ids are ignored: they would let callers forge log
// correlation. Only the path is logged; query strings of GET /graphql can
// carry variables with personal data.
func withRequestLog(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := rand.Text()
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				logger.ErrorContext(ctx, "handler panic", "panic", fmt.Sprint(p))
				if rec.status == 0 {
					writeGraphQLError(rec, http.StatusInternalServerError, apperr.Internal, "internal error")
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK // handler wrote nothing
			}
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelError
			}
			logger.LogAttrs(ctx, level, "request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Int64("bytes", rec.bytes),
				slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			)
		}()
		next.ServeHTTP(rec, r.WithContext(ctx))
	})
}

// statusRecorder remembers the status and size of a response. Unwrap and
// Flush keep http.ResponseController and streaming (SSE) working through it.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// requestIDHandler adds the request id to every record logged with a
// request's context, so resolver and store logs correlate with the access
// log line without each call site passing it.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, rec slog.Record) error {
	if id := requestID(ctx); id != "" {
		rec.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, rec)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// ---- request body ----

// limitBody reads the whole body, at most limit bytes, before GraphQL sees
// it. gqlgen's POST transport, given a body cut short by
// http.MaxBytesReader, answers 200 with an uncoded "could not read request
// body: http: request body too large" — so the limit is enforced here and
// answered properly: 413 and a GraphQL error with code BAD_USER_INPUT.
// gqlgen reads the whole body into memory anyway, so buffering costs
// nothing extra.
func limitBody(limit int64, readTimeout time.Duration, next http.Handler) http.Handler {
	tooLarge := fmt.Sprintf("request body too large: the limit is %d bytes", limit)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			// Declared too big: refuse without reading a byte.
			writeGraphQLError(w, http.StatusRequestEntityTooLarge, apperr.BadUserInput, tooLarge)
			return
		}
		// Bounded read time; net/http clears the deadline itself once the
		// body is read (it then watches the connection for a hang-up).
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(readTimeout))
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeGraphQLError(w, http.StatusRequestEntityTooLarge, apperr.BadUserInput, tooLarge)
				return
			}
			// A client that hangs up or stalls past bodyReadTimeout;
			// nobody may be listening, but answer for the ones that are.
			writeGraphQLError(w, http.StatusBadRequest, apperr.BadUserInput, "could not read request body")
			return
		}
		// encoding/json would quietly turn invalid bytes into U+FFFD, and
		// the replacement would be stored as if the client had sent it.
		if !utf8.Valid(body) {
			writeGraphQLError(w, http.StatusBadRequest, apperr.BadUserInput, "request body is not valid UTF-8")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

// bodyReadTimeout bounds reading a request body (limitBody) once the
// request is admitted (1 MiB in 10 s is 100 KiB/s): a client that declares a body
// and trickles it cannot hold a handler for the whole ReadTimeout.
const bodyReadTimeout = 10 * time.Second

// closeUnreadOnAnswer makes a response that starts before the request
// body was read to its end close the connection ("Connection: close").
// Without it, net/http would first read and discard up to 256 KiB of the
// unread body to keep the connection, so a refusal of a client that
// declares a body and never sends it (no token, rate limit, content type)
// would wait for the body until ReadTimeout. With it the refusal goes out
// at once and nothing of the body is read.
func closeUnreadOnAnswer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		body := &eofBody{ReadCloser: r.Body}
		r.Body = body
		next.ServeHTTP(&closeUnreadWriter{ResponseWriter: w, body: body}, r)
	})
}

// eofBody remembers whether anyone read it, and whether to the end.
type eofBody struct {
	io.ReadCloser
	touched, eof atomic.Bool
}

func (b *eofBody) Read(p []byte) (int, error) {
	b.touched.Store(true)
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

type closeUnreadWriter struct {
	http.ResponseWriter
	body    *eofBody
	started bool
}

func (w *closeUnreadWriter) WriteHeader(code int) {
	if !w.started {
		w.started = true
		if !w.body.eof.Load() {
			w.Header().Set("Connection", "close")
		}
		if !w.body.touched.Load() {
			// net/http drains up to 256 KiB of an unread body when the
			// handler returns, even on a closing connection: a read
			// deadline now makes that drain end at once instead of
			// waiting for the client's bytes. (A body cut short by the
			// size limit is left to net/http, which closes the
			// connection gently enough for the client to read the 413.)
			_ = http.NewResponseController(w.ResponseWriter).SetReadDeadline(time.Now())
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *closeUnreadWriter) Write(b []byte) (int, error) {
	if !w.started {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Flush and Unwrap keep streaming (SSE) and http.ResponseController
// working through the wrapper.
func (w *closeUnreadWriter) Flush() {
	if !w.started {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *closeUnreadWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// requireUTF8Query is limitBody's UTF-8 check for GET /graphql, whose
// operation and variables come in the query string.
func requireUTF8Query(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			writeGraphQLError(w, http.StatusBadRequest, apperr.BadUserInput, "malformed query string")
			return
		}
		for k, vs := range q {
			if !utf8.ValidString(k) {
				writeGraphQLError(w, http.StatusBadRequest, apperr.BadUserInput, "query string is not valid UTF-8")
				return
			}
			for _, v := range vs {
				if !utf8.ValidString(v) {
					writeGraphQLError(w, http.StatusBadRequest, apperr.BadUserInput, "query string is not valid UTF-8")
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// requireJSON refuses a POST whose Content-Type is not application/json
// with 415, which the GraphQL-over-HTTP spec expects; gqlgen alone would
// say "transport not supported".
func requireJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			writeGraphQLError(w, http.StatusUnsupportedMediaType, apperr.BadUserInput,
				"Content-Type must be application/json")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ---- error responses ----

// writeGraphQLError answers with a GraphQL error response carrying code,
// for failures that happen before GraphQL execution.
func writeGraphQLError(w http.ResponseWriter, status int, code apperr.Code, message string) {
	writeGraphQLErrorExt(w, status, code, message, nil)
}

// writeGraphQLErrorExt is writeGraphQLError with more extensions (e.g.
// retryAfter) besides the code.
func writeGraphQLErrorExt(w http.ResponseWriter, status int, code apperr.Code, message string, ext map[string]any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	all := map[string]any{"code": string(code)}
	for k, v := range ext {
		all[k] = v
	}
	_ = json.NewEncoder(w).Encode(errorResponse{Errors: []responseError{{
		Message: message, Extensions: all,
	}}})
}

type errorResponse struct {
	Errors []responseError `json:"errors"`
}

type responseError struct {
	Message    string         `json:"message"`
	Locations  any            `json:"locations,omitempty"`
	Path       any            `json:"path,omitempty"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

// codedErrors guarantees every error response carries extensions.code.
// Errors raised during execution pass through Halo's error presenter, but a
// few gqlgen transport paths write a bare {"errors":[{"message":…}]}
// themselves (a mutation sent with GET, undecodable GET variables). Only
// responses with an error status (>= 400) are buffered and patched; normal
// responses, and any future streaming ones, pass straight through.
func codedErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &codeFiller{ResponseWriter: w}
		next.ServeHTTP(cw, r)
		cw.finish()
	})
}

type codeFiller struct {
	http.ResponseWriter
	status    int // != 0 once an error status was held back
	wroteHead bool
	buf       bytes.Buffer
}

func (c *codeFiller) WriteHeader(code int) {
	if c.wroteHead || c.status != 0 {
		return
	}
	if code >= 400 {
		c.status = code
		return
	}
	c.wroteHead = true
	c.ResponseWriter.WriteHeader(code)
}

func (c *codeFiller) Write(b []byte) (int, error) {
	if c.status != 0 {
		return c.buf.Write(b)
	}
	c.wroteHead = true
	return c.ResponseWriter.Write(b)
}

func (c *codeFiller) Flush() {
	if c.status != 0 {
		return
	}
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		c.wroteHead = true
		f.Flush()
	}
}

func (c *codeFiller) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func (c *codeFiller) finish() {
	if c.status == 0 {
		return
	}
	body := c.buf.Bytes()
	var resp struct {
		Data   json.RawMessage `json:"data,omitempty"`
		Errors []responseError `json:"errors"`
	}
	if err := json.Unmarshal(body, &resp); err == nil && len(resp.Errors) > 0 {
		code := apperr.BadUserInput
		if c.status >= 500 {
			code = apperr.Internal
		}
		patched := false
		for i := range resp.Errors {
			if resp.Errors[i].Extensions == nil {
				resp.Errors[i].Extensions = map[string]any{}
			}
			if _, ok := resp.Errors[i].Extensions["code"]; !ok {
				resp.Errors[i].Extensions["code"] = string(code)
				patched = true
			}
		}
		if patched {
			if b, err := json.Marshal(resp); err == nil {
				body = b
			}
		}
	}
	c.ResponseWriter.Header().Del("Content-Length")
	c.ResponseWriter.WriteHeader(c.status)
	_, _ = c.ResponseWriter.Write(body)
}

// ---- browser-facing security: headers, CORS, playground ----

// apiCSP is the Content-Security-Policy of everything but the playground:
// JSON and plain text never need to load, run or frame anything.
const apiCSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// securityHeaders sets the headers every response gets: no MIME sniffing,
// no Referer leaking to other sites, no framing (clickjacking), nothing
// cached (responses carry customer data), and apiCSP, which the playground
// handler replaces with its own. A handler may still override any of them.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", apiCSP)
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// corsHeaders are the request headers a browser client may send: the
// token, the body type and response negotiation (application/json,
// application/graphql-response+json, text/event-stream for graphql-sse).
var corsHeaders = []string{"Authorization", "Content-Type", "Accept"}

// corsPreflightMaxAge lets a browser reuse a preflight answer for 10
// minutes instead of sending one before every request.
const corsPreflightMaxAge = 600

// withCORS lets browsers on the configured origins (exact matches of
// scheme, host and port; no wildcards, since the API takes credentials)
// call the API, through github.com/rs/cors. A preflight from any other
// origin is answered 403 FORBIDDEN rather than rs/cors's silent 204, so
// the developer of a misconfigured front end sees why in the network tab.
// Requests that are not preflights go on: a browser will not let a page of
// another origin read the answer, and non-browser clients send no Origin.
func withCORS(origins []string, next http.Handler) http.Handler {
	allowed := make(map[string]bool, len(origins))
	for _, o := range origins {
		allowed[strings.ToLower(o)] = true
	}
	c := cors.New(cors.Options{
		// A function, not AllowedOrigins: rs/cors reads an empty list as
		// "all origins" and a "*" inside an entry as a wildcard.
		AllowOriginFunc:  func(origin string) bool { return allowed[strings.ToLower(origin)] },
		AllowedMethods:   []string{http.MethodGet, http.MethodPost, http.MethodOptions},
		AllowedHeaders:   corsHeaders,
		ExposedHeaders:   []string{"Retry-After", "X-Request-Id"},
		AllowCredentials: true,
		MaxAge:           corsPreflightMaxAge,
	})
	h := c.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" &&
			origin != "" && !allowed[strings.ToLower(origin)] {
			w.Header().Add("Vary", "Origin")
			writeGraphQLError(w, http.StatusForbidden, apperr.Forbidden,
				"cross-origin requests from this origin are not allowed (HALO_CORS_ORIGINS)")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// originAllowed reports whether a browser page at origin may open a
// websocket to a server reached as host: the same origin, a configured
// one, or (dev only) a page on localhost.
func originAllowed(origin, host string, origins []string, dev bool) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, host) {
		return true
	}
	for _, o := range origins {
		if strings.EqualFold(o, origin) {
			return true
		}
	}
	if dev {
		switch u.Hostname() {
		case "localhost", "127.0.0.1", "::1":
			return true
		}
	}
	return false
}

// validHost accepts a Host header fit to put in a CSP source: host or
// host:port, no spaces, semicolons or quotes.
var validHost = regexp.MustCompile(`^[A-Za-z0-9.\-\[\]:]{1,255}$`).MatchString
