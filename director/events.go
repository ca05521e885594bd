package director

import (
	"log/slog"
	"sync"
	"time"

	"lbd/api"
)

// eventLog is a bounded ring of transitions with fan-out to subscribers.
// Slow subscribers lose events rather than stall the director.
type eventLog struct {
	mu     sync.Mutex
	size   int
	seq    uint64
	buf    []api.Event
	subs   map[chan api.Event]struct{}
	now    func() time.Time
	onDrop func()
	file   *eventFile // nil: memory only
}

func newEventLog(size int, now func() time.Time) *eventLog {
	return &eventLog{size: size, subs: map[chan api.Event]struct{}{}, now: now}
}

// persist loads the events kept in path and records new ones there.
func (l *eventLog) persist(path string, log *slog.Logger) error {
	ef, events, err := openEventFile(path, l.size, log)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.file = ef
	l.buf = append(events, l.buf...)
	if n := len(l.buf) - l.size; n > 0 {
		l.buf = l.buf[n:]
	}
	for _, ev := range events {
		l.seq = max(l.seq, ev.Seq)
	}
	return nil
}

func (l *eventLog) add(kind, subject, message string) api.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	ev := api.Event{Seq: l.seq, Time: l.now(), Kind: kind, Subject: subject, Message: message}
	if len(l.buf) >= l.size {
		copy(l.buf, l.buf[1:])
		l.buf = l.buf[:len(l.buf)-1]
	}
	l.buf = append(l.buf, ev)
	if l.file != nil {
		l.file.append(ev, l.buf, l.size)
	}
	for ch := range l.subs {
		select {
		case ch <- ev:
		default:
			if l.onDrop != nil {
				l.onDrop()
			}
		}
	}
	return ev
}

// since returns the retained events with Seq > seq, oldest first.
func (l *eventLog) since(seq uint64) []api.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []api.Event{}
	for _, ev := range l.buf {
		if ev.Seq > seq {
			out = append(out, ev)
		}
	}
	return out
}

func (l *eventLog) subscribe() (<-chan api.Event, func()) {
	ch := make(chan api.Event, 64)
	l.mu.Lock()
	l.subs[ch] = struct{}{}
	l.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.subs, ch)
			l.mu.Unlock()
			close(ch)
		})
	}
}
