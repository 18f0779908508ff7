package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the result of a run: one Row per figure. The JSON form is
// what `pulsarconn bench --json` writes and what another client's
// benchmark writes for --compare (with only Other set).
type Report struct {
	Date       string `json:"date"`
	GoVersion  string `json:"go_version"`
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	// Duration is each measured loop's length.
	Duration string `json:"duration"`
	// Rounds is how many alternating turns each loop's Duration was
	// split into; 0 or 1: one.
	Rounds int `json:"rounds,omitempty"`
	// OtherClient names the client in the Other column, when merged.
	OtherClient string `json:"other_client,omitempty"`
	Rows        []Row  `json:"rows"`
}

// Row is one figure, for the raw loop, this library and, when merged,
// another client.
type Row struct {
	// ID names the figure for tools and for merging, e.g. "rr64.rate".
	ID       string `json:"id"`
	Scenario string `json:"scenario"`
	Metric   string `json:"metric"`
	Unit     string `json:"unit"`
	// HigherIsBetter says which way the figure improves.
	HigherIsBetter bool     `json:"higher_is_better"`
	Raw            *float64 `json:"raw,omitempty"`
	Library        *float64 `json:"library,omitempty"`
	Other          *float64 `json:"other,omitempty"`
	// LibraryVsRaw is Library/Raw, LibraryVsOther Library/Other.
	LibraryVsRaw   *float64 `json:"library_vs_raw,omitempty"`
	LibraryVsOther *float64 `json:"library_vs_other,omitempty"`
	// RawPulsartest and LibraryPulsartest are the same figures against
	// the second server (pulsartest in another process), when run;
	// LibraryVsRawPulsartest is their ratio.
	RawPulsartest          *float64 `json:"raw_pulsartest,omitempty"`
	LibraryPulsartest      *float64 `json:"library_pulsartest,omitempty"`
	LibraryVsRawPulsartest *float64 `json:"library_vs_raw_pulsartest,omitempty"`
	// InstructionsVsRaw is the library's instructions per operation over
	// the raw loop's, when counted (nil: not counted); SetInstructions
	// fills it.
	InstructionsVsRaw *float64 `json:"instructions_vs_raw,omitempty"`
	// InstructionsVsRawPulsartest is the same against the second server,
	// when counted there.
	InstructionsVsRawPulsartest *float64 `json:"instructions_vs_raw_pulsartest,omitempty"`
}

// NewReport returns an empty report describing this process; another
// client's benchmark fills it with AddOther.
func NewReport(d time.Duration) *Report {
	return &Report{
		Date:       time.Now().UTC().Format(time.RFC3339),
		GoVersion:  runtime.Version(),
		GOOS:       runtime.GOOS,
		GOARCH:     runtime.GOARCH,
		NumCPU:     runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		Duration:   d.String(),
	}
}

func newReport(o Options) *Report {
	r := NewReport(o.Duration)
	r.Rounds = o.Rounds
	return r
}

// ratio returns a/b; none when b is below 0.01, as for the allocations
// of a loop that makes none, whose ratio would be noise (80x of 0.00).
func ratio(a, b *float64) *float64 {
	if a == nil || b == nil || *b < 0.01 {
		return nil
	}
	return ptr(*a / *b)
}

func (r *Report) add(row Row) {
	row.LibraryVsRaw = ratio(row.Library, row.Raw)
	row.LibraryVsOther = ratio(row.Library, row.Other)
	r.Rows = append(r.Rows, row)
}

