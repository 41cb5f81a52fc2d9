package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"dalaba/controller"
	"dalaba/controller/store"
)

// parse parses flags that may stand before, between or after positional
// arguments, and checks the number of positionals.
func parse(fs *flag.FlagSet, args []string, positional ...string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != len(positional) {
		return nil, fmt.Errorf("%s: want arguments %v, got %v", fs.Name(), positional, pos)
	}
	return pos, nil
}

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}

func table() *tabwriter.Writer { return newTab(os.Stdout) }

func cmdInit(ctx context.Context, args []string) error {
	fs := newFlags("init")
	data := fs.String("data", "dalaba-data", "data folder to create")
	county := fs.String("county", "450224000000", "12-digit county area code")
	name := fs.String("county-name", "融安县", "county name")
	listen := fs.String("listen", ":8440", "address the controller listens on")
	admin := fs.String("admin", "admin", "sign-in name of the first administrator")
	pwFile := fs.String("admin-password-file", "", "file holding the administrator's password (- reads a line from standard input); without it a one-time password is printed")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	opts := controller.InitOptions{DataDir: *data, CountyCode: *county, CountyName: *name, Listen: *listen, AdminName: *admin}
	if *pwFile != "" {
		pw, err := readSecret(*pwFile, os.Stdin)
		if err != nil {
			return err
		}
		opts.AdminPassword = pw
	}
	res, err := controller.Init(ctx, opts, time.Now())
	if err != nil {
		return err
	}
	fmt.Printf("Initialised %s\n  config:          %s\n  issuing key:     %s (fingerprint %s)\n  administrator:   %s\n",
		*data, res.ConfigPath, res.KeyID, res.Fingerprint, res.AdminName)
	if res.OneTimePass != "" {
		fmt.Printf("  one-time password: %s   (shown once; it must be changed at first sign-in)\n", res.OneTimePass)
	}
	fmt.Printf("  admin API token: %s\nThe token is shown once and kept, readable only by you, in %s/%s.\nStart the controller:  dalaba-controller -config %s\n",
		res.AdminToken, *data, controller.TokenFile, res.ConfigPath)
	return nil
}

func cmdAreas(ctx context.Context, args []string) error {
	fs := newFlags("areas")
	api := apiFlags(fs)
	c, _, err := connect(fs, api, args)
	if err != nil {
		return err
	}
	var areas []store.Area
	if err := c.get(ctx, "/api/v1/areas", &areas); err != nil {
		return err
	}
	tw := table()
	fmt.Fprintln(tw, "CODE\tNAME\tPARENT")
	for _, a := range areas {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Code, a.Name, a.Parent)
	}
	return tw.Flush()
}

func cmdAreaAdd(ctx context.Context, args []string) error {
	fs := newFlags("area add")
	api := apiFlags(fs)
	parent := fs.String("parent", "", "parent area code")
	c, pos, err := connect(fs, api, args, "CODE", "NAME")
	if err != nil {
		return err
	}
	return c.post(ctx, "/api/v1/areas", store.Area{Code: pos[0], Name: pos[1], Parent: *parent}, nil)
}

func cmdTerminals(ctx context.Context, args []string) error {
	fs := newFlags("terminals")
	api := apiFlags(fs)
	area := fs.String("area", "", "only terminals inside this area")
	c, _, err := connect(fs, api, args)
	if err != nil {
		return err
	}
	var ts []store.Terminal
	if err := c.get(ctx, "/api/v1/terminals?area="+url.QueryEscape(*area), &ts); err != nil {
		return err
	}
	tw := table()
	fmt.Fprintln(tw, "ID\tNAME\tAREA\tSTATUS\tSTATE\tLAST SEEN\tRELAY\tAUDIO\tFIRMWARE")
	for _, t := range ts {
		seen := "-"
		if !t.LastSeen.IsZero() {
			seen = t.LastSeen.Local().Format("01-02 15:04:05")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.AreaCode, t.Status, t.State, seen, okText(t.RelayOK), okText(t.AudioOK), t.Firmware)
	}
	return tw.Flush()
}

func okText(b *bool) string {
	switch {
	case b == nil:
		return "-"
	case *b:
		return "ok"
	}
	return "FAULT"
}

func cmdEnroll(ctx context.Context, args []string) error {
	fs := newFlags("terminal enroll")
	api := apiFlags(fs)
	area := fs.String("area", "", "12-digit village area code")
	name := fs.String("name", "", "terminal name, e.g. 大塘村1号")
	lat := fs.Float64("lat", 0, "latitude")
	lon := fs.Float64("lon", 0, "longitude")
	c, _, err := connect(fs, api, args)
	if err != nil {
		return err
	}
	req := controller.EnrollRequest{AreaCode: *area, Name: *name}
	if *lat != 0 || *lon != 0 {
		req.Latitude, req.Longitude = lat, lon
	}
	var res controller.EnrollResult
	if err := c.post(ctx, "/api/v1/terminals", req, &res); err != nil {
		return err
	}
	fmt.Printf("terminal %s (%s) created in %s\nenroll_token: %s\nvalid until:  %s\nPut the token in the terminal's config as \"enroll_token\"; it works once.\n",
		res.Terminal.ID, res.Terminal.Name, res.Terminal.AreaCode, res.EnrollToken, res.ValidUntil.Local().Format(time.DateTime))
	return nil
}

