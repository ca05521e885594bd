package healthcheck

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
)

// readResp parses a whole response the way httpChecker does.
func readResp(r io.Reader, head bool) (int, string, error) {
	var rr respReader
	rr.init(r)
	defer rr.release()
	code, chunked, length, err := rr.readHead()
	if err != nil {
		return 0, "", err
	}
	var body bytes.Buffer
	switch {
	case head || code == 204 || code == 304:
	case chunked:
		err = rr.readChunked(&body)
	default:
		err = rr.readBody(&body, length)
	}
	return code, body.String(), err
}

func TestRespReader(t *testing.T) {
	big := strings.Repeat("x", MaxBody+100)
	cases := []struct {
		name, in string
		head     bool
		code     int
		body     string
		err      string // error text prefix; "" = none
	}{
		{name: "content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nServer: x\r\n\r\nabcTRAILING", code: 200, body: "abc"},
		{name: "until close", in: "HTTP/1.0 503 Service Unavailable\r\nX-A: b\r\n\r\ndown for maintenance", code: 503, body: "down for maintenance"},
		{name: "no reason", in: "HTTP/1.1 404\r\n\r\n", code: 404},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nX-Trailer: 1\r\n\r\n", code: 200, body: "abcdefg"},
		{name: "chunked wins", in: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", code: 200, body: "hello"},
		{name: "interim", in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", code: 200, body: "ok"},
		{name: "101 is final", in: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", code: 101},
		{name: "no content", in: "HTTP/1.1 204 No Content\r\n\r\nignored", code: 204},
		{name: "head", in: "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", head: true, code: 200},
		{name: "bare LF", in: "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", code: 200, body: "ok"},
		{name: "body cut at MaxBody", in: "HTTP/1.1 200 OK\r\nContent-Length: 65636\r\n\r\n" + big, code: 200, body: big[:MaxBody]},
		{name: "chunked cut at MaxBody", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10064\r\n" + big + "\r\n0\r\n\r\n", code: 200, body: big[:MaxBody]},
		{name: "repeated equal length", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\nk", code: 200, body: "k"},

		{name: "closed at once", in: "", err: "EOF"},
		{name: "not HTTP", in: "SSH-2.0-OpenSSH_9.6\r\n", err: "malformed HTTP response \"SSH-2.0-OpenSSH_9.6\""},
		{name: "two-digit status", in: "HTTP/1.1 20 OK\r\n\r\n", err: "malformed HTTP response"},
		{name: "bad version", in: "HTTP/x.1 200 OK\r\n\r\n", err: "malformed HTTP response"},
		{name: "no space after code", in: "HTTP/1.1 200OK\r\n\r\n", err: "malformed HTTP response"},
		{name: "header without colon", in: "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", err: "malformed HTTP header"},
		{name: "space before colon", in: "HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\n", err: "malformed HTTP header"},
		{name: "bad length", in: "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", err: "bad Content-Length"},
		{name: "conflicting lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", err: "bad Content-Length"},
		{name: "gzip", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", err: "unsupported Transfer-Encoding"},
		{name: "short body", in: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", code: 200, err: "unexpected EOF"},
		{name: "head cut", in: "HTTP/1.1 200 OK\r\nContent-Le", err: "unexpected EOF"},
		{name: "bad chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", code: 200, err: "malformed chunked body"},
		{name: "chunk without CRLF", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", code: 200, err: "malformed chunked body"},
		{name: "long line", in: "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 20000) + "\r\n\r\n", err: "response head longer than 16KiB"},
		{name: "many headers", in: "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Filler: 0123456789abcdef\r\n", 700) + "\r\n", err: "response head longer than 16KiB"},
		{name: "endless interim", in: strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 20), err: "too many interim"},
	}
	readers := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"data+EOF": iotest.DataErrReader,
	}
	for _, c := range cases {
		for rn, wrap := range readers {
			code, body, err := readResp(wrap(strings.NewReader(c.in)), c.head)
			var got string
			if err != nil {
				got = err.Error()
			}
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.HasPrefix(got, c.err)) ||
				(c.code != 0 && code != c.code) || body != c.body && err == nil {
				t.Errorf("%s (%s): code %d, body %.20q (%d bytes), err %v; want code %d, body %.20q (%d bytes), err %q",
					c.name, rn, code, body, len(body), err, c.code, c.body, len(c.body), c.err)
			}
		}
	}
}

// TestRespReaderAgreesWithNetHTTP feeds the same real responses of a Go
// HTTP server to both parsers.
func TestRespReaderAgreesWithNetHTTP(t *testing.T) {
	host, port := httpServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			for i := 0; i < 50; i++ {
				io.WriteString(w, strings.Repeat("chunk", 500))
				w.(http.Flusher).Flush()
			}
		case "/teapot":
			w.WriteHeader(http.StatusTeapot)
			io.WriteString(w, "short and stout")
		default:
			io.WriteString(w, "fine")
		}
	})
	for _, path := range []string{"/", "/chunked", "/teapot"} {
		raw := func() []byte {
			c, err := net.Dial("tcp", hostPort(host, port))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			b, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}()
		code, body, err := readResp(bytes.NewReader(raw), false)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		resp, err := http.ReadResponse(newBufReader(raw), nil)
		if err != nil {
			t.Fatalf("%s: net/http: %v", path, err)
		}
		want, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		if code != resp.StatusCode || body != string(want) {
			t.Errorf("%s: code %d body %d bytes; net/http: code %d body %d bytes", path, code, len(body), resp.StatusCode, len(want))
		}
	}
}

func newBufReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
