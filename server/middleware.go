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
	"time"

	"github.com/halo-cdp/halo/apperr"
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
func limitBody(limit int64, next http.Handler) http.Handler {
	tooLarge := fmt.Sprintf("request body too large: the limit is %d bytes", limit)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			// Declared too big: refuse without reading a byte.
			writeGraphQLError(w, http.StatusRequestEntityTooLarge, apperr.BadUserInput, tooLarge)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeGraphQLError(w, http.StatusRequestEntityTooLarge, apperr.BadUserInput, tooLarge)
				return
			}
			// A client that hangs up or stalls past ReadTimeout; nobody
			// may be listening, but answer for the ones that are.
			writeGraphQLError(w, http.StatusBadRequest, apperr.BadUserInput, "could not read request body")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
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
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorResponse{Errors: []responseError{{
		Message: message, Extensions: map[string]any{"code": string(code)},
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