func cmdPending(ctx context.Context, args []string) error {
	fs := newFlags("terminal pending")
	api := apiFlags(fs)
	c, _, err := connect(fs, api, args)
	if err != nil {
		return err
	}
	var ps []store.Pending
	if err := c.get(ctx, "/api/v1/terminals/pending", &ps); err != nil {
		return err
	}
	tw := table()
	fmt.Fprintln(tw, "KEY ID\tHOST\tADDRESS\tFIRMWARE\tFIRST SEEN\tLAST SEEN")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.KeyID, p.Hostname, p.RemoteAddr, p.Firmware, p.FirstSeen.Local().Format(time.DateTime), p.LastSeen.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

func cmdApprove(ctx context.Context, args []string) error {
	fs := newFlags("terminal approve")
	api := apiFlags(fs)
	area := fs.String("area", "", "12-digit village area code")
	name := fs.String("name", "", "terminal name")
	c, pos, err := connect(fs, api, args, "KID")
	if err != nil {
		return err
	}
	var t store.Terminal
	if err := c.post(ctx, "/api/v1/terminals/pending/"+url.PathEscape(pos[0])+"/approve", controller.EnrollRequest{AreaCode: *area, Name: *name}, &t); err != nil {
		return err
	}
	fmt.Printf("terminal %s (%s) approved in %s\n", t.ID, t.Name, t.AreaCode)
	return nil
}

func cmdRevoke(ctx context.Context, args []string) error {
	fs := newFlags("terminal revoke")
	api := apiFlags(fs)
	c, pos, err := connect(fs, api, args, "ID")
	if err != nil {
		return err
	}
	return c.post(ctx, "/api/v1/terminals/"+url.PathEscape(pos[0])+"/revoke", nil, nil)
}

func cmdVolume(ctx context.Context, args []string) error {
	fs := newFlags("terminal volume")
	api := apiFlags(fs)
	pos, err := parse(fs, args, "ID", "PERCENT")
	if err != nil {
		return err
	}
	v, err := strconv.Atoi(pos[1])
	if err != nil {
		return fmt.Errorf("volume %q is not a number 0..100", pos[1])
	}
	c, err := api()
	if err != nil {
		return err
	}
	return c.post(ctx, "/api/v1/terminals/"+url.PathEscape(pos[0])+"/config", map[string]int{"volume": v}, nil)
}

func cmdTestTone(ctx context.Context, args []string) error {
	fs := newFlags("terminal test-tone")
	api := apiFlags(fs)
	noWatch := fs.Bool("no-watch", false, "print the alert id and return without following its delivery")
	c, pos, err := connect(fs, api, args, "ID")
	if err != nil {
		return err
	}
	var a store.Alert
	if err := c.post(ctx, "/api/v1/terminals/"+url.PathEscape(pos[0])+"/test-tone", nil, &a); err != nil {
		return err
	}
	fmt.Printf("test tone %s sent to %s (%d Hz, %d s)\n", a.ID, pos[0], controller.TestToneHz, controller.TestToneSeconds)
	if *noWatch {
		return nil
	}
	ok, err := watchAlert(ctx, c, a.ID, os.Stdout)
	if err == nil && !ok {
		err = fmt.Errorf("terminal %s did not play the test tone; see its row above", pos[0])
	}
	return err
}

func cmdUpload(ctx context.Context, args []string) error {
	fs := newFlags("media upload")
	api := apiFlags(fs)
	c, pos, err := connect(fs, api, args, "FILE")
	if err != nil {
		return err
	}
	m, err := c.upload(ctx, pos[0])
	if err != nil {
		return err
	}
	fmt.Printf("%s  %v  %v bytes  %.1f s\n", m["sha256"], m["format"], m["size"], m["duration_ms"].(float64)/1000)
	return nil
}

func cmdReports(ctx context.Context, args []string) error {
	fs := newFlags("reports")
	api := apiFlags(fs)
	term := fs.String("terminal", "", "one terminal's reports")
	kind := fs.String("kind", "", "receipt, fault or rejection")
	c, _, err := connect(fs, api, args)
	if err != nil {
		return err
	}
	path := "/api/v1/reports?kind=" + url.QueryEscape(*kind)
	if *term != "" {
		path = "/api/v1/terminals/" + url.PathEscape(*term) + "/reports?kind=" + url.QueryEscape(*kind)
	}
	var rs []store.StoredReport
	if err := c.get(ctx, path, &rs); err != nil {
		return err
	}
	tw := table()
	fmt.Fprintln(tw, "RECEIVED\tTERMINAL\tSEQ\tKIND\tWHAT")
	for _, r := range rs {
		what := ""
		switch {
		case r.Report.Receipt != nil:
			what = r.Report.Receipt.EBMID + " " + r.Report.Receipt.State + " " + r.Report.Receipt.Reason
		case r.Report.Fault != nil:
			what = fmt.Sprintf("%s active=%v %s", r.Report.Fault.Code, r.Report.Fault.Active, r.Report.Fault.Message)
		case r.Report.Rejection != nil:
			what = r.Report.Rejection.Reason + " from " + r.Report.Rejection.Controller + ": " + r.Report.Rejection.Detail
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", r.ReceivedAt.Local().Format("01-02 15:04:05"), r.TerminalID, r.Report.Seq, r.Report.Kind, what)
	}
	return tw.Flush()
}

func newTab(w interface{ Write([]byte) (int, error) }) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}
