package chaos

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Print writes the reconciliation report.
func (r *Report) Print(w io.Writer, warmup time.Duration) {
	fmt.Fprintf(w, "\nFaults (%d):\n", len(r.Faults))
	for _, f := range r.Faults {
		node := "-"
		if f.Node >= 0 {
			node = fmt.Sprintf("node %d", f.Node+1)
		}
		fmt.Fprintf(w, "  %7s  %-11s %-7s %5s  %s\n", f.Start.Sub(r.Start).Round(time.Second), f.Kind, node, f.End.Sub(f.Start).Round(100*time.Millisecond), f.Err)
	}
	fmt.Fprintf(w, "\nReconciliation (publishes refused: %d, unanswered: %d; neither counts as accepted):\n", r.Published.Refused, r.Published.Failed)
	for _, c := range r.Checks {
		mark := "   "
		if c.Violation {
			mark = "ok "
			if c.Value != 0 {
				mark = "!! "
				if c.Known {
					mark = "K! "
				}
			}
		}
		note := ""
		if c.Note != "" {
			note = "  (" + c.Note + ")"
		}
		fmt.Fprintf(w, "  %s%-80s %9d%s\n", mark, c.Name, c.Value, note)
	}
	if len(r.Latency) > 0 {
		fmt.Fprintf(w, "\nPublish -> first 2xx at the sink, by publish time:\n  %8s %9s %9s %9s %9s\n", "from", "count", "p50 ms", "p99 ms", "max ms")
		for _, l := range r.Latency {
			fmt.Fprintf(w, "  %8s %9d %9.1f %9.1f %9.1f\n", l.From.Round(time.Second), l.Count, l.P50, l.P99, l.Max)
		}
	}
	if len(r.RSS) > 0 {
		r.printRSS(w, warmup)
	}
	if v := r.Violations(); len(v) > 0 {
		fmt.Fprintf(w, "\nVIOLATIONS (%d):\n  %s\nfiles kept in %s\n", len(v), strings.Join(v, "\n  "), r.Dir)
	} else {
		fmt.Fprintln(w, "\nno violations")
	}
}

// printRSS shows each node's RSS after warm-up and at the end, for the
// processes that lived through both (a killed node is a new process).
func (r *Report) printRSS(w io.Writer, warmup time.Duration) {
	first := -1
	for i, s := range r.RSS {
		if s.At >= warmup {
			first = i
			break
		}
	}
	if first < 0 {
		return
	}
	a, b := r.RSS[first], r.RSS[len(r.RSS)-1]
	fmt.Fprintf(w, "\nRSS per node (after warm-up at %s, at the end at %s):\n", a.At.Round(time.Second), b.At.Round(time.Second))
	for i := range a.Bytes {
		change := "restarted in between"
		if a.Names[i] == b.Names[i] && a.Bytes[i] > 0 {
			change = fmt.Sprintf("%+.1f%%", 100*float64(b.Bytes[i]-a.Bytes[i])/float64(a.Bytes[i]))
		}
		fmt.Fprintf(w, "  node %d  %7.1f MiB  %7.1f MiB  %s\n", i+1, mib(a.Bytes[i]), mib(b.Bytes[i]), change)
	}
	fmt.Fprintln(w, "  samples (MiB):")
	for _, s := range r.RSS {
		fmt.Fprintf(w, "  %8s", s.At.Round(time.Second))
		for _, v := range s.Bytes {
			fmt.Fprintf(w, " %7.1f", mib(v))
		}
		fmt.Fprintln(w)
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
