package schedule

import (
	"fmt"
	"strings"
	"time"
)

// ItemID names one occurrence of a program: the program id, "@", and the
// start in RFC 3339 on the county's clock, e.g.
// "3f9a1c2b7d4e@2026-12-01T07:00:00+08:00". It is stable: the same program
// and instant give the same id in every schedule made.
func ItemID(programID string, start time.Time, loc *time.Location) string {
	return programID + "@" + start.In(loc).Format(time.RFC3339)
}

// ParseItemID splits an occurrence id into its program id and start.
func ParseItemID(id string) (programID string, start time.Time, err error) {
	i := strings.LastIndexByte(id, '@')
	if i <= 0 {
		return "", time.Time{}, fmt.Errorf("occurrence id %q is not program@start", id)
	}
	start, err = time.Parse(time.RFC3339, id[i+1:])
	if err != nil {
		return "", time.Time{}, fmt.Errorf("occurrence id %q: start: %v", id, err)
	}
	return id[:i], start, nil
}
