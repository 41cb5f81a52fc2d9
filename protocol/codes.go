package protocol

import (
	"fmt"
	"strings"
	"time"
)

// Lengths of the standard codes.
const (
	AreaCodeLen = 12 // 行政区划代码: province 2, city 2, county 2, township 3, village 3
	EBRIDLen    = 23 // resource code: level digit + area code + 10-digit tail
	EBMIDLen    = 35 // platform EBRID + yyyymmdd + 4-digit sequence
)

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// ValidAreaCode checks a 12-digit administrative area code.
func ValidAreaCode(s string) error {
	if len(s) != AreaCodeLen || !allDigits(s) {
		return fmt.Errorf("area code %q must be %d digits (e.g. 450224102003)", s, AreaCodeLen)
	}
	return nil
}

// ValidEBRID checks a 23-digit resource code.
func ValidEBRID(s string) error {
	if len(s) != EBRIDLen || !allDigits(s) {
		return fmt.Errorf("resource code %q must be %d digits", s, EBRIDLen)
	}
	if s[0] < '1' || s[0] > '6' {
		return fmt.Errorf("resource code %q: level digit %c is not 1..6", s, s[0])
	}
	return nil
}

// ValidEBMID checks a 35-digit EBM id: EBRID, a real date, a sequence.
func ValidEBMID(s string) error {
	if len(s) != EBMIDLen || !allDigits(s) {
		return fmt.Errorf("EBM id %q must be %d digits", s, EBMIDLen)
	}
	if err := ValidEBRID(s[:EBRIDLen]); err != nil {
		return fmt.Errorf("EBM id %q: %w", s, err)
	}
	if _, err := time.Parse("20060102", s[EBRIDLen:EBRIDLen+8]); err != nil {
		return fmt.Errorf("EBM id %q: date %s is not a date", s, s[EBRIDLen:EBRIDLen+8])
	}
	return nil
}

// NewEBMID builds an EBM id from the platform's EBRID, a date (taken in
// Beijing time) and a daily sequence 1..9999.
func NewEBMID(platform string, day time.Time, seq int) (string, error) {
	if err := ValidEBRID(platform); err != nil {
		return "", err
	}
	if seq < 1 || seq > 9999 {
		return "", fmt.Errorf("EBM sequence %d is outside 1..9999", seq)
	}
	return fmt.Sprintf("%s%s%04d", platform, day.In(Beijing).Format("20060102"), seq), nil
}

// Beijing is the time zone of the standards' timestamps (UTC+8, no DST).
var Beijing = time.FixedZone("CST", 8*3600)

// AreaContains reports whether area lies inside (or is) outer. Both are
// 12-digit codes; outer may be a province, city, county, township or village.
func AreaContains(outer, area string) bool {
	if ValidAreaCode(outer) != nil || ValidAreaCode(area) != nil {
		return false
	}
	return strings.HasPrefix(area, AreaLevelPrefix(outer))
}

// AreaLevelPrefix returns the significant digits of an area code: 12 for a
// village, 9 for a township, 6 for a county, 4 for a city, 2 for a province.
func AreaLevelPrefix(code string) string {
	for _, n := range []int{12, 9, 6, 4, 2} {
		if n == 2 || strings.Trim(code[n-levelWidth(n):n], "0") != "" {
			return code[:n]
		}
	}
	return code
}

func levelWidth(n int) int {
	if n > 6 {
		return 3
	}
	return 2
}
