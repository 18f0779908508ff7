package bench

import (
	"fmt"
	"html"
	"io"
	"strings"
)

// chartRows are the throughput figures the chart compares.
var chartRows = []struct{ id, label string }{
	{"rr1.rate", "request/response, 1 in flight"},
	{"rr64.rate", "request/response, 64 in flight"},
	{"rr64async.rate", "64 in flight, RequestAsyncLent"},
	{"publish.rate", "publish into the sink"},
	{"receipts.rate", "publish with receipts"},
	{"delivery.rate", "delivery to a Handler"},
}

// WriteSVG writes a horizontal bar chart of the throughput figures: for
// each scenario a bar for the raw loop, this library and the compared
// client, as a share of the raw loop, labelled with the figure.
func (r *Report) WriteSVG(w io.Writer) error {
	const (
		width    = 860
		left     = 250 // scenario labels
		barMax   = 470 // bar length of the largest share shown
		barH     = 16
		gap      = 4
		groupGap = 18
		top      = 56
	)
	series := []struct {
		name, color string
		value       func(*Row) *float64
	}{
		{"raw loop (ceiling)", "#9e9e9e", func(r *Row) *float64 { return r.Raw }},
		{"pulsarconn", "#1f77b4", func(r *Row) *float64 { return r.Library }},
	}
	if r.OtherClient != "" {
		series = append(series, struct {
			name, color string
			value       func(*Row) *float64
		}{r.OtherClient, "#ff7f0e", func(r *Row) *float64 { return r.Other }})
	}
	// The scale: the largest share of raw among the bars, at least 1.
	scale := 1.0
	for _, cr := range chartRows {
		row := r.Row(cr.id)
		if row == nil || row.Raw == nil || *row.Raw == 0 {
			continue
		}
		for _, s := range series {
			if v := s.value(row); v != nil {
				scale = max(scale, *v / *row.Raw)
			}
		}
	}
	groupH := len(series)*(barH+gap) + groupGap
	height := top + len(chartRows)*groupH + 40
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="15" font-weight="bold">Throughput as a share of the raw loop (%s, GOMAXPROCS %d, loopback TCP)</text>`+"\n",
		html.EscapeString(r.GoVersion), r.GOMAXPROCS)
	x := 10
	for _, s := range series {
		fmt.Fprintf(&b, `<rect x="%d" y="30" width="12" height="12" fill="%s"/><text x="%d" y="40">%s</text>`+"\n", x, s.color, x+16, html.EscapeString(s.name))
		x += 24 + 7*len(s.name)
	}
	y := top
	for _, cr := range chartRows {
		row := r.Row(cr.id)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-8, y+barH+4, html.EscapeString(cr.label))
		for i, s := range series {
			by := y + i*(barH+gap)
			var v *float64
			if row != nil {
				v = s.value(row)
			}
			if v == nil || row.Raw == nil || *row.Raw == 0 {
				fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#777">not measured</text>`+"\n", left+4, by+barH-4)
				continue
			}
			share := *v / *row.Raw
			l := int(share / scale * barMax)
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", left, by, max(l, 1), barH, s.color)
			fmt.Fprintf(&b, `<text x="%d" y="%d">%s %s (%.0f%%)</text>`+"\n", left+max(l, 1)+6, by+barH-4,
				cell(v, row.Unit), html.EscapeString(row.Unit), share*100)
		}
		y += groupH
	}
	// The raw line: 100%.
	rawX := left + int(barMax/scale)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#444" stroke-dasharray="4 3"/>`+"\n", rawX, top-6, rawX, y-groupGap+6)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#444">raw = 100%%</text>`+"\n", rawX, y-groupGap+20)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
