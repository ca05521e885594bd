package config

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Peer names the other director of the pair: its console/API and an admin
// token of it. With it, this director's console and lbctl show both
// directors, flag configuration drift between them and can save an edit on
// both (see SharedDiff and MergeShared).
type Peer struct {
	// Name is how the console names the peer; default "peer".
	Name string `toml:"name"`
	// URL is the peer's console base URL (http:// or https://host:port).
	URL string `toml:"url"`
	// Token is an admin API token of the peer (`lbd token` there); or
	// TokenFile, a file holding it. Exactly one of the two.
	Token     string `toml:"token,omitempty"`
	TokenFile string `toml:"token_file,omitempty"`
	// TLSCA is a PEM file of the CA that signed an https peer's
	// certificate; default the system's roots.
	TLSCA string `toml:"tls_ca,omitempty"`
}

// Timings of the peer client: config decides them, the director only reads
// them.
const (
	// PeerPollInterval is how often the director reads the peer's status
	// and configuration.
	PeerPollInterval = 5 * time.Second
	// PeerRetryInterval is the poll interval while the peer does not
	// answer: it is seen back soon after it returns.
	PeerRetryInterval = 2 * time.Second
	// PeerTimeout bounds one read of the peer (connect and answer).
	PeerTimeout = 3 * time.Second
	// PeerPushTimeout bounds saving a configuration on the peer: it
	// validates, writes and applies it before answering.
	PeerPushTimeout = 15 * time.Second
	// PeerStaleAfter: the peer's data older than this is shown as stale,
	// never as live.
	PeerStaleAfter = 3 * PeerPollInterval
	// MaxPeerTokenLen bounds the token and the token file.
	MaxPeerTokenLen = 4096
	defaultPeerName = "peer"
)

func defaultPeer(p *Peer, has presence) {
	setString(&p.Name, has, "name", defaultPeerName)
}

func (v *validator) peer(p *Peer) {
	v.name("peer.name", p.Name)
	switch u, err := url.Parse(p.URL); {
	case p.URL == "":
		v.addf("peer.url", "is required: the peer's console URL, e.g. http://10.0.0.2:3636")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil:
		v.addf("peer.url", "%q is not an http:// or https:// URL of the peer's console (scheme://host:port)", p.URL)
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		v.addf("peer.url", "%q: give the console's base URL only (no path, query or fragment)", p.URL)
	case p.TLSCA != "" && u.Scheme != "https":
		v.addf("peer.tls_ca", "is only used with an https:// peer URL")
	}
	switch {
	case p.Token != "" && p.TokenFile != "":
		v.addf("peer.token_file", "set token or token_file, not both")
	case p.Token == "" && p.TokenFile == "":
		v.addf("peer.token", "is required (or token_file): an admin API token of the peer (`lbd token` on the peer)")
	case p.Token != "":
		v.peerToken("peer.token", p.Token)
	default:
		if !v.tooLong("peer.token_file", p.TokenFile, maxPathLen) {
			if tok, err := readPeerToken(p.TokenFile); err != nil {
				v.addf("peer.token_file", "%v", err)
			} else {
				v.peerToken("peer.token_file", tok)
			}
		}
	}
	if p.TLSCA != "" && !v.tooLong("peer.tls_ca", p.TLSCA, maxPathLen) {
		if _, err := PeerCAPool(p.TLSCA); err != nil {
			v.addf("peer.tls_ca", "%v", err)
		}
	}
}

func (v *validator) peerToken(key, tok string) {
	switch {
	case tok == "":
		v.addf(key, "the token is empty")
	case len(tok) > MaxPeerTokenLen:
		v.addf(key, "the token is %d bytes long; at most %d are allowed", len(tok), MaxPeerTokenLen)
	case strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r >= 0x7f }):
		v.addf(key, "the token holds spaces or control characters (copy it as `lbd token` printed it)")
	}
}

func readPeerToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read the token file: %v", err)
	}
	defer f.Close()
	b := make([]byte, MaxPeerTokenLen+2)
	n, _ := f.Read(b)
	tok := strings.TrimSpace(string(b[:n]))
	if len(tok) > MaxPeerTokenLen {
		return "", fmt.Errorf("%s holds more than %d bytes: is it the token file?", path, MaxPeerTokenLen)
	}
	return tok, nil
}

