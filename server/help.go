package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
)

// args reads the command line. There are no flags: configuration is the
// environment. -h and --help print it (to out) and end the program,
// before anything is opened or started; anything else is refused (on
// errOut, exit code 2). done says whether the program should exit with
// code.
func args(list []string, out, errOut io.Writer) (code int, done bool) {
	fs := flag.NewFlagSet("halo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	err := fs.Parse(list)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printHelp(out)
		return 0, true
	case err != nil:
		fmt.Fprintf(errOut, "halo: %v: the server takes no flags; it is configured by environment variables (--help lists them)\n", err)
		return 2, true
	case fs.NArg() > 0:
		fmt.Fprintf(errOut, "halo: unexpected argument %q: the server is configured by environment variables (--help lists them)\n", fs.Arg(0))
		return 2, true
	}
	return 0, false
}

// setting is one environment variable the server reads: the rows
// --help prints. docs/operations.md explains each at length; a test keeps
// the two lists of names the same.
type setting struct{ name, def, meaning string }

var settings = []setting{
	{"HALO_ADDR", ":8080", "listen address, host:port"},
	{"HALO_DATA_DIR", "./data", "embedded database, dev JWT secret and token, demo-data marker"},
	{"MONGODB_URI", "unset", "use MongoDB (mongodb://host:27017/halo) instead of the embedded store"},
	{"HALO_JWT_SECRET", "unset", "HS256 key (32+ bytes); with no key source at all: dev mode, a token is printed"},
	{"HALO_JWKS_URL", "unset", "accept RS256/ES256 tokens signed with the keys published here"},
	{"HALO_JWT_ISSUER", "unset", "a token's iss must match"},
	{"HALO_JWT_AUDIENCE", "unset", "a token's aud must match"},
	{"HALO_CORS_ORIGINS", "unset", "comma-separated browser origins allowed to call the API"},
	{"HALO_DEV", "true in dev mode", "GraphiQL playground and introspection"},
	{"HALO_RATE_LIMIT", "50", "requests/s per token subject (0: off)"},
	{"HALO_WORKSPACE_RATE_LIMIT", "500", "requests/s per workspace (0: off)"},
	{"HALO_MAX_SUBSCRIPTIONS", "20", "subscriptions per websocket"},
	{"HALO_MAX_CONNECTIONS_PER_SUBJECT", "100", "websockets and SSE streams per token subject"},
	{"HALO_MAX_CONNECTIONS_PER_WORKSPACE", "2000", "websockets and SSE streams per workspace"},
	{"HALO_MAX_CONNECTIONS", "half the file limit", "websockets and SSE streams per process (at most 10000)"},
	{"HALO_WS_INIT_TIMEOUT", "3s", "time a new websocket has to send connection_init"},
	{"HALO_MAX_SEGMENTS", "500", "active segments per workspace"},
	{"HALO_OUTBOX_RETENTION", "15m", "how long a subscription can resume after a disconnect (1m to 168h)"},
	{"HALO_SEGMENT_BUILD_WAIT", "100ms", "how long a segment's save waits for its build (0s to 1m)"},
	{"HALO_MAX_EVENT_FEATURES", "200", "event counters the segments of a workspace keep on every profile"},
	{"HALO_MAX_RULE_EVENTS", "20", "event and lastEvent nodes in one segment rule (at most 100)"},
	{"HALO_DEMO_DATA", "true embedded", "load the demo workspace on first start"},
	{"HALO_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"HALO_LOG_FORMAT", "json", "json or text"},
	{"HALO_DEBUG_ADDR", "off", "host:port of an unauthenticated pprof listener (bind it to loopback)"},
	{"GOGC", "400", "Go's garbage collector target"},
	{"GOMEMLIMIT", "256MiB", "Go's soft memory limit"},
	{"HALO_TEST_MONGODB_URI", "unset", "tests only: also run the MongoDB suites against this server"},
}

// printHelp writes what the server is, how it is configured, and the
// settings table.
func printHelp(w io.Writer) {
	fmt.Fprint(w, `Halo: the customer-360 GraphQL API.

Usage: go run ./server     (or the built binary; it takes no arguments)

It is configured by environment variables. With none set it starts on
:8080 with the embedded store in ./data, loads the demo workspace and
prints a development token. docs/operations.md explains each setting.

`)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tMEANING")
	for _, s := range settings {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.name, s.def, s.meaning)
	}
	tw.Flush()
}
