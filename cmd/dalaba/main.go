// Command dalaba is the operator's tool: it initialises an installation,
// enrolls terminals, uploads audio, sends, watches and cancels alerts, and
// runs a complete demo.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `dalaba — county emergency broadcast control

Usage:
  dalaba demo [--once]                       a controller and three village terminals, ready to try
  dalaba init [--data DIR] [--county CODE] [--county-name NAME] [--listen ADDR] [--admin NAME] [--admin-password-file F]
  dalaba login --user NAME [--password-file F] [--new-password-file F]
  dalaba user add NAME --roles R[,R] --areas CODE[,CODE] | disable NAME | enable NAME | reset-password NAME
  dalaba users
  dalaba keys | key rotate [--valid-days N] | key retire KID [--force]
  dalaba audit [--actor NAME] [--action PREFIX] | audit verify | audit export [--out FILE]
  dalaba area add CODE NAME [--parent CODE]
  dalaba areas
  dalaba terminal enroll --area CODE --name NAME [--lat N --lon N]
  dalaba terminal pending | approve KID --area CODE --name NAME | revoke ID
  dalaba terminal volume ID PERCENT
  dalaba terminal test-tone ID [--no-watch]     the terminal plays a 3 s 1 kHz tone; follows its delivery
  dalaba terminals [--area CODE]
  dalaba media upload FILE
  dalaba media tts [--lang zh|en] [--tone] TEXT      text to speech, stored as media
  dalaba alert send --area CODE --audio FILE [--level 1..4] [--title T] [--class emergency|daily] [--drill 3|4|5] [--watch]
  dalaba alert send --area CODE --text TEXT [--lang zh|en] [--tone] ...    the text read out by text to speech
  dalaba live --area CODE | --terminal ID [--title T] [--class daily|emergency --level N] [-v] FILE | -
        live speech (喊话): a WAV or MP3 file, or raw s16le 16 kHz mono PCM on stdin, at real-time pace
  dalaba alert approve|reject ID --comment TEXT
  dalaba approvals
  dalaba alert watch ID
  dalaba alert cancel ID [--reason TEXT]
  dalaba alerts
  dalaba reports [--terminal ID] [--kind receipt|fault|rejection|occurrence]
  dalaba program add --title T --audio FILE[,FILE] --area CODE
        (--daily 07:00[,12:00] | --weekdays mon,wed,fri --at 07:00 | --monthly 1,15 --at 08:00
         | --every-weeks 2 --at 07:00 [--weekdays mon] | --once "2026-12-01 07:00")
        [--from DATE] [--until DATE] [--except DATE,DATE] [--priority program|daily] [--volume N] [--late MIN]
  dalaba programs [--deleted]
  dalaba program show ID [--days N] [--terminal ID]   what happened to each occurrence
  dalaba program delete ID
  dalaba sim [-n N] [--townships T --villages V] [--per-process P] [--audio FILE --alert-token TOK] [--bound DUR]
        a simulated fleet of N terminals enrolled in bulk; with --audio, one alert timed to every terminal

The API address and token come from --url/--token, DALABA_URL/DALABA_TOKEN,
or the data folder (--data, default ./dalaba-data) on the controller's machine.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	var ex exitError
	switch {
	case err == nil:
	case errors.As(err, &ex):
		os.Exit(int(ex))
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "dalaba:", err)
		os.Exit(1)
	}
}

// exitError ends the program with a status and no further message.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func run(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Print(usage)
		return nil
	}
	sub, rest := args[0], args[1:]
	two := func() string {
		if len(rest) == 0 {
			return ""
		}
		s := rest[0]
		rest = rest[1:]
		return s
	}
	switch sub {
	case "demo":
		return cmdDemo(ctx, rest)
	case "init":
		return cmdInit(ctx, rest)
	case "areas":
		return cmdAreas(ctx, rest)
	case "terminals":
		return cmdTerminals(ctx, rest)
	case "alerts":
		return cmdAlerts(ctx, rest)
	case "reports":
		return cmdReports(ctx, rest)
	case "login":
		return cmdLogin(ctx, rest)
	case "users":
		return cmdUsers(ctx, rest)
	case "approvals":
		return cmdApprovals(ctx, rest)
	case "keys":
		return cmdKeys(ctx, rest)
	case "key":
		switch two() {
		case "rotate":
			return cmdKeyRotate(ctx, rest)
		case "retire":
			return cmdKeyRetire(ctx, rest)
		}
	case "audit":
		return cmdAudit(ctx, rest)
	case "user":
		switch two() {
		case "add":
			return cmdUserAdd(ctx, rest)
		case "disable":
			return cmdUserSet(ctx, rest, true)
		case "enable":
			return cmdUserSet(ctx, rest, false)
		case "reset-password":
			return cmdResetPassword(ctx, rest)
		}
	case "area":
		if v := two(); v == "add" {
			return cmdAreaAdd(ctx, rest)
		}
	case "terminal":
		switch two() {
		case "enroll":
			return cmdEnroll(ctx, rest)
		case "pending":
			return cmdPending(ctx, rest)
		case "approve":
			return cmdApprove(ctx, rest)
		case "revoke":
			return cmdRevoke(ctx, rest)
		case "volume":
			return cmdVolume(ctx, rest)
		case "test-tone":
			return cmdTestTone(ctx, rest)
		}
	case "programs":
		return cmdPrograms(ctx, rest)
	case "program":
		switch two() {
		case "add":
			return cmdProgramAdd(ctx, rest)
		case "show":
			return cmdProgramShow(ctx, rest)
		case "delete":
			return cmdProgramDelete(ctx, rest)
		}
	case "sim":
		return cmdSim(ctx, rest)
	case "live":
		return cmdLive(ctx, rest)
	case "media":
		switch two() {
		case "upload":
			return cmdUpload(ctx, rest)
		case "tts":
			return cmdTTS(ctx, rest)
		}
	case "alert":
		switch two() {
		case "send":
			return cmdSend(ctx, rest)
		case "watch":
			return cmdWatch(ctx, rest)
		case "cancel":
			return cmdCancel(ctx, rest)
		case "approve", "reject":
			return cmdDecide(ctx, rest, args[1])
		}
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", joinArgs(args))
}

func joinArgs(args []string) string {
	if len(args) > 2 {
		args = args[:2]
	}
	s := ""
	for i, a := range args {
		if i > 0 {
			s += " "
		}
		s += a
	}
	return s
}