// ReadToken returns the peer token: Token, or TokenFile's content without
// surrounding white space (read again at every call, so a rotated file is
// used without a reload).
func (p *Peer) ReadToken() (string, error) {
	if p.Token != "" {
		return p.Token, nil
	}
	tok, err := readPeerToken(p.TokenFile)
	if err != nil {
		return "", fmt.Errorf("peer.token_file: %w", err)
	}
	if tok == "" {
		return "", fmt.Errorf("peer.token_file: %s is empty", p.TokenFile)
	}
	return tok, nil
}

// PeerCAPool loads a PEM CA file for the peer's TLS.
func PeerCAPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the CA file: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// FieldClass says how a setting behaves between the two directors of a
// pair.
type FieldClass int

const (
	// Shared settings must be equal on both directors: drift is flagged
	// and a save on both copies them.
	Shared FieldClass = iota
	// PerNode settings must (or may) differ between the directors: never
	// compared, and a save on both keeps the receiving director's own.
	PerNode
	// Hidden settings are shared secrets that never leave a director in
	// GET /api/v1/config: not compared, copied by a save on both, kept
	// when the saved document leaves them out.
	Hidden
)

// fieldClasses classifies every field of every configuration type,
// "Type.Field" (a type used in several places, VRRP, has one entry). The
// test TestEveryFieldClassified fails on a field missing here, so a new
// setting cannot be forgotten.
var fieldClasses = map[string]FieldClass{
	"Config.Global":                    Shared,
	"Global.NodeName":                  PerNode,
	"Global.Interface":                 PerNode,
	"Global.Forwarding":                Shared,
	"Global.Listen":                    PerNode,
	"Global.ResyncInterval":            Shared,
	"Global.RemoveGrace":               Shared,
	"Global.TCPTimeout":                Shared,
	"Global.TCPFinTimeout":             Shared,
	"Global.UDPTimeout":                Shared,
	"Config.Console":                   Shared,
	"Console.PasswordHash":             PerNode,
	"Console.TokenHashes":              PerNode,
	"Console.ReadTokenHashes":          PerNode,
	"Console.TLSCert":                  PerNode,
	"Console.TLSKey":                   PerNode,
	"Console.SessionTimeout":           Shared,
	"Console.MetricsAuth":              Shared,
	"Config.VRRP":                      Shared,
	"VRRP.Name":                        Shared,
	"VRRP.VRID":                        Shared,
	"VRRP.Priority":                    PerNode,
	"VRRP.AdvertInterval":              Shared,
	"VRRP.Version":                     Shared,
	"VRRP.Interface":                   PerNode,
	"VRRP.VIPs":                        Shared,
	"VRRP.UnicastPeers":                PerNode,
	"VRRP.UnicastSource":               PerNode,
	"VRRP.AllowedPeers":                PerNode,
	"VRRP.MaxLearnedInterval":          Shared,
	"VRRP.RTPriority":                  PerNode, // tunes this box's process
	"VRRP.LockMemory":                  PerNode,
	"VRRP.Preempt":                     Shared,
	"VRRP.PreemptDelay":                Shared,
	"VRRP.AuthPass":                    Shared,
	"VRRP.TrackInterfaces":             PerNode,
	"TrackInterface.Name":              PerNode,
	"TrackInterface.Weight":            PerNode,
	"VRRP.ServicePenalty":              Shared,
	"VRRP.GARPCount":                   Shared,
	"VRRP.GARPInterval":                Shared,
	"VRRP.GARPRefresh":                 Shared,
	"VRRP.Notify":                      PerNode,
	"VRRP.NotifyTimeout":               Shared,
	"Config.VRRPInstances":             Shared,
	"Config.VRRPSyncGroups":            Shared,
	"VRRPSyncGroup.Name":               Shared,
	"VRRPSyncGroup.Instances":          Shared,
	"Config.Sync":                      Shared,
	"Sync.Enabled":                     Shared,
	"Sync.Interface":                   PerNode,
	"Sync.ID":                          Shared,
	"Sync.Group":                       Shared,
	"Sync.Group6":                      Shared,
	"Sync.Port":                        Shared,
	"Sync.TTL":                         Shared,
	"Sync.MaxPacketLen":                Shared,
	"Sync.RefreshPeriod":               Shared,
	"Sync.WarmUp":                      Shared,
	"Sync.HandoverHold":                Shared,
	"Sync.TakeoverQuiet":               Shared,
	"Config.BGP":                       Shared,
	"BGP.LocalASN":                     Shared,
	"BGP.RouterID":                     PerNode,
	"BGP.VIPs":                         Shared,
	"BGP.Communities":                  Shared,
	"BGP.MED":                          Shared,
	"BGP.LocalPref":                    Shared,
	"BGP.Neighbors":                    Shared,
	"BGPNeighbor.Address":              Shared,
	"BGPNeighbor.ASN":                  Shared,
	"BGPNeighbor.Port":                 Shared,
	"BGPNeighbor.HoldTime":             Shared,
	"BGPNeighbor.ConnectRetry":         Shared,
	"BGPNeighbor.Password":             Shared,
	"BGPNeighbor.BFD":                  Shared,
	"Config.VirtualServers":            Shared,
	"VirtualServer.Name":               Shared,
	"VirtualServer.VIP":                Shared,
	"VirtualServer.Port":               Shared,
	"VirtualServer.Protocol":           Shared,
	"VirtualServer.Fwmark":             Shared,
	"VirtualServer.Family":             Shared,
	"VirtualServer.Scheduler":          Shared,
	"VirtualServer.SchedulerFlags":     Shared,
	"VirtualServer.Persistence":        Shared,
	"VirtualServer.PersistenceNetmask": Shared,
	"VirtualServer.Forwarding":         Shared,
	"VirtualServer.Active":             Shared,
	"VirtualServer.Quorum":             Shared,
	"VirtualServer.OnFailure":          Shared,
	"VirtualServer.SorryServer":        Shared,
	"VirtualServer.HealthCheck":        Shared,
	"HealthCheck.Type":                 Shared,
	"HealthCheck.Address":              Shared,
	"HealthCheck.Port":                 Shared,
	"HealthCheck.Interval":             Shared,
	"HealthCheck.Timeout":              Shared,
	"HealthCheck.Rise":                 Shared,
	"HealthCheck.Fall":                 Shared,
	"HealthCheck.Method":               Shared,
	"HealthCheck.Path":                 Shared,
	"HealthCheck.Host":                 Shared,
	"HealthCheck.SNI":                  Shared,
	"HealthCheck.ExpectStatus":         Shared,
	"HealthCheck.ExpectBody":           Shared,
	"HealthCheck.TLSVerify":            Shared,
	"HealthCheck.Send":                 Shared,
	"HealthCheck.Expect":               Shared,
	"HealthCheck.Command":              Shared,
	"HealthCheck.QueryName":            Shared,
	"HealthCheck.QueryType":            Shared,
	"HealthCheck.DNSTransport":         Shared,
	"HealthCheck.ExpectRcode":          Shared,
	"HealthCheck.ExpectAnswer":         Shared,
	"HealthCheck.HeloName":             PerNode,
	"HealthCheck.StartTLS":             Shared,
	"HealthCheck.ThroughVIP":           Shared,
	"VirtualServer.RealServers":        Shared,
	"RealServer.Name":                  Shared,
	"RealServer.Address":               Shared,
	"RealServer.Port":                  Shared,
	"RealServer.Weight":                Shared,
	"RealServer.Forwarding":            Shared,
	"RealServer.Active":                Shared,
	"RealServer.Drained":               Shared,
	"Config.Alerts":                    Shared,
	"Alert.Name":                       Shared,
	"Alert.Type":                       Shared,
	"Alert.Events":                     Shared,
	"Alert.URL":                        Shared,
	"Alert.Secret":                     Hidden,
	"Alert.SMTPServer":                 Shared,
	"Alert.From":                       Shared,
	"Alert.To":                         Shared,
	"Alert.Username":                   Shared,
	"Alert.Password":                   Hidden,
	"Alert.StartTLS":                   Shared,
	"Alert.HeloName":                   PerNode,
	"Alert.Command":                    Shared,
	"Alert.Timeout":                    Shared,
	"Alert.Retries":                    Shared,
	"Alert.Backoff":                    Shared,
	"Alert.Dedup":                      Shared,
	"Alert.RateLimit":                  Shared,
	"Alert.RatePeriod":                 Shared,
	"Config.Peer":                      PerNode,
	"Peer.Name":                        PerNode,
	"Peer.URL":                         PerNode,
	"Peer.Token":                       PerNode,
	"Peer.TokenFile":                   PerNode,
	"Peer.TLSCA":                       PerNode,
}