// Row returns the row with id, or nil.
func (r *Report) Row(id string) *Row {
	for i := range r.Rows {
		if r.Rows[i].ID == id {
			return &r.Rows[i]
		}
	}
	return nil
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func (r *Report) addRequests(inflight int, raw, lib Throughput, rawAllocs, libAllocs float64) {
	r.addRequestRows(fmt.Sprintf("rr%d", inflight), fmt.Sprintf("request/response, %d in flight", inflight), raw, lib, rawAllocs, libAllocs)
}

// addAsyncRequests records the RequestAsync loop, against the same raw
// figures as the blocking one.
func (r *Report) addAsyncRequests(inflight int, raw, lib Throughput, rawAllocs, libAllocs float64) {
	r.addRequestRows(fmt.Sprintf("rr%dasync", inflight), fmt.Sprintf("request/response, %d in flight, RequestAsyncLent from one goroutine", inflight), raw, lib, rawAllocs, libAllocs)
}

func (r *Report) addRequestRows(id, scen string, raw, lib Throughput, rawAllocs, libAllocs float64) {
	r.add(Row{ID: id + ".rate", Scenario: scen, Metric: "PARTITIONED_METADATA", Unit: "requests/s", HigherIsBetter: true,
		Raw: ptr(raw.PerSecond()), Library: ptr(lib.PerSecond())})
	for _, q := range []struct {
		name string
		q    float64
	}{{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}} {
		r.add(Row{ID: id + "." + q.name, Scenario: scen, Metric: q.name + " latency", Unit: "µs",
			Raw: ptr(micros(raw.Latency.Quantile(q.q))), Library: ptr(micros(lib.Latency.Quantile(q.q)))})
	}
	r.add(Row{ID: id + ".allocs", Scenario: scen, Metric: "heap allocations", Unit: "allocs/op",
		Raw: ptr(rawAllocs), Library: ptr(libAllocs)})
}

func (r *Report) addPublish(raw, lib Throughput, rawAllocs, libAllocs float64) {
	const scen = "publish of pre-encoded 1 KiB SEND frames into the sink"
	r.add(Row{ID: "publish.rate", Scenario: scen, Metric: "PublishMessage", Unit: "frames/s", HigherIsBetter: true,
		Raw: ptr(raw.PerSecond()), Library: ptr(lib.PerSecond())})
	r.add(Row{ID: "publish.mbps", Scenario: scen, Metric: "throughput", Unit: "MB/s", HigherIsBetter: true,
		Raw: ptr(raw.MBPerSecond()), Library: ptr(lib.MBPerSecond())})
	r.add(Row{ID: "publish.allocs", Scenario: scen, Metric: "heap allocations", Unit: "allocs/op",
		Raw: ptr(rawAllocs), Library: ptr(libAllocs)})
}

func (r *Report) addRate(id, scen, unit string, raw, lib Throughput, rawAllocs, libAllocs float64) {
	r.add(Row{ID: id + ".rate", Scenario: scen, Metric: "rate", Unit: unit, HigherIsBetter: true,
		Raw: ptr(raw.PerSecond()), Library: ptr(lib.PerSecond())})
	r.add(Row{ID: id + ".allocs", Scenario: scen, Metric: "heap allocations", Unit: "allocs/op",
		Raw: ptr(rawAllocs), Library: ptr(libAllocs)})
}

func (r *Report) addIdle(m IdleMemory) {
	scen := fmt.Sprintf("memory per idle connection (%d, in memory)", m.Conns)
	r.add(Row{ID: "idle.total", Scenario: scen, Metric: "both sides, pipe included", Unit: "bytes",
		Raw: ptr(m.Raw), Library: ptr(m.Library)})
	r.add(Row{ID: "idle.client", Scenario: scen, Metric: "the Broker's own share", Unit: "bytes",
		Library: ptr(m.Client())})
}

func (r *Report) addReconnect(rc Reconnect) {
	r.add(Row{ID: "reconnect.time", Scenario: fmt.Sprintf("reconnect after the server drops %d connections", rc.Conns),
		Metric: "drop to all connected", Unit: "ms",
		Raw: ptr(float64(rc.Raw) / float64(time.Millisecond)), Library: ptr(float64(rc.Library) / float64(time.Millisecond))})
}

// AddOther records another client's figure for row id (and the row's
// description, for a report that holds only another client's figures).
func (r *Report) AddOther(row Row, value float64) {
	row.Raw, row.Library, row.LibraryVsRaw, row.LibraryVsOther = nil, nil, nil, nil
	row.Other = ptr(value)
	r.Rows = append(r.Rows, row)
}

// Merge takes the Other figures of o (another client's report) into r's
// rows of the same id and names the client.
func (r *Report) Merge(o *Report) {
	r.OtherClient = o.OtherClient
	for _, or := range o.Rows {
		if or.Other == nil {
			continue
		}
		if row := r.Row(or.ID); row != nil {
			row.Other = ptr(*or.Other)
			row.LibraryVsOther = ratio(row.Library, row.Other)
		}
	}
}

// mergeSecond takes the Raw and Library figures of o, measured against
// the second server, into r's rows of the same id.
func (r *Report) mergeSecond(o *Report) {
	for _, or := range o.Rows {
		if row := r.Row(or.ID); row != nil {
			row.RawPulsartest, row.LibraryPulsartest = or.Raw, or.Library
			row.LibraryVsRawPulsartest = ratio(or.Library, or.Raw)
		}
	}
}

// SetInstructions records the library's instructions per operation over
// the raw loop's for row id (e.g. "rr1.rate"), against the lean server
// and, if not 0, against pulsartest; it reports whether the row exists.
func (r *Report) SetInstructions(id string, libraryVsRaw, pulsartest float64) bool {
	row := r.Row(id)
	if row == nil {
		return false
	}
	row.InstructionsVsRaw = ptr(libraryVsRaw)
	if pulsartest > 0 {
		row.InstructionsVsRawPulsartest = ptr(pulsartest)
	}
	return true
}

// ReadReport reads a report written by WriteJSON.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("bench: %s: %w", path, err)
	}
	return &r, nil
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func cell(v *float64, unit string) string {
	if v == nil {
		return "-"
	}
	switch {
	case unit == "allocs/op" || *v < 10:
		return fmt.Sprintf("%.2f", *v)
	case *v < 1000:
		return fmt.Sprintf("%.1f", *v)
	}
	return thousands(int64(*v + 0.5))
}

