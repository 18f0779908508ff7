package fidelity_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pulsarconn/pulsarconn/internal/fidelity"
)

// recorded is where interop/realpulsar (PULSARCONN_RECORD=1) wrote the
// real broker's transcripts.
const recorded = "testdata/realbroker"

// TestPulsartestMatchesRecordedBroker replays every scenario against
// pulsartest and compares with the real broker's recorded transcript,
// forgiving only fidelity.KnownDifferences, and failing on one that no
// longer shows.
func TestPulsartestMatchesRecordedBroker(t *testing.T) {
	target, _ := fidelity.Pulsartest(t)
	for _, sc := range fidelity.Scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			want, err := fidelity.Load(recorded, sc.Name)
			if err != nil {
				t.Fatalf("no recorded transcript (run interop/realpulsar TestFidelity with PULSARCONN_RECORD=1): %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			got, err := fidelity.Run(ctx, target, sc)
			if err != nil {
				t.Fatal(err)
			}
			c := fidelity.Compare(want, got, fidelity.KnownDifferences)
			for _, d := range c.Differences {
				t.Error(d)
			}
			for _, k := range fidelity.Stale(sc.Name, fidelity.KnownDifferences, c) {
				t.Errorf("known difference %v is no longer observed: remove it from KnownDifferences and docs/pulsartest.md", k)
			}
			if t.Failed() {
				t.Logf("recorded real broker:\n%s\npulsartest:\n%s", fidelity.Describe(want), fidelity.Describe(got))
			}
		})
	}
}

// TestEveryScenarioIsRecorded: no transcript without its scenario, no
// scenario without its transcript, no known difference of a scenario that
// does not exist.
func TestEveryScenarioIsRecorded(t *testing.T) {
	names := map[string]bool{}
	for _, sc := range fidelity.Scenarios {
		if names[sc.Name] {
			t.Errorf("scenario %s twice", sc.Name)
		}
		names[sc.Name] = true
		tr, err := fidelity.Load(recorded, sc.Name)
		if err != nil {
			t.Errorf("%s: %v", sc.Name, err)
			continue
		}
		if tr.Scenario != sc.Name || len(tr.Events) == 0 {
			t.Errorf("%s: transcript names %q and has %d events", sc.Name, tr.Scenario, len(tr.Events))
		}
	}
	for _, k := range fidelity.KnownDifferences {
		if !names[k.Scenario] {
			t.Errorf("known difference for unknown scenario %s", k.Scenario)
		}
		if k.Reason == "" || k.Real == "" || k.Fake == "" {
			t.Errorf("known difference %v lacks what it is or why", k)
		}
	}
}

// TestCompareDetects shows that each kind of assertion of a transcript can
// fail: a changed field, a changed type, a frame more, a step missing, and
// that a known difference is forgiven only where it is declared.
func TestCompareDetects(t *testing.T) {
	base, err := fidelity.Load(recorded, "error-second-exclusive-consumer")
	if err != nil {
		t.Fatal(err)
	}
	clone := func() fidelity.Transcript {
		tr := fidelity.Transcript{Scenario: base.Scenario}
		for _, e := range base.Events {
			f := map[string]any{}
			for k, v := range e.Fields {
				f[k] = v
			}
			e.Fields = f
			tr.Events = append(tr.Events, e)
		}
		return tr
	}
	if c := fidelity.Compare(base, clone(), nil); len(c.Differences) != 0 {
		t.Fatalf("a transcript differs from itself: %v", c.Differences)
	}
	last := len(base.Events) - 1 // shared-on-exclusive: ERROR ConsumerBusy
	cases := map[string]func(tr *fidelity.Transcript){
		"error code": func(tr *fidelity.Transcript) { tr.Events[last].Fields["error"] = "ServiceNotReady" },
		"request id": func(tr *fidelity.Transcript) { tr.Events[last].Fields["request_id"] = "99" },
		"field gone": func(tr *fidelity.Transcript) { delete(tr.Events[last].Fields, "message") },
		"type":       func(tr *fidelity.Transcript) { tr.Events[last].Type = "SUCCESS" },
		"extra frame": func(tr *fidelity.Transcript) {
			tr.Events = append(tr.Events, fidelity.Event{Step: tr.Events[last].Step, Dir: fidelity.Received, Type: fidelity.Nothing})
		},
		"aborted": func(tr *fidelity.Transcript) { tr.Events = tr.Events[:last-1] },
	}
	for name, mutate := range cases {
		tr := clone()
		mutate(&tr)
		if c := fidelity.Compare(base, tr, nil); len(c.Differences) == 0 {
			t.Errorf("%s: no difference reported", name)
		}
	}
	tr := clone()
	tr.Events[last].Fields["error"] = "ServiceNotReady"
	k := fidelity.KnownDifference{Scenario: base.Scenario, Step: tr.Events[last].Step, Field: "ERROR.error", Real: "a", Fake: "b", Reason: "test"}
	c := fidelity.Compare(base, tr, []fidelity.KnownDifference{k})
	if len(c.Differences) != 0 || len(c.Used) != 1 {
		t.Errorf("declared difference not forgiven: %v", c)
	}
	elsewhere := k
	elsewhere.Step = "first"
	c = fidelity.Compare(base, tr, []fidelity.KnownDifference{elsewhere})
	if len(c.Differences) != 1 || !strings.Contains(c.Differences[0], "ServiceNotReady") {
		t.Errorf("a difference declared on another step was forgiven: %v", c)
	}
	if st := fidelity.Stale(base.Scenario, []fidelity.KnownDifference{elsewhere}, c); len(st) != 1 {
		t.Errorf("unobserved known difference not reported stale: %v", st)
	}
}
