package bench

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Median is the per-size median of each figure over the runs.
func Median(rs []Result) []Result {
	by := map[int][]Result{}
	var sizes []int
	for _, r := range rs {
		if by[r.N] == nil {
			sizes = append(sizes, r.N)
		}
		by[r.N] = append(by[r.N], r)
	}
	var out []Result
	for _, n := range sizes {
		g := by[n]
		m := g[0] // storm figures come from the first run only
		md := func(f func(Result) time.Duration) time.Duration { return median(g, f) }
		mdf := func(f func(Result) float64) float64 { return median(g, f) }
		m.P50, m.P99, m.Max = md(func(r Result) time.Duration { return r.P50 }), md(func(r Result) time.Duration { return r.P99 }), md(func(r Result) time.Duration { return r.Max })
		m.FloorP50, m.FloorP99, m.FloorMax = md(func(r Result) time.Duration { return r.FloorP50 }), md(func(r Result) time.Duration { return r.FloorP99 }), md(func(r Result) time.Duration { return r.FloorMax })
		m.RampUp = md(func(r Result) time.Duration { return r.RampUp })
		m.CmdP50, m.CmdP99 = md(func(r Result) time.Duration { return r.CmdP50 }), md(func(r Result) time.Duration { return r.CmdP99 })
		m.Paused, m.PausedMax = median(g, func(r Result) int { return r.Paused }), md(func(r Result) time.Duration { return r.PausedMax })
		m.AlertCPUCtrl, m.AlertCPUSim = md(func(r Result) time.Duration { return r.AlertCPUCtrl }), md(func(r Result) time.Duration { return r.AlertCPUSim })
		m.PlayCPUCtrl, m.PlayCPUSim = md(func(r Result) time.Duration { return r.PlayCPUCtrl }), md(func(r Result) time.Duration { return r.PlayCPUSim })
		m.FloorCPUServer, m.FloorCPUClients = md(func(r Result) time.Duration { return r.FloorCPUServer }), md(func(r Result) time.Duration { return r.FloorCPUClients })
		mdi := func(f func(Result) int64) int64 { return median(g, f) }
		m.PlayFaultsCtrl, m.PlayFaultsSim = mdi(func(r Result) int64 { return r.PlayFaultsCtrl }), mdi(func(r Result) int64 { return r.PlayFaultsSim })
		m.FloorFaultsServer, m.FloorFaultsClients = mdi(func(r Result) int64 { return r.FloorFaultsServer }), mdi(func(r Result) int64 { return r.FloorFaultsClients })
		m.BytesRatio = mdf(func(r Result) float64 { return r.BytesRatio })
		m.Ratio = mdf(func(r Result) float64 { return r.Ratio })
		m.IdleRSSPerTerm = mdf(func(r Result) float64 { return r.IdleRSSPerTerm })
		m.IdleCPU = mdf(func(r Result) float64 { return r.IdleCPU })
		m.IdleSwitches = mdf(func(r Result) float64 { return r.IdleSwitches })
		var loads []string
		for _, r := range g {
			loads = append(loads, r.Load)
		}
		m.Load = strings.Join(loads, " | ")
		out = append(out, m)
	}
	return out
}

