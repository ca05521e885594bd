package director

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"lbd/api"
	"lbd/config"
)

// The event log survives a restart in a file of JSON lines: each event is
// appended as it happens, and once the file holds twice the log's size it
// is rewritten (atomically) with the newest half. A start reads the newest
// events back and numbers on from the last one, so a console or lbctl that
// follows by sequence number sees no repeats.

// maxEventFile bounds what a start reads: a file grown by hand (or by
// another program) costs at most this much memory and time.
const maxEventFile = 8 << 20

type eventFile struct {
	path    string
	f       *os.File
	lines   int // events in the file
	log     *slog.Logger
	failing bool // an error was logged; the next success is logged too
}

// openEventFile loads up to size events from path and opens it for
// appending. A missing file is an empty log; malformed lines are skipped.
func openEventFile(path string, size int, log *slog.Logger) (*eventFile, []api.Event, error) {
	ef := &eventFile{path: path, log: log}
	events, lines, err := readEventFile(path, size)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, err
	}
	ef.f, ef.lines = f, lines
	return ef, events, nil
}

func readEventFile(path string, size int) ([]api.Event, int, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > maxEventFile {
		// Read the newest part only.
		if _, err := f.Seek(-maxEventFile, io.SeekEnd); err != nil {
			return nil, 0, err
		}
	}
	var out []api.Event
	lines := 0
	sc := bufio.NewScanner(io.LimitReader(f, maxEventFile))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		lines++
		var ev api.Event
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Seq == 0 {
			continue // a torn last line, or the partial first line of a seek
		}
		out = append(out, ev)
		if len(out) > size {
			out = out[1:]
		}
	}
	// A line too long for the scanner ends the read; what came before stays.
	return out, lines, nil
}

// append writes ev; past 2*size lines the file is rewritten with retained.
func (ef *eventFile) append(ev api.Event, retained []api.Event, size int) {
	b, err := json.Marshal(ev)
	if err == nil {
		_, err = ef.f.Write(append(b, '\n'))
	}
	ef.lines++
	if err == nil && ef.lines >= 2*size {
		err = ef.compact(retained)
	}
	switch {
	case err != nil && !ef.failing:
		ef.failing = true
		ef.log.Error("event log file: events are kept in memory only", "file", ef.path, "err", err)
	case err == nil && ef.failing:
		ef.failing = false
		ef.log.Info("event log file: writing again", "file", ef.path)
	}
}

func (ef *eventFile) compact(retained []api.Event) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, ev := range retained {
		if err := enc.Encode(ev); err != nil {
			return err
		}
	}
	if err := config.WriteFileAtomic(ef.path, buf.Bytes(), 0o600); err != nil {
		return err
	}
	f, err := os.OpenFile(ef.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	ef.f.Close()
	ef.f, ef.lines = f, len(retained)
	return nil
}

func (ef *eventFile) close() { ef.f.Close() }
