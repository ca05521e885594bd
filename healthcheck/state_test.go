package healthcheck

import "testing"

// Patterns: 'o' = success, 'x' = failure. want has one letter per step:
// '?' unknown, 'U' up, 'D' down.
func TestTrackerPatterns(t *testing.T) {
	cases := []struct {
		name       string
		rise, fall int
		pattern    string
		want       string
	}{
		{"first success is up at once", 2, 3, "o", "U"},
		{"failures from unknown need fall", 2, 3, "xxx", "??D"},
		{"unknown then success", 2, 3, "xxo", "??U"},
		{"isolated failures never take it down", 2, 3, "oxxoxxoxx", "UUUUUUUUU"},
		{"fall consecutive failures", 2, 3, "oxxx", "UUUD"},
		{"rise consecutive successes to return", 2, 3, "oxxxoo", "UUUDDU"},
		{"flapping while down stays down", 2, 3, "oxxxoxoxox", "UUUDDDDDDD"},
		{"flapping while up stays up", 2, 3, "oxoxoxox", "UUUUUUUU"},
		{"rise 1 fall 1 follows every result", 1, 1, "oxoxxoo", "UDUDDUU"},
		{"rise 3", 3, 2, "oxxooxooo", "UUDDDDDDU"},
		{"down again after coming back", 2, 2, "oxxooxx", "UUDDUUD"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := tracker{rise: c.rise, fall: c.fall}
			got := make([]byte, 0, len(c.pattern))
			prev := tr.state
			for i := 0; i < len(c.pattern); i++ {
				changed := tr.observe(c.pattern[i] == 'o')
				if changed != (tr.state != prev) {
					t.Fatalf("step %d: changed=%v but state %v -> %v", i, changed, prev, tr.state)
				}
				prev = tr.state
				got = append(got, "?UD"[tr.state])
			}
			if string(got) != c.want {
				t.Errorf("pattern %s (rise %d fall %d): got %s, want %s", c.pattern, c.rise, c.fall, got, c.want)
			}
		})
	}
}
