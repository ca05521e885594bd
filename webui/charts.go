package webui

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"lbd/api"
)

// Charts are drawn on the server as inline SVG: no script, no charting
// library, nothing for the Content-Security-Policy to allow, and the live
// status fragment redraws them with everything else. Colours come from
// app.css classes.

const (
	chartW, chartH = 240, 44
	chartPad       = 2
	chartBucket    = 2 // pixels per line vertex
	// chartMinSpan is the narrowest window a chart shows: a young
	// history fills it from the right, then the window widens with the
	// history (up to its hour), so a new director's graphs are readable
	// after a minute, not a sliver at the edge of an empty hour.
	chartMinSpan = 10 * time.Minute
)

// chartSet draws a history's three figures side by side, each with the
// window's transitions marked.
func chartSet(h api.History) template.HTML {
	if len(h.Points) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(`<div class="charts">`)
	for _, m := range []struct {
		title string
		value func(api.HistoryPoint) float64
		unit  func(float64) string
	}{
		{"conn/s", func(p api.HistoryPoint) float64 { return p.CPS }, siFloat},
		{"active connections", func(p api.HistoryPoint) float64 { return p.ActiveConns }, siFloat},
		{"bytes/s", func(p api.HistoryPoint) float64 { return p.BPS }, bytesFloat},
	} {
		chart(&b, h, m.title, m.value, m.unit)
	}
	b.WriteString(`</div>`)
	return template.HTML(b.String())
}

func chart(b *strings.Builder, h api.History, title string, value func(api.HistoryPoint) float64, unit func(float64) string) {
	end := h.Points[len(h.Points)-1].Time
	span := time.Duration(len(h.Points)) * h.Step
	if span < chartMinSpan {
		span = chartMinSpan // the window fills from the right
	}
	start := end.Add(-span)
	peak := 0.0
	for _, p := range h.Points {
		peak = max(peak, value(p))
	}
	scale := peak
	if scale == 0 {
		scale = 1
	}
	x := func(t time.Time) float64 {
		return chartPad + float64(chartW-2*chartPad)*float64(t.Sub(start))/float64(span)
	}
	y := func(v float64) float64 {
		return chartH - chartPad - float64(chartH-2*chartPad)*v/scale
	}
	last := value(h.Points[len(h.Points)-1])
	fmt.Fprintf(b, `<figure class="chart"><figcaption>%s <b>%s</b> <span class="muted">peak %s</span></figcaption>`,
		html.EscapeString(title), unit(last), unit(peak))
	fmt.Fprintf(b, `<svg viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s over the last %s">`,
		chartW, chartH, chartW, chartH, html.EscapeString(title), strings.TrimSuffix(strings.TrimSuffix(span.Round(time.Minute).String(), "0s"), "0m"))
	for _, m := range h.Marks {
		if m.Time.Before(start) {
			continue
		}
		mx := x(m.Time)
		fmt.Fprintf(b, `<line class="mark %s" x1="%.1f" x2="%.1f" y1="0" y2="%d"><title>%s %s %s: %s</title></line>`,
			markClass(m), mx, mx, chartH, m.Time.Format("15:04:05"), html.EscapeString(m.Kind),
			html.EscapeString(m.Subject), html.EscapeString(m.Message))
	}
	b.WriteString(`<polyline class="line" points="`)
	// One vertex per chartBucket pixels, the bucket's peak: a spike stays
	// visible and the page stays small (the status page redraws every
	// service's charts every few seconds).
	var prev time.Time
	bucket, peakIn := -1, 0.0
	flush := func() {
		if bucket >= 0 {
			fmt.Fprintf(b, "%d,%.1f ", bucket*chartBucket+chartBucket/2, y(peakIn))
		}
	}
	for i, p := range h.Points {
		// A gap (lbd was busy or the series is new) breaks the line.
		if i > 0 && p.Time.Sub(prev) > 3*h.Step {
			flush()
			bucket = -1
			b.WriteString(`"/><polyline class="line" points="`)
		}
		prev = p.Time
		if bk := int(x(p.Time)) / chartBucket; bk != bucket {
			flush()
			bucket, peakIn = bk, value(p)
		} else {
			peakIn = max(peakIn, value(p))
		}
	}
	flush()
	b.WriteString(`"/></svg></figure>`)
}

// markClass colours a transition: a failure, a recovery, or VRRP.
func markClass(ev api.Event) string {
	switch {
	case ev.Kind == "vrrp":
		return "mark-vrrp"
	case strings.HasPrefix(ev.Message, "down") || strings.HasPrefix(ev.Message, "below"):
		return "mark-down"
	default:
		return "mark-up"
	}
}

func siFloat(v float64) string {
	if v < 1000 {
		if v == math.Trunc(v) {
			return fmt.Sprintf("%.0f", v)
		}
		return fmt.Sprintf("%.1f", v)
	}
	return siUnits(v, 1000, []string{"k", "M", "G", "T"}, "")
}

func bytesFloat(v float64) string {
	if v < 1024 {
		return fmt.Sprintf("%.0f B", v)
	}
	return siUnits(v, 1024, []string{"KiB", "MiB", "GiB", "TiB"}, " ")
}

func siUnits(v, base float64, units []string, sep string) string {
	u := -1
	for v >= base && u < len(units)-1 {
		v /= base
		u++
	}
	return fmt.Sprintf("%.1f%s%s", v, sep, units[u])
}

// history serves GET /api/v1/services/:vs/history and
// /api/v1/services/:vs/real/:rs/history.
func (s *Server) apiHistory(c *gin.Context) {
	vs, rs := c.Param("vs"), c.Param("rs")
	if _, _, err := s.findStatus(vs, rs); err != nil {
		s.apiError(c, err)
		return
	}
	h, ok := s.d.History(vs, rs)
	if !ok {
		h = api.History{Points: []api.HistoryPoint{}, Marks: []api.Event{}}
	}
	c.JSON(http.StatusOK, h)
}

// charts returns the chart set of vs (rs == "") or vs/rs, "" without one.
func (s *Server) charts(vs, rs string) template.HTML {
	h, ok := s.d.History(vs, rs)
	if !ok {
		return ""
	}
	return chartSet(h)
}