// thousands formats n with commas between groups of three digits.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && c != '-' && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func ratioCell(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.2fx", *v)
}

// WriteTable writes the report as one aligned text table.
func (r *Report) WriteTable(w io.Writer) error {
	other := r.OtherClient
	if other == "" {
		other = "other client"
	}
	rounds := ""
	if r.Rounds > 1 {
		rounds = fmt.Sprintf(" in %d alternating rounds", r.Rounds)
	}
	fmt.Fprintf(w, "%s %s/%s, %d CPUs, GOMAXPROCS %d, %s per loop%s, loopback TCP; lean: the lean benchmark server in this process; pulsartest: pulsartest in another process\n\n",
		r.GoVersion, r.GOOS, r.GOARCH, r.NumCPU, r.GOMAXPROCS, r.Duration, rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario\tmetric\tunit\traw\tpulsarconn\tvs raw\traw (pulsartest)\tpulsarconn (pulsartest)\tvs raw (pulsartest)\tinstructions vs raw\tinstructions vs raw (pulsartest)\t%s\tvs %s\t\n", other, other)
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", row.Scenario, row.Metric, row.Unit,
			cell(row.Raw, row.Unit), cell(row.Library, row.Unit), ratioCell(row.LibraryVsRaw),
			cell(row.RawPulsartest, row.Unit), cell(row.LibraryPulsartest, row.Unit), ratioCell(row.LibraryVsRawPulsartest),
			ratioCell(row.InstructionsVsRaw), ratioCell(row.InstructionsVsRawPulsartest), cell(row.Other, row.Unit), ratioCell(row.LibraryVsOther))
	}
	return tw.Flush()
}

// Goal is one of the performance issue's goals, judged on a report.
type Goal struct {
	Text   string
	Figure string
	// Met is nil when the report lacks the figures to judge.
	Met *bool
}

