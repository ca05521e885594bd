package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"lbd/api"
)

func TestReadSSE(t *testing.T) {
	stream := ": keep-alive\n\n" +
		"id: 1\nevent: event\ndata: {\"seq\":1}\n\n" +
		"data: line one\r\ndata: line two\r\n\r\n" +
		"retry: 1000\n\n" + // no data: no event
		"data:nospace\n" +
		"data: at EOF without blank line"
	var got []string
	if err := readSSE(strings.NewReader(stream), func(d string) error { got = append(got, d); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []string{`{"seq":1}`, "line one\nline two", "nospace\nat EOF without blank line"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q, want %q", got, want)
	}
	stop := errors.New("stop")
	n := 0
	err := readSSE(strings.NewReader(stream), func(string) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("callback error: %v after %d events", err, n)
	}
}

func TestErrors(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/services/{vs}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(401)
			return
		}
		w.WriteHeader(404)
		json.NewEncoder(w).Encode(api.Error{Error: fmt.Sprintf("no virtual server %q", r.PathValue("vs")), Suggestion: "web"})
	})
	mux.HandleFunc("POST /api/v1/reload", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(502)
		io.WriteString(w, "<html>bad gateway</html>")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, err := New(srv.URL+"/", "tok")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Service(context.Background(), "w b/e")
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != 404 || StatusOf(err) != 404 {
		t.Fatalf("err %v", err)
	}
	// The name is escaped in the path and comes back intact.
	if got := err.Error(); got != `no virtual server "w b/e" (did you mean "web"?)` {
		t.Errorf("message %q", got)
	}
	// lbd's console words the suggestion into its message: said once.
	for _, msg := range []string{`no virtual server "wbe"; did you mean "web"?`, `no virtual server "wbe" (did you mean "web"?)`, `no virtual server "wbe"`} {
		e := &HTTPError{Status: 404, Body: api.Error{Error: msg, Suggestion: "web"}}
		if got := e.Error(); got != `no virtual server "wbe" (did you mean "web"?)` {
			t.Errorf("%q -> %q", msg, got)
		}
	}
	_, err = c.Reload(context.Background())
	if StatusOf(err) != 502 || err.Error() != "<html>bad gateway</html>" {
		t.Errorf("non-JSON error body: %v", err)
	}
	c2, _ := New(srv.URL, "")
	if _, err := c2.Service(context.Background(), "web"); StatusOf(err) != 401 || err.Error() != "Unauthorized" {
		t.Errorf("empty 401: %v", err)
	}

	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	c3, _ := New("http://"+addr, "")
	_, err = c3.Status(context.Background())
	var un *Unreachable
	if !errors.As(err, &un) || un.Timeout || un.URL != "http://"+addr || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("unreachable: %#v %v", err, err)
	}

	// A server that accepts but never answers: a timeout, not a refusal.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	c4, _ := New(hang.URL, "", WithTimeout(50*time.Millisecond))
	_, err = c4.Status(context.Background())
	if !errors.As(err, &un) || !un.Timeout {
		t.Errorf("timeout: %v", err)
	}

	for _, bad := range []string{"127.0.0.1:3636", "ftp://x", "http://", "::"} {
		if _, err := New(bad, ""); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
}

func TestStreamEvents(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/events/stream" || r.Header.Get("Accept") != "text/event-stream" || r.URL.Query().Get("since") == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 1; i <= 3; i++ {
			b, _ := json.Marshal(api.Event{Seq: uint64(i), Kind: "health", Subject: fmt.Sprintf("web/rs%d", i)})
			fmt.Fprintf(w, "data: %s\n\n", b)
		}
		io.WriteString(w, "data: not json\n\n")
	}))
	defer srv.Close()
	c, _ := New(srv.URL, "", WithTimeout(time.Nanosecond)) // the stream ignores the request timeout
	var seqs []uint64
	err := c.StreamEvents(context.Background(), 7, func(ev api.Event) error { seqs = append(seqs, ev.Seq); return nil })
	if err != nil || fmt.Sprint(seqs) != "[1 2 3]" {
		t.Errorf("stream: %v %v", err, seqs)
	}
	stop := errors.New("enough")
	err = c.StreamEvents(context.Background(), 0, func(ev api.Event) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("callback error not returned: %v", err)
	}
}
