package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// SignatureHeader carries the HMAC-SHA256 of the request body, keyed with
// the target's secret, as "sha256=" and the hex digest (the form GitHub's
// webhooks use). The body holds its own timestamp, so a receiver can
// refuse replays.
const SignatureHeader = "X-Lbd-Signature-256"

// Webhook POSTs a JSON document to a URL. Any 2xx answer is a delivery;
// anything else (a refused connection, a timeout, a 5xx) is retried.
type Webhook struct {
	URL    string
	Secret []byte // empty: no signature header
	Client *http.Client
}

// WebhookBody is the JSON document a webhook receives.
type WebhookBody struct {
	Sent       time.Time `json:"sent"`
	Events     []Event   `json:"events"`
	Suppressed int       `json:"suppressed,omitempty"`
}

// Sign returns the signature header's value for body.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (h *Webhook) Notify(ctx context.Context, batch []Event, suppressed int) error {
	body, err := json.Marshal(WebhookBody{Sent: time.Now().UTC(), Events: batch, Suppressed: suppressed})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "lbd-alert")
	if len(h.Secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(h.Secret, body))
	}
	client := h.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", strconv.Quote(resp.Status))
	}
	return nil
}
