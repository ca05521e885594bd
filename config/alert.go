package config

import (
	"net"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Alert is one [[alert]] target: where the director's events go (a
// webhook, a mail relay or a program) and how often.
type Alert struct {
	Name string `toml:"name"`
	Type string `toml:"type"` // webhook | mail | program
	// Events are the classes sent (AlertClasses); default all.
	Events []string `toml:"events,omitempty"`

	// webhook: a JSON POST, signed with HMAC-SHA256 when Secret is set.
	URL    string `toml:"url,omitempty"`
	Secret string `toml:"secret,omitempty"`

	// mail: through an SMTP relay (host:port), STARTTLS required unless
	// starttls = false, AUTH PLAIN when username is set.
	SMTPServer string   `toml:"smtp_server,omitempty"`
	From       string   `toml:"from,omitempty"`
	To         []string `toml:"to,omitempty"`
	Username   string   `toml:"username,omitempty"`
	Password   string   `toml:"password,omitempty"`
	StartTLS   *bool    `toml:"starttls,omitempty"` // default true
	HeloName   string   `toml:"helo_name,omitempty"`

	// program: the command and its arguments.
	Command []string `toml:"command,omitempty"`

	Timeout    Duration `toml:"timeout"`     // one attempt; default 10s
	Retries    int      `toml:"retries"`     // after a failure; default 3
	Backoff    Duration `toml:"backoff"`     // before the first retry, doubled up to 1m; default 2s
	Dedup      Duration `toml:"dedup"`       // identical events within this are sent once; default 5m, 0 = off
	RateLimit  int      `toml:"rate_limit"`  // deliveries per rate_period, then digests; default 10, 0 = off
	RatePeriod Duration `toml:"rate_period"` // default 10m
}

// AlertClasses are the event classes an alert can ask for, in
// documentation order. The alert package checks the same list.
func AlertClasses() []string {
	return []string{"rs_down", "rs_up", "quorum_lost", "quorum_ok", "vrrp", "bgp", "reload_refused", "drift_repaired", "sync_down"}
}

const (
	defaultAlertTimeout    = 10 * time.Second
	defaultAlertRetries    = 3
	defaultAlertBackoff    = 2 * time.Second
	defaultAlertDedup      = 5 * time.Minute
	defaultAlertRateLimit  = 10
	defaultAlertRatePeriod = 10 * time.Minute
	maxAlertRetries        = 20
	maxAlertTimeout        = 5 * time.Minute
	// Bounds that are no choice of the operator's.
	AlertMaxBackoff = time.Minute // the doubling backoff stops here
	AlertQueueLen   = 256         // events waiting per target; more are dropped and counted
	AlertDigestMax  = 100         // events in one digest; more are counted as left out
)

func defaultAlert(a *Alert, has presence) {
	if a.Type == "mail" {
		setBool(&a.StartTLS, has, "starttls", true)
		setString(&a.HeloName, has, "helo_name", "localhost")
	}
	setDuration(&a.Timeout, has, "timeout", defaultAlertTimeout)
	setInt(&a.Retries, has, "retries", defaultAlertRetries)
	setDuration(&a.Backoff, has, "backoff", defaultAlertBackoff)
	setDuration(&a.Dedup, has, "dedup", defaultAlertDedup)
	setInt(&a.RateLimit, has, "rate_limit", defaultAlertRateLimit)
	setDuration(&a.RatePeriod, has, "rate_period", defaultAlertRatePeriod)
}

func (v *validator) alerts(as []Alert) {
	seen := map[string]bool{}
	for i := range as {
		a := &as[i]
		k := indexKey("alert", i)
		v.name(k+".name", a.Name)
		if a.Name != "" && seen[a.Name] {
			v.addf(k+".name", "%q is defined twice", a.Name)
		}
		seen[a.Name] = true
		for j, e := range a.Events {
			if !slices.Contains(AlertClasses(), e) {
				v.addf(indexKey(k+".events", j), "%q is not an event class (one of %s)", e, strings.Join(AlertClasses(), ", "))
			}
		}
		// Keys of the other types are refused, not ignored: a mail
		// setting on a webhook is a mistake the operator wants to hear of.
		if !v.enum(k+".type", "alert type", a.Type, []string{"webhook", "mail", "program"}) {
			continue
		}
		for _, o := range alertTypeKeys {
			for _, key := range o.keys {
				if o.typ != a.Type && v.present[k+"."+key] {
					v.addf(k+"."+key, "is a %s setting; this alert is of type %q", o.typ, a.Type)
				}
			}
		}
		switch a.Type {
		case "webhook":
			v.alertURL(k+".url", a.URL)
		case "mail":
			v.alertMail(k, a)
		case "program":
			v.program(k+".command", a.Command)
		}
		if t := a.Timeout.Duration; t <= 0 || t > maxAlertTimeout {
			v.addf(k+".timeout", "%v is out of range (more than 0s, at most %v)", t, maxAlertTimeout)
		}
		v.intRange(k+".retries", a.Retries, 0, maxAlertRetries)
		if b := a.Backoff.Duration; b < 0 || b > AlertMaxBackoff {
			v.addf(k+".backoff", "%v is out of range (0s..%v)", b, AlertMaxBackoff)
		}
		if a.Dedup.Duration < 0 {
			v.addf(k+".dedup", "%v must not be negative (0 turns deduplication off)", a.Dedup.Duration)
		}
		v.intRange(k+".rate_limit", a.RateLimit, 0, 10000)
		if a.RateLimit > 0 && a.RatePeriod.Duration < time.Second {
			v.addf(k+".rate_period", "%v is too short (at least 1s; rate_limit = 0 turns the limit off)", a.RatePeriod.Duration)
		}
	}
}

// alertTypeKeys are the keys that belong to one alert type only.
var alertTypeKeys = []struct {
	typ  string
	keys []string
}{
	{"webhook", []string{"url", "secret"}},
	{"mail", []string{"smtp_server", "from", "to", "username", "password", "starttls", "helo_name"}},
	{"program", []string{"command"}},
}

func (v *validator) alertURL(key, s string) {
	if s == "" {
		v.addf(key, "is required for a webhook")
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.addf(key, "%q is not an http:// or https:// URL", s)
	}
}

func (v *validator) alertMail(k string, a *Alert) {
	if a.SMTPServer == "" {
		v.addf(k+".smtp_server", "is required for a mail alert (host:port of the relay)")
	} else if host, port, err := net.SplitHostPort(a.SMTPServer); err != nil || host == "" {
		v.addf(k+".smtp_server", "%q is not host:port", a.SMTPServer)
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		v.addf(k+".smtp_server", "%q: port %q is not 1..65535", a.SMTPServer, port)
	}
	mailbox := func(key, s string) {
		if ad, err := mail.ParseAddress(s); err != nil || ad.Name != "" {
			v.addf(key, "%q is not a bare mail address (user@domain)", s)
		}
	}
	if a.From == "" {
		v.addf(k+".from", "is required for a mail alert")
	} else {
		mailbox(k+".from", a.From)
	}
	if len(a.To) == 0 {
		v.addf(k+".to", "needs at least one recipient")
	}
	for j, to := range a.To {
		mailbox(indexKey(k+".to", j), to)
	}
	if a.Username != "" && a.StartTLS != nil && !*a.StartTLS {
		v.addf(k+".username", "needs starttls: the password would cross the network in clear")
	}
	if a.HeloName != "" && !safeHelo(a.HeloName) {
		v.addf(k+".helo_name", "%q is not a host name", a.HeloName)
	}
}

func safeHelo(s string) bool {
	if len(s) > 255 {
		return false
	}
	for _, r := range s {
		if !(r == '.' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}