// median is the median of f over rs (the upper one of an even count).
func median[T cmp.Ordered](rs []Result, f func(Result) T) T {
	v := make([]T, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

// Print writes the medians as a table.
func Print(w io.Writer, med []Result, runs int) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "terminals\tramp-up\tcommand p99\tplaying p50\tp99\tmax\tfloor p50\tfloor p99\tp99 ÷ floor p99\tthe runs' own, median\taudio paused: terminals, longest\tCPU/terminal: controller, sim\tto the last playing\tfloor: server, clients\tpage faults/terminal: controller, sim; floor\tbytes/terminal ÷ media\trepeat: fetched\trepeat: bytes/terminal\t\n")
	for _, r := range med {
		perTerm := func(a, b time.Duration) string {
			return fmt.Sprintf("%.2f, %.2f ms", float64(a)/float64(time.Millisecond)/float64(r.N), float64(b)/float64(time.Millisecond)/float64(r.N))
		}
		faults := func(a ...int64) string {
			s := make([]string, len(a))
			for i, v := range a {
				s[i] = fmt.Sprintf("%.1f", float64(v)/float64(r.N))
			}
			return strings.Join(s[:2], ", ") + "; " + strings.Join(s[2:], ", ")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t%d, %s\t%s\t%s\t%s\t%s\t%.3f\t%d\t%.0f B\t\n", r.N, ms(r.RampUp), ms(r.CmdP99), ms(r.P50), ms(r.P99), ms(r.Max),
			ms(r.FloorP50), ms(r.FloorP99), r.floorRatio(), r.Ratio, r.Paused, ms(r.PausedMax), perTerm(r.AlertCPUCtrl, r.AlertCPUSim), perTerm(r.PlayCPUCtrl, r.PlayCPUSim),
			perTerm(r.FloorCPUServer, r.FloorCPUClients), faults(r.PlayFaultsCtrl, r.PlayFaultsSim, r.FloorFaultsServer, r.FloorFaultsClients), r.BytesRatio, r.RepeatFetched, r.RepeatBytesPerTerm)
	}
	tw.Flush()
	fmt.Fprintf(w, "(medians of %d runs; p99 ÷ floor p99: of those medians, then the median of each run's own ratio, our p99\n"+
		" and the floor's measured one after the other, on the machine as it was then; the repeat columns are from the first run;\n"+
		" command: the alert verified and accepted;\n"+
		" CPU: the processes' CPU time from the alert to every delivery done, per terminal; then only until the last\n"+
		" terminal played; the floor's from its start to the last client having the whole file, per client;\n"+
		" page faults: minor faults (memory touched afresh) in those same stretches, per terminal or client)\n\n", runs)
	tw = tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "terminals\tidle RSS/terminal\tidle CPU (one core)\tidle switches/s\tstorm: all back\tstorm: all playing the pending alert\tstorm: peak CPU\tstorm: peak RSS\tload averages\t\n")
	for _, r := range med {
		storm := []string{"-", "-", "-", "-"}
		if r.StormBack > 0 {
			storm = []string{ms(r.StormBack), ms(r.StormResumed), fmt.Sprintf("%.0f%%", 100*r.StormPeakCPU), fmt.Sprintf("%.0f MB", float64(r.StormPeakRSS)/1e6)}
		}
		idle := []string{"-", "-", "-"}
		if r.IdleRSSPerTerm != 0 {
			idle = []string{fmt.Sprintf("%.1f KB", r.IdleRSSPerTerm/1024), fmt.Sprintf("%.1f%%", 100*r.IdleCPU), fmt.Sprintf("%.0f", r.IdleSwitches)}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.N, idle[0], idle[1], idle[2], storm[0], storm[1], storm[2], storm[3], r.Load)
	}
	tw.Flush()
}

