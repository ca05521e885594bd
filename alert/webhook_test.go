package alert

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestWebhook delivers to a real HTTP server on loopback: the body is the
// documented JSON, the signature verifies with the secret, a refused
// connection and a 503 are retried until the receiver takes the batch.
func TestWebhook(t *testing.T) {
	// Reserve a port, then leave it closed: the first attempt is refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	secret := []byte("s3cret")
	var mu sync.Mutex
	var bodies []WebhookBody
	var calls int
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if got, want := r.Header.Get(SignatureHeader), Sign(secret, body); got != want {
			t.Errorf("signature %q, want %q", got, want)
		}
		if Sign([]byte("other"), body) == r.Header.Get(SignatureHeader) {
			t.Error("signature does not depend on the secret")
		}
		var b WebhookBody
		if err := json.Unmarshal(body, &b); err != nil {
			t.Errorf("body %q: %v", body, err)
		}
		bodies = append(bodies, b)
	})}
	tg := Target{Name: "hook", Notifier: &Webhook{URL: "http://" + addr + "/lbd", Secret: secret},
		Timeout: 2 * time.Second, Retries: 5, Backoff: 200 * time.Millisecond, MaxBackoff: time.Second, QueueLen: 8, DigestMax: 8}
	d, err := New([]Target{tg}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	d.Send(Event{Time: time.Now(), Node: "lvs1", Class: RealServerDown, Subject: "web/rs1", Message: "down: connect: connection refused"})
	time.Sleep(100 * time.Millisecond) // the first attempt meets the closed port
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l2)
	defer srv.Close()

	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && d.Stats()[0].Deliveries == 0 {
		time.Sleep(20 * time.Millisecond)
	}
	st := d.Stats()[0]
	if st.Deliveries != 1 || st.Sent != 1 || st.Failed != 0 {
		t.Fatalf("stats %+v, want one delivery after the refused and the 503 attempts", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 {
		t.Errorf("receiver saw %d requests, want 2 (503, then accepted)", calls)
	}
	if len(bodies) != 1 || len(bodies[0].Events) != 1 || bodies[0].Events[0].Subject != "web/rs1" || bodies[0].Events[0].Class != RealServerDown {
		t.Errorf("bodies %+v", bodies)
	}
}