// valueMasked are shared settings compared like the others whose values a
// drift report must not print.
var valueMasked = map[string]bool{"VRRP.AuthPass": true, "BGPNeighbor.Password": true}

// ClassOf returns the class of the field "Type.Field" and whether it is
// classified.
func ClassOf(typeField string) (FieldClass, bool) {
	c, ok := fieldClasses[typeField]
	return c, ok
}

// PerNodeKeys lists the per-node settings as "Type.Field", for the
// documentation and the console.
func PerNodeKeys() []string {
	var out []string
	for k, c := range fieldClasses {
		if c == PerNode {
			out = append(out, k)
		}
	}
	return out
}

// DecodeUnvalidated decodes a configuration and fills its defaults like
// Parse, reporting syntax and type problems but not validating it: for a
// peer's configuration (its files are not on this box) and for a document
// merged with MergeShared before it is validated as a whole.
func DecodeUnvalidated(name string, data []byte) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("config: %s has more than %d bytes", name, MaxFileSize)
	}
	ctx := context.Background()
	c, col, _, err := decodeDefaults(ctx, name, data)
	if err != nil {
		return nil, err
	}
	return finish(ctx, c, col, name)
}

// DiffEntry is one shared setting that differs between two directors.
type DiffEntry struct {
	// Key is the dotted path, with list elements named by their name:
	// virtual_server["web"].real_server["rs1"].weight.
	Key string `json:"key"`
	// Local and Peer are the two values as text; "(absent)" for an
	// element or table one side does not have, "(hidden)" for a value
	// not shown.
	Local string `json:"local"`
	Peer  string `json:"peer"`
}