// Goals judges the goals of issue 16 on a report. A ratio to raw is met
// when it is met against every server measured (the lean one and, when
// run, pulsartest); the figure shows both. Allocations are the run's
// process-wide counts; the Go benchmarks give exact ones.
func (r *Report) Goals() []Goal {
	var out []Goal
	vsRaw := func(text, id string, want float64) {
		g := Goal{Text: text}
		if row := r.Row(id); row != nil && row.LibraryVsRaw != nil {
			g.Figure = fmt.Sprintf("%.2fx", *row.LibraryVsRaw)
			met := *row.LibraryVsRaw >= want
			if v := row.LibraryVsRawPulsartest; v != nil {
				g.Figure += fmt.Sprintf(" / %.2fx", *v)
				met = met && *v >= want
			}
			g.Met = &met
		}
		out = append(out, g)
	}
	vsRaw("request/response, 1 in flight: at least 0.9x raw", "rr1.rate", 0.9)
	vsRaw("request/response, 64 blocked goroutines: at least 0.8x raw", "rr64.rate", 0.8)
	vsRaw("request/response, RequestAsync(Lent) at 64 in flight: at least 0.9x raw", "rr64async.rate", 0.9)
	vsRaw("publish with receipts: at least 0.95x raw", "receipts.rate", 0.95)
	vsRaw("publish into a sink: at least 0.95x raw", "publish.rate", 0.95)
	vsRaw("delivery to a Handler: at least 0.9x raw", "delivery.rate", 0.9)
	allocs := Goal{Text: "allocations per round trip (1 in flight): at most raw's"}
	if row := r.Row("rr1.allocs"); row != nil && row.Raw != nil && row.Library != nil {
		allocs.Figure = fmt.Sprintf("%.2f vs %.2f", *row.Library, *row.Raw)
		allocs.Met = ptr(*row.Library <= *row.Raw+0.01)
	}
	out = append(out, allocs)
	instr := Goal{Text: "instructions per round trip (1 in flight): at most 1.3x raw's"}
	if row := r.Row("rr1.rate"); row != nil && row.InstructionsVsRaw != nil {
		instr.Figure = fmt.Sprintf("%.2fx", *row.InstructionsVsRaw)
		met := *row.InstructionsVsRaw <= 1.3
		if v := row.InstructionsVsRawPulsartest; v != nil {
			instr.Figure += fmt.Sprintf(" / %.2fx", *v)
			met = met && *v <= 1.3
		}
		instr.Met = &met
	}
	out = append(out, instr)
	for _, row := range r.Rows {
		if row.HigherIsBetter && row.LibraryVsOther != nil {
			out = append(out, Goal{Text: row.Scenario + ": at least 4x " + r.OtherClient,
				Figure: fmt.Sprintf("%.2fx", *row.LibraryVsOther), Met: ptr(*row.LibraryVsOther >= 4)})
		}
	}
	return out
}

// WriteGoals writes the goals as a list with met / not met.
func (r *Report) WriteGoals(w io.Writer) {
	fmt.Fprintln(w, "\ngoals:")
	goals := r.Goals()
	width := 0
	for _, g := range goals {
		width = max(width, len(g.Text))
	}
	for _, g := range goals {
		verdict := "not measured"
		if g.Met != nil {
			verdict = "not met"
			if *g.Met {
				verdict = "met"
			}
		}
		fmt.Fprintf(w, "  %-*s  %-14s %s\n", width, g.Text, g.Figure, verdict)
	}
}

// AddOtherRequests records another client's request/response figures
// under the rows of the same ids as Run's.
func (r *Report) AddOtherRequests(inflight int, t Throughput, allocs float64) {
	id := fmt.Sprintf("rr%d", inflight)
	scen := fmt.Sprintf("request/response, %d in flight", inflight)
	r.AddOther(Row{ID: id + ".rate", Scenario: scen, Metric: "PARTITIONED_METADATA", Unit: "requests/s", HigherIsBetter: true}, t.PerSecond())
	for _, q := range []struct {
		name string
		q    float64
	}{{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}} {
		r.AddOther(Row{ID: id + "." + q.name, Scenario: scen, Metric: q.name + " latency", Unit: "µs"}, micros(t.Latency.Quantile(q.q)))
	}
	r.AddOther(Row{ID: id + ".allocs", Scenario: scen, Metric: "heap allocations", Unit: "allocs/op"}, allocs)
}

// AddOtherReceipts records another client's publish-with-receipts
// figures.
func (r *Report) AddOtherReceipts(window int, t Throughput, allocs float64) {
	scen := fmt.Sprintf("publish with receipts (1 KiB, window %d)", window)
	r.AddOther(Row{ID: "receipts.rate", Scenario: scen, Metric: "rate", Unit: "messages/s", HigherIsBetter: true}, t.PerSecond())
	r.AddOther(Row{ID: "receipts.allocs", Scenario: scen, Metric: "heap allocations", Unit: "allocs/op"}, allocs)
}
