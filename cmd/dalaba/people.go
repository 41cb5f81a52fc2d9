package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"dalaba/controller"
	"dalaba/controller/audit"
	"dalaba/controller/store"
)

// readSecret reads one line from a file, or from standard input for "-".
func readSecret(path string, in io.Reader) (string, error) {
	if path != "-" {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		return strings.TrimRight(strings.SplitN(string(b), "\n", 2)[0], "\r"), nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("read from standard input: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// tokenFile is where `dalaba login` keeps the user's API token.
func tokenFile() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = "."
	}
	return filepath.Join(dir, "dalaba", "token")
}

func cmdLogin(ctx context.Context, args []string) error {
	fs := newFlags("login")
	u := fs.String("url", "", "controller address (default $DALABA_URL or http://127.0.0.1:8440)")
	user := fs.String("user", "", "your sign-in name")
	pwFile := fs.String("password-file", "-", "file holding your password (- reads a line from standard input)")
	newPwFile := fs.String("new-password-file", "", "file holding a new password, to replace a one-time password")
	save := fs.String("save", tokenFile(), "where to keep the API token (readable only by you)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *user == "" {
		return errors.New("login: --user is required")
	}
	fmt.Fprintf(os.Stderr, "password for %s: ", *user)
	pw, err := readSecret(*pwFile, os.Stdin)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return err
	}
	in := controller.SignIn{Name: *user, Password: pw, APIToken: "cli@" + hostname()}
	if *newPwFile != "" {
		if in.NewPassword, err = readSecret(*newPwFile, os.Stdin); err != nil {
			return err
		}
	}
	c := &client{base: strings.TrimRight(firstOf(*u, os.Getenv("DALABA_URL"), "http://127.0.0.1:8440"), "/"), http: httpClient()}
	var out controller.SignedIn
	if err := c.post(ctx, "/api/v1/signin", in, &out); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*save), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(*save, []byte(out.Token+"\n"), 0o600); err != nil {
		return fmt.Errorf("save token: %w", err)
	}
	fmt.Printf("signed in as %s (%s); API token kept in %s\n", out.User.Name, strings.Join(out.User.Roles, ", "), *save)
	return nil
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}

func cmdUserAdd(ctx context.Context, args []string) error {
	fs := newFlags("user add")
	api := apiFlags(fs)
	roles := fs.String("roles", "", "comma list: admin, officer, approver, cadre, technician, viewer")
	areas := fs.String("areas", "", "comma list of area codes this user may reach")
	display := fs.String("display", "", "full name")
	c, pos, err := connect(fs, api, args, "NAME")
	if err != nil {
		return err
	}
	var out controller.NewUser
	req := controller.UserRequest{Name: pos[0], Display: *display, Roles: splitComma(*roles), Areas: splitComma(*areas)}
	if err := c.post(ctx, "/api/v1/users", req, &out); err != nil {
		return err
	}
	fmt.Printf("user %s created (%s in %s)\none-time password: %s\nHand it over privately; it must be changed at first sign-in.\n",
		out.User.Name, strings.Join(out.User.Roles, ", "), strings.Join(out.User.Areas, ", "), out.Password)
	return nil
}

func splitComma(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func cmdUsers(ctx context.Context, args []string) error {
	fs := newFlags("users")
	api := apiFlags(fs)
	c, _, err := connect(fs, api, args)
	if err != nil {
		return err
	}
	var us []store.User
	if err := c.get(ctx, "/api/v1/users", &us); err != nil {
		return err
	}
	tw := table()
	fmt.Fprintln(tw, "NAME\tDISPLAY\tROLES\tAREAS\tSTATE")
	for _, u := range us {
		state := "active"
		switch {
		case u.Disabled:
			state = "disabled"
		case u.MustChange:
			state = "one-time password"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Name, u.Display, strings.Join(u.Roles, ","), strings.Join(u.Areas, ","), state)
	}
	return tw.Flush()
}

func cmdUserSet(ctx context.Context, args []string, disable bool) error {
	fs := newFlags("user disable")
	api := apiFlags(fs)
	c, pos, err := connect(fs, api, args, "NAME")
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPatch, "/api/v1/users/"+url.PathEscape(pos[0]), jsonBody(map[string]bool{"disabled": disable}), "application/json", nil)
}