const (
	absent = "(absent)"
	masked = "(hidden)"
	unset  = "(not set)"
)

// SharedDiff lists the shared settings in which local and peer (both
// resolved) differ, in document order: per-node and hidden settings are
// left out.
func SharedDiff(local, peer *Config) []DiffEntry {
	var out []DiffEntry
	diffStruct(&out, "", reflect.ValueOf(local).Elem(), reflect.ValueOf(peer).Elem())
	return out
}

func diffStruct(out *[]DiffEntry, path string, a, b reflect.Value) {
	t := a.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := tomlName(f)
		if name == "" {
			continue
		}
		tf := t.Name() + "." + f.Name
		if c := fieldClasses[tf]; c != Shared {
			continue
		}
		diffValue(out, joinKey(path, name), tf, a.Field(i), b.Field(i))
	}
}

func isStructType(t reflect.Type) bool { return t.Kind() == reflect.Struct && t != durationType }

func diffValue(out *[]DiffEntry, path, tf string, a, b reflect.Value) {
	t := a.Type()
	switch {
	case isStructType(t):
		diffStruct(out, path, a, b)
	case t.Kind() == reflect.Pointer && isStructType(t.Elem()):
		switch {
		case a.IsNil() && b.IsNil():
		case a.IsNil():
			*out = append(*out, DiffEntry{Key: path, Local: absent, Peer: "(set)"})
		case b.IsNil():
			*out = append(*out, DiffEntry{Key: path, Local: "(set)", Peer: absent})
		default:
			diffStruct(out, path, a.Elem(), b.Elem())
		}
	case t.Kind() == reflect.Slice && isStructType(t.Elem()):
		diffList(out, path, a, b)
	default:
		if reflect.DeepEqual(a.Interface(), b.Interface()) {
			return
		}
		e := DiffEntry{Key: path, Local: text(a), Peer: text(b)}
		if valueMasked[tf] {
			e.Local, e.Peer = masked, masked
		}
		*out = append(*out, e)
	}
}

// elemKey names a list element: by its name, else its address, else its
// position.
func elemKey(v reflect.Value, i int) string {
	for _, f := range []string{"Name", "Address"} {
		if fv := v.FieldByName(f); fv.IsValid() && fv.Kind() == reflect.String && fv.String() != "" {
			return strconv.Quote(fv.String())
		}
	}
	return strconv.Itoa(i)
}

func diffList(out *[]DiffEntry, path string, a, b reflect.Value) {
	bIdx := map[string]int{}
	for j := 0; j < b.Len(); j++ {
		bIdx[elemKey(b.Index(j), j)] = j
	}
	seen := map[string]bool{}
	for i := 0; i < a.Len(); i++ {
		k := elemKey(a.Index(i), i)
		seen[k] = true
		p := path + "[" + k + "]"
		j, ok := bIdx[k]
		if !ok {
			*out = append(*out, DiffEntry{Key: p, Local: "(set)", Peer: absent})
			continue
		}
		diffStruct(out, p, a.Index(i), b.Index(j))
	}
	for j := 0; j < b.Len(); j++ {
		if k := elemKey(b.Index(j), j); !seen[k] {
			*out = append(*out, DiffEntry{Key: path + "[" + k + "]", Local: absent, Peer: "(set)"})
		}
	}
}

