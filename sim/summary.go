package sim

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Quantile returns the q-quantile (0..1) of sorted durations, nearest rank.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Print writes the summary as a table.
func (s *Summary) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("terminals", s.Terminals)
	row("worker processes", s.Processes)
	row("enrolled through the API in", s.Enroll.Round(time.Millisecond))
	row("online", fmt.Sprintf("%d (ramp-up %s)", s.Online, s.RampUp.Round(time.Millisecond)))
	row("stopped with an error", len(s.Failed))
	if s.AlertID != "" {
		row("alert", s.AlertID)
		row("played it", fmt.Sprintf("%d of %d", len(s.Playing), s.Terminals))
		row("accept → playing p50", Quantile(s.Playing, 0.5).Round(time.Millisecond))
		row("accept → playing p99", Quantile(s.Playing, 0.99).Round(time.Millisecond))
		row("accept → playing max", Quantile(s.Playing, 1).Round(time.Millisecond))
		paused := "none"
		if n := len(s.Paused); n > 0 {
			who := fmt.Sprintf("%d terminals", n)
			if n == 1 {
				who = "1 terminal"
			}
			paused = fmt.Sprintf("%s, the longest %s in all", who, s.Paused[n-1].Round(time.Millisecond))
		}
		row("audio paused waiting for media", paused)
		row("accept → all done", s.Done.Round(time.Millisecond))
		row("deliveries by state", states(s.Counts))
	}
	tw.Flush()
	for i, f := range s.Failed {
		if i == 10 {
			fmt.Fprintf(w, "... and %d more\n", len(s.Failed)-10)
			break
		}
		fmt.Fprintln(w, f)
	}
}

// states lists deliveries by state, as "done 998, failed 2", states in
// order of name.
func states(counts map[string]int) string {
	if len(counts) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
	}
	return strings.Join(parts, ", ")
}