func cmdResetPassword(ctx context.Context, args []string) error {
	fs := newFlags("user reset-password")
	api := apiFlags(fs)
	c, pos, err := connect(fs, api, args, "NAME")
	if err != nil {
		return err
	}
	var out controller.NewUser
	if err := c.post(ctx, "/api/v1/users/"+url.PathEscape(pos[0])+"/reset-password", nil, &out); err != nil {
		return err
	}
	fmt.Printf("one-time password for %s: %s\n", out.User.Name, out.Password)
	return nil
}

func cmdDecide(ctx context.Context, args []string, verb string) error {
	fs := newFlags("alert " + verb)
	api := apiFlags(fs)
	comment := fs.String("comment", "", "why (required)")
	c, pos, err := connect(fs, api, args, "ID")
	if err != nil {
		return err
	}
	var v controller.AlertView
	if err := c.post(ctx, "/api/v1/alerts/"+url.PathEscape(pos[0])+"/"+verb, map[string]string{"comment": *comment}, &v); err != nil {
		return err
	}
	fmt.Printf("alert %s: %s\n", v.ID, v.Status)
	return nil
}

func cmdApprovals(ctx context.Context, args []string) error {
	fs := newFlags("approvals")
	api := apiFlags(fs)
	c, _, err := connect(fs, api, args)
	if err != nil {
		return err
	}
	var ps []struct {
		controller.AlertView
		Approvers []string `json:"approvers"`
	}
	if err := c.get(ctx, "/api/v1/approvals", &ps); err != nil {
		return err
	}
	tw := table()
	fmt.Fprintln(tw, "EBM ID\tSTATUS\tLEVEL\tTITLE\tBY\tEXPIRES\tWHO MAY DECIDE")
	for _, p := range ps {
		status := p.Status
		if p.NeedsReview {
			status = "NEEDS REVIEW (issued now)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", p.ID, status, p.Level, p.Title, p.CreatedBy,
			p.Expires.Local().Format("01-02 15:04"), strings.Join(p.Approvers, ", "))
	}
	return tw.Flush()
}

func cmdAudit(ctx context.Context, args []string) error {
	sub := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	fs := newFlags("audit " + sub)
	api := apiFlags(fs)
	actor := fs.String("actor", "", "only this user")
	action := fs.String("action", "", "only actions starting with this (e.g. alert.)")
	out := fs.String("out", "", "with export: write the CSV here (default standard output)")
	c, _, err := connect(fs, api, args)
	if err != nil {
		return err
	}
	q := "?actor=" + url.QueryEscape(*actor) + "&action=" + url.QueryEscape(*action)
	switch sub {
	case "verify":
		var v struct {
			OK       bool   `json:"ok"`
			Entries  int    `json:"entries"`
			Verified int    `json:"entries_verified"`
			FirstBad int64  `json:"first_bad_seq"`
			Problem  string `json:"problem"`
		}
		if err := c.get(ctx, "/api/v1/audit/verify", &v); err != nil {
			return err
		}
		if v.OK {
			fmt.Printf("audit log intact: %d entries verified\n", v.Entries)
			return nil
		}
		fmt.Printf("AUDIT LOG DAMAGED: %s (first bad entry %d; %d entries before it verified)\n", v.Problem, v.FirstBad, v.Verified)
		return exitError(3)
	case "export":
		w := io.Writer(os.Stdout)
		if *out != "" {
			f, err := os.Create(*out)
			if err != nil {
				return err
			}
			defer f.Close()
			w = f
		}
		return c.download(ctx, "/api/v1/audit.csv"+q, w)
	case "":
		var es []audit.Entry
		if err := c.get(ctx, "/api/v1/audit"+q, &es); err != nil {
			return err
		}
		cw := csv.NewWriter(os.Stdout)
		cw.Comma = '\t'
		for _, e := range es {
			cw.Write([]string{fmt.Sprint(e.Seq), e.At.Local().Format(time.DateTime), e.Actor, e.Source, e.Action, e.Target, e.Detail})
		}
		cw.Flush()
		return nil
	}
	return fmt.Errorf("audit: unknown subcommand %q (verify, export)", sub)
}