func text(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return unset
		}
		v = v.Elem()
	}
	switch x := v.Interface().(type) {
	case Duration:
		return x.String()
	case string:
		return strconv.Quote(x)
	case []string:
		q := make([]string, len(x))
		for i, s := range x {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	return fmt.Sprint(v.Interface())
}

// MergeShared returns incoming (another director's configuration) with
// own's per-node settings: what a director saves when the peer sends its
// shared configuration. Elements of lists are matched by name (or address,
// or position); an element own does not have keeps incoming's per-node
// values. Hidden settings incoming leaves empty are kept from own. Neither
// argument is changed.
func MergeShared(own, incoming *Config) *Config {
	res := incoming.Clone()
	res.Path = own.Path
	mergeStruct(reflect.ValueOf(res).Elem(), reflect.ValueOf(own).Elem())
	// A new smtp check's helo_name defaulted to the sender's node name:
	// here it defaults to this director's.
	for i := range res.VirtualServers {
		if hc := res.VirtualServers[i].HealthCheck; hc != nil && hc.HeloName != "" && hc.HeloName == incoming.Global.NodeName {
			hc.HeloName = own.Global.NodeName
		}
	}
	return res
}

func mergeStruct(dst, src reflect.Value) {
	t := dst.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tomlName(f) == "" {
			continue
		}
		d, s := dst.Field(i), src.Field(i)
		switch fieldClasses[t.Name()+"."+f.Name] {
		case PerNode:
			d.Set(cloneValue(s))
			continue
		case Hidden:
			if d.IsZero() {
				d.Set(cloneValue(s))
			}
			continue
		}
		ft := f.Type
		switch {
		case isStructType(ft):
			mergeStruct(d, s)
		case ft.Kind() == reflect.Pointer && isStructType(ft.Elem()):
			if !d.IsNil() && !s.IsNil() {
				mergeStruct(d.Elem(), s.Elem())
			}
		case ft.Kind() == reflect.Slice && isStructType(ft.Elem()):
			idx := map[string]int{}
			for j := 0; j < s.Len(); j++ {
				idx[elemKey(s.Index(j), j)] = j
			}
			for j := 0; j < d.Len(); j++ {
				if k, ok := idx[elemKey(d.Index(j), j)]; ok {
					mergeStruct(d.Index(j), s.Index(k))
				}
			}
		}
	}
}

// cloneValue deep-copies a value of the configuration types (pointers,
// slices and structs of plain values).
func cloneValue(v reflect.Value) reflect.Value {
	out := reflect.New(v.Type()).Elem()
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			p := reflect.New(v.Type().Elem())
			p.Elem().Set(cloneValue(v.Elem()))
			out.Set(p)
		}
	case reflect.Slice:
		if !v.IsNil() {
			s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
			for i := 0; i < v.Len(); i++ {
				s.Index(i).Set(cloneValue(v.Index(i)))
			}
			out.Set(s)
		}
	case reflect.Struct:
		out.Set(v)
		for i := 0; i < v.NumField(); i++ {
			if out.Field(i).CanSet() {
				out.Field(i).Set(cloneValue(v.Field(i)))
			}
		}
	default:
		out.Set(v)
	}
	return out
}

// SharedVersion identifies c's shared settings: equal on two directors
// whose configurations agree (SharedDiff is empty), whatever their
// per-node settings.
func SharedVersion(c *Config) string {
	s := c.Clone()
	stripNode(reflect.ValueOf(s).Elem())
	s.Path = ""
	data, err := Encode(s)
	if err != nil {
		return ""
	}
	return Version(data)
}

// stripNode zeroes the per-node and hidden settings of v.
func stripNode(v reflect.Value) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tomlName(f) == "" {
			continue
		}
		fv := v.Field(i)
		if c := fieldClasses[t.Name()+"."+f.Name]; c != Shared {
			fv.SetZero()
			continue
		}
		switch ft := f.Type; {
		case isStructType(ft):
			stripNode(fv)
		case ft.Kind() == reflect.Pointer && isStructType(ft.Elem()):
			if !fv.IsNil() {
				stripNode(fv.Elem())
			}
		case ft.Kind() == reflect.Slice && isStructType(ft.Elem()):
			for j := 0; j < fv.Len(); j++ {
				stripNode(fv.Index(j))
			}
		}
	}
}
