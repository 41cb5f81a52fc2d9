package main

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"dalaba/controller/store"
)

func cmdKeys(ctx context.Context, args []string) error {
	fs := newFlags("keys")
	api := apiFlags(fs)
	c, _, err := connect(fs, api, args)
	if err != nil {
		return err
	}
	var out struct {
		Keys     []store.IssuingKey `json:"keys"`
		Lacking  int                `json:"terminals_without_active_key"`
		Warnings []string           `json:"warnings"`
	}
	if err := c.get(ctx, "/api/v1/keys", &out); err != nil {
		return err
	}
	tw := table()
	fmt.Fprintln(tw, "KEY ID\tSTATE\tCREATED\tEXPIRES\tDAYS LEFT")
	for _, k := range out.Keys {
		state := "trusted"
		switch {
		case k.Active:
			state = "ACTIVE (signs)"
		case !k.Retired.IsZero():
			state = "retired " + k.Retired.Local().Format(time.DateOnly)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", k.KeyID, state, k.CreatedAt.Local().Format(time.DateOnly), k.NotAfter.Local().Format(time.DateOnly), int(time.Until(k.NotAfter).Hours()/24))
	}
	tw.Flush()
	fmt.Printf("terminals that have not yet confirmed the active key: %d\n", out.Lacking)
	for _, w := range out.Warnings {
		fmt.Println("WARNING:", w)
	}
	return nil
}

func cmdKeyRotate(ctx context.Context, args []string) error {
	fs := newFlags("key rotate")
	api := apiFlags(fs)
	days := fs.Int("valid-days", 730, "validity of the new key")
	c, _, err := connect(fs, api, args)
	if err != nil {
		return err
	}
	var k store.IssuingKey
	if err := c.post(ctx, "/api/v1/keys/rotate", map[string]int{"valid_days": *days}, &k); err != nil {
		return err
	}
	fmt.Printf("new issuing key %s signs from now on (valid until %s).\nConnected terminals were sent it, signed by the old key; the others get it when they connect.\nRetire the old key once `dalaba keys` shows no terminal without the active key.\n",
		k.KeyID, k.NotAfter.Local().Format(time.DateOnly))
	return nil
}

func cmdKeyRetire(ctx context.Context, args []string) error {
	fs := newFlags("key retire")
	api := apiFlags(fs)
	force := fs.Bool("force", false, "retire even though some terminals have not confirmed the active key")
	c, pos, err := connect(fs, api, args, "KID")
	if err != nil {
		return err
	}
	if err := c.post(ctx, "/api/v1/keys/"+url.PathEscape(pos[0])+"/retire", map[string]bool{"force": *force}, nil); err != nil {
		return err
	}
	fmt.Printf("issuing key %s retired; terminals are told to stop trusting it.\n", pos[0])
	return nil
}
