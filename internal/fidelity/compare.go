package fidelity

import (
	"fmt"
	"slices"
	"strings"
)

// KnownDifference is one way pulsartest answers a scenario unlike the real
// broker, kept on purpose or not fixed yet. Compare forgives it, and
// reports it when it is no longer observed.
type KnownDifference struct {
	// Scenario and Step name where it shows; Step AnyStep is every step
	// of the scenario.
	Scenario, Step string
	// Field is "TYPE.path" of a received field that differs (e.g.
	// "CONNECTED.feature_flags.supports_topic_watchers"), or "" when the
	// step's frames differ in kind (types, number, order).
	Field string
	// Real and Fake say briefly what each answers.
	Real, Fake string
	// Reason says why the difference stays.
	Reason string
}

// String names the difference by scenario, step and field.
func (k KnownDifference) String() string {
	f := k.Field
	if f == "" {
		f = "(frames)"
	}
	return fmt.Sprintf("%s/%s %s", k.Scenario, k.Step, f)
}

// AnyStep as a KnownDifference's Step matches every step.
const AnyStep = "*"

// Comparison is the outcome of Compare.
type Comparison struct {
	// Differences are the differences no known difference explains.
	Differences []string
	// Used are the known differences that explained something.
	Used []KnownDifference
}

// Compare compares the transcript of the real broker with pulsartest's,
// step by step: the same steps, in each the same frames (type, order) and
// the same normalised fields, but for the known differences.
func Compare(real, fake Transcript, known []KnownDifference) Comparison {
	var out Comparison
	use := func(k KnownDifference) {
		if !slices.Contains(out.Used, k) {
			out.Used = append(out.Used, k)
		}
	}
	find := func(step, field string) (KnownDifference, bool) {
		for _, k := range known {
			if k.Scenario == real.Scenario && (k.Step == step || k.Step == AnyStep) && k.Field == field {
				return k, true
			}
		}
		return KnownDifference{}, false
	}
	rs, fs := steps(real.Events), steps(fake.Events)
	if !slices.Equal(rs, fs) {
		// A scenario aborted on one side and not the other: the step
		// where they part says why.
		n := min(len(rs), len(fs))
		i := 0
		for i < n && rs[i] == fs[i] {
			i++
		}
		out.Differences = append(out.Differences, fmt.Sprintf("steps differ from %d: real %v, pulsartest %v", i, rs[i:], fs[i:]))
		if i < n {
			rs = rs[:i+1]
		} else {
			rs = rs[:n]
		}
	}
	for _, step := range rs {
		re, fe := stepEvents(real.Events, step), stepEvents(fake.Events, step)
		if k, ok := find(step, ""); ok {
			if !sameKinds(re, fe) || !sameFields(re, fe) {
				use(k)
			}
			continue
		}
		if !sameKinds(re, fe) {
			out.Differences = append(out.Differences, fmt.Sprintf("step %s: real %s, pulsartest %s", step, kinds(re), kinds(fe)))
			continue
		}
		for i := range re {
			rf, ff := flatten(re[i].Fields), flatten(fe[i].Fields)
			keys := sortedKeys(rf)
			for _, k := range sortedKeys(ff) {
				if _, ok := rf[k]; !ok {
					keys = append(keys, k)
				}
			}
			for _, path := range keys {
				rv, fv := rf[path], ff[path]
				if rv == fv {
					continue
				}
				field := re[i].Type + "." + path
				if k, ok := find(step, field); ok {
					use(k)
					continue
				}
				out.Differences = append(out.Differences, fmt.Sprintf("step %s: %s: real %s, pulsartest %s", step, field, orAbsent(rv), orAbsent(fv)))
			}
		}
	}
	return out
}

// Stale lists the known differences of scenario that were not observed.
func Stale(scenario string, known []KnownDifference, c Comparison) []KnownDifference {
	var out []KnownDifference
	for _, k := range known {
		if k.Scenario == scenario && !slices.Contains(c.Used, k) {
			out = append(out, k)
		}
	}
	return out
}

func orAbsent(v string) string {
	if v == "" {
		return "(absent)"
	}
	return v
}

func stepEvents(events []Event, step string) []Event {
	var out []Event
	for _, e := range events {
		if e.Step == step {
			out = append(out, e)
		}
	}
	return out
}

func sameKinds(a, b []Event) bool {
	return slices.EqualFunc(a, b, func(x, y Event) bool { return x.Dir == y.Dir && x.Type == y.Type })
}

func sameFields(a, b []Event) bool {
	for i := range a {
		x, y := flatten(a[i].Fields), flatten(b[i].Fields)
		if len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if y[k] != v {
				return false
			}
		}
	}
	return true
}

func kinds(events []Event) string {
	var parts []string
	for _, e := range events {
		if e.Dir == Sent {
			parts = append(parts, "→"+e.Type)
			continue
		}
		s := e.Type
		for _, f := range []string{"error", "response"} {
			if v, ok := e.Fields[f]; ok {
				s += fmt.Sprintf("(%v)", v)
			}
		}
		parts = append(parts, s)
	}
	return "[" + strings.Join(parts, " ") + "]"
}