// WriteCSV writes every run, one row each.
func WriteCSV(path string, rs []Result) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"terminals", "load", "ramp_up_ms", "p50_ms", "p99_ms", "max_ms", "floor_p50_ms", "floor_p99_ms", "floor_max_ms",
		"bytes_ratio", "repeat_fetched", "repeat_bytes_per_terminal", "idle_rss_per_terminal", "idle_cpu", "storm_back_ms", "storm_peak_cpu", "storm_peak_rss",
		"command_p50_ms", "command_p99_ms", "alert_cpu_controller_ms", "alert_cpu_sim_ms", "storm_resumed_ms", "storm_pending_done", "idle_switches_per_s", "paused_terminals", "paused_max_ms",
		"play_cpu_controller_ms", "play_cpu_sim_ms", "floor_cpu_server_ms", "floor_cpu_clients_ms",
		"play_faults_controller", "play_faults_sim", "floor_faults_server", "floor_faults_clients", "p99_floor_ratio"})
	m := func(d time.Duration) string { return fmt.Sprint(d.Milliseconds()) }
	for _, r := range rs {
		w.Write([]string{fmt.Sprint(r.N), r.Load, m(r.RampUp), m(r.P50), m(r.P99), m(r.Max), m(r.FloorP50), m(r.FloorP99), m(r.FloorMax),
			fmt.Sprintf("%.4f", r.BytesRatio), fmt.Sprint(r.RepeatFetched), fmt.Sprintf("%.0f", r.RepeatBytesPerTerm),
			fmt.Sprintf("%.0f", r.IdleRSSPerTerm), fmt.Sprintf("%.4f", r.IdleCPU), m(r.StormBack), fmt.Sprintf("%.2f", r.StormPeakCPU), fmt.Sprint(r.StormPeakRSS),
			m(r.CmdP50), m(r.CmdP99), m(r.AlertCPUCtrl), m(r.AlertCPUSim), m(r.StormResumed), fmt.Sprint(r.StormPending), fmt.Sprintf("%.0f", r.IdleSwitches), fmt.Sprint(r.Paused), m(r.PausedMax),
			m(r.PlayCPUCtrl), m(r.PlayCPUSim), m(r.FloorCPUServer), m(r.FloorCPUClients),
			fmt.Sprint(r.PlayFaultsCtrl), fmt.Sprint(r.PlayFaultsSim), fmt.Sprint(r.FloorFaultsServer), fmt.Sprint(r.FloorFaultsClients), fmt.Sprintf("%.3f", r.Ratio)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WriteSVG draws the fan-out p50 and p99 next to the floor's, per size.
func WriteSVG(path string, med []Result) error {
	const w, h, left, bottom, top = 640, 360, 60, 40, 30
	var maxV time.Duration = 1500 * time.Millisecond
	for _, r := range med {
		maxV = max(maxV, r.P99, r.FloorP99)
	}
	y := func(d time.Duration) float64 {
		return float64(h-bottom) - float64(d)/float64(maxV)*float64(h-bottom-top)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="18">Fan-out: API accept → playing, vs. the same file from http.FileServer</text>`+"\n", left)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, h-bottom, w-10, h-bottom)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="red" stroke-dasharray="4"/><text x="%d" y="%.0f" fill="red">target p99 1.5 s</text>`+"\n",
		left, int(y(1500*time.Millisecond)), w-10, int(y(1500*time.Millisecond)), w-120, y(1500*time.Millisecond)-4)
	for i := 0; i <= 4; i++ {
		d := maxV * time.Duration(i) / 4
		fmt.Fprintf(&b, `<text x="4" y="%.0f">%.1f s</text>`+"\n", y(d)+4, d.Seconds())
	}
	group := float64(w-left-20) / float64(max(len(med), 1))
	bars := []struct {
		name  string
		color string
		v     func(Result) time.Duration
	}{
		{"ours p50", "#4a90d9", func(r Result) time.Duration { return r.P50 }},
		{"ours p99", "#1f4e79", func(r Result) time.Duration { return r.P99 }},
		{"floor p50", "#b0b0b0", func(r Result) time.Duration { return r.FloorP50 }},
		{"floor p99", "#606060", func(r Result) time.Duration { return r.FloorP99 }},
	}
	bw := group / float64(len(bars)+1)
	for i, r := range med {
		x0 := float64(left) + float64(i)*group + bw/2
		for j, bar := range bars {
			v := bar.v(r)
			if v == 0 { // not measured
				continue
			}
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s</title></rect>`+"\n",
				x0+float64(j)*bw, y(v), bw-2, float64(h-bottom)-y(v), bar.color, bar.name, ms(v))
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%d terminals</text>`+"\n", x0+bw, h-bottom+16, r.N)
	}
	for j, bar := range bars {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", left+j*110, h-12, bar.color, left+j*110+14, h-3, bar.name)
	}
	b.WriteString("</svg>\n")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
