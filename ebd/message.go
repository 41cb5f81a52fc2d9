// Package ebd reads and writes the EBD packets exchanged with the superior
// (city or provincial) emergency broadcast platform: a tar holding the EBDB
// message XML, its EBDS signature file (SM2 over SM3) and any recordings.
// See docs/ebd.md. It knows nothing of the controller.
package ebd

import (
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"dalaba/protocol"
)

// EBDResponse result codes.
const (
	ResultReceived  = 0 // received, not processed
	ResultOK        = 1
	ResultParse     = 2 // parse failed
	ResultMissing   = 3 // content missing
	ResultSignature = 4 // signature check failed
	ResultOther     = 5
)

// Error is a packet refused with a result code.
type Error struct {
	Code int
	Desc string
}

func (e *Error) Error() string { return fmt.Sprintf("result %d: %s", e.Code, e.Desc) }

func fail(code int, format string, args ...any) *Error {
	return &Error{Code: code, Desc: fmt.Sprintf(format, args...)}
}

// EBD types this package builds or acts on.
const (
	TypeEBM              = "EBM"
	TypeResponse         = "EBDResponse"
	TypeConnectionCheck  = "ConnectionCheck"
	TypeEBMStateRequest  = "EBMStateRequest"
	TypeEBMStateResponse = "EBMStateResponse"
)

// TimeLayout is the standards' time format, Beijing time.
const TimeLayout = "2006-01-02 15:04:05"

// FormatTime renders t in Beijing time.
func FormatTime(t time.Time) string { return t.In(protocol.Beijing).Format(TimeLayout) }

// ParseTime reads a Beijing-time "yyyy-MM-dd HH:mm:ss".
func ParseTime(field, s string) (time.Time, error) {
	t, err := time.ParseInLocation(TimeLayout, strings.TrimSpace(s), protocol.Beijing)
	if err != nil {
		return t, fail(ResultParse, "%s %q is not a time like 2026-07-01 08:00:00", field, s)
	}
	return t, nil
}

// EBD is the root of an EBDB file.
type EBD struct {
	XMLName       xml.Name         `xml:"EBD"`
	Version       string           `xml:"EBDVersion"`
	ID            string           `xml:"EBDID"`
	Type          string           `xml:"EBDType"`
	SRC           Resource         `xml:"SRC"`
	DEST          *Resource        `xml:"DEST,omitempty"`
	Time          string           `xml:"EBDTime"`
	RelatedEBD    *Related         `xml:"RelatedEBD,omitempty"`
	EBM           *EBM             `xml:"EBM,omitempty"`
	Response      *Response        `xml:"EBDResponse,omitempty"`
	Check         *ConnectionCheck `xml:"ConnectionCheck,omitempty"`
	StateRequest  *StateRequest    `xml:"EBMStateRequest,omitempty"`
	StateResponse *StateResponse   `xml:"EBMStateResponse,omitempty"`
}

// Resource names a platform: its EBRID (one implementation writes EBEID).
type Resource struct {
	EBRID string `xml:"EBRID,omitempty"`
	EBEID string `xml:"EBEID,omitempty"`
	URL   string `xml:"URL,omitempty"`
}

// Code is the resource code, whichever element carried it.
func (r Resource) Code() string {
	if r.EBRID != "" {
		return strings.TrimSpace(r.EBRID)
	}
	return strings.TrimSpace(r.EBEID)
}

// Related refers to another EBD.
type Related struct {
	EBDID string `xml:"EBDID"`
}

// EBM is an alert.
type EBM struct {
	Version     string       `xml:"EBMVersion"`
	ID          string       `xml:"EBMID"`
	RelatedInfo *RelatedEBM  `xml:"RelatedInfo,omitempty"`
	RelatedEBM  *RelatedEBM  `xml:"RelatedEBM,omitempty"`
	Basic       MsgBasicInfo `xml:"MsgBasicInfo"`
	Content     MsgContent   `xml:"MsgContent"`
}

// RelatedEBM names the alert a cancel refers to.
type RelatedEBM struct {
	EBMID string `xml:"EBMID"`
}

// MsgBasicInfo is an EBM's kind, sender, event, level and window.
type MsgBasicInfo struct {
	MsgType    string `xml:"MsgType"`
	SenderName string `xml:"SenderName"`
	SenderCode string `xml:"SenderCode"`
	SendTime   string `xml:"SendTime,omitempty"`
	SentTime   string `xml:"SentTime,omitempty"`
	EventType  string `xml:"EventType"`
	Severity   string `xml:"Severity"`
	StartTime  string `xml:"StartTime"`
	EndTime    string `xml:"EndTime"`
}

// MsgContent is what an EBM says and where.
type MsgContent struct {
	LanguageCode string      `xml:"LanguageCode"`
	MsgTitle     string      `xml:"MsgTitle"`
	MsgDesc      string      `xml:"MsgDesc"`
	AreaCode     []string    `xml:"AreaCode"`
	ProgramNum   string      `xml:"ProgramNum,omitempty"`
	Auxiliary    []Auxiliary `xml:"Auxiliary"`
}

// Auxiliary is an EBM's recording (type 2, a file in the tar) or stream (61).
// Digest, when given, is the SM3 of the file in hex: the signed EBDB then
// covers the recording too.
type Auxiliary struct {
	Type   string `xml:"AuxiliaryType"`
	Desc   string `xml:"AuxiliaryDesc"`
	Size   string `xml:"Size,omitempty"`
	Digest string `xml:"Digest,omitempty"`
}

// Auxiliary types.
const (
	AuxMP3    = 2
	AuxStream = 61
)

// Response is an EBDResponse body.
type Response struct {
	ResultCode int    `xml:"ResultCode"`
	ResultDesc string `xml:"ResultDesc"`
}

// ConnectionCheck is the unsigned keep-alive.
type ConnectionCheck struct {
	RptTime string `xml:"RptTime"`
}

// StateRequest asks for an EBM's broadcast state.
type StateRequest struct {
	EBM RelatedEBM `xml:"EBM"`
}

// StateResponse reports an EBM's broadcast state upward.
type StateResponse struct {
	RptTime      string     `xml:"RptTime"`
	EBM          RelatedEBM `xml:"EBM"`
	BrdStateCode int        `xml:"BrdStateCode"`
	BrdStateDesc string     `xml:"BrdStateDesc"`
	Coverage     *Coverage  `xml:"Coverage,omitempty"`
}

// Coverage summarises how much of the target played.
type Coverage struct {
	CoverageRate string `xml:"CoverageRate"`
	AreaCode     string `xml:"AreaCode"`
	ResBrdStat   string `xml:"ResBrdStat"`
}

// Alert is an EBM checked and read into values.
type Alert struct {
	EBMID     string
	Related   string // the EBM a cancel refers to
	MsgType   int    // 1 actual, 2 cancel, 3..5 drill
	Sender    string
	EventType string
	Severity  int // 0 unspecified, 1..4
	Start     time.Time
	End       time.Time
	Title     string
	Text      string
	Language  string
	Areas     []string
	Audio     []string // names of MP3 files in the packet, in order
}

// Check validates an EBM against the field rules: result code 3 for a
// missing element, 2 for a malformed one. files are the packet's other
// entries, which a type-2 auxiliary must name.
func (m *EBM) Check(files map[string][]byte) (Alert, error) {
	var a Alert
	a.EBMID = strings.TrimSpace(m.ID)
	if a.EBMID == "" {
		return a, fail(ResultMissing, "EBM/EBMID is missing")
	}
	if err := protocol.ValidEBMID(a.EBMID); err != nil {
		return a, fail(ResultParse, "EBM/EBMID: %v", err)
	}
	b := m.Basic
	var err error
	if a.MsgType, err = number("MsgBasicInfo/MsgType", b.MsgType, 1, 5); err != nil {
		return a, err
	}
	if m.RelatedInfo != nil {
		a.Related = strings.TrimSpace(m.RelatedInfo.EBMID)
	} else if m.RelatedEBM != nil {
		a.Related = strings.TrimSpace(m.RelatedEBM.EBMID)
	}
	if a.MsgType == protocol.MsgCancel {
		if a.Related == "" {
			return a, fail(ResultMissing, "a cancel (MsgType 2) needs RelatedInfo/EBMID naming the alert it cancels")
		}
		if err := protocol.ValidEBMID(a.Related); err != nil {
			return a, fail(ResultParse, "RelatedInfo/EBMID: %v", err)
		}
		return a, nil
	}
	a.Sender = strings.TrimSpace(b.SenderName)
	a.EventType = strings.TrimSpace(b.EventType)
	if len(a.EventType) != 5 {
		return a, fail(ResultParse, "MsgBasicInfo/EventType %q must be 5 characters (e.g. 11000)", b.EventType)
	}
	if a.Severity, err = number("MsgBasicInfo/Severity", b.Severity, 0, 4); err != nil {
		return a, err
	}
	if a.Start, err = requiredTime("MsgBasicInfo/StartTime", b.StartTime); err != nil {
		return a, err
	}
	if a.End, err = requiredTime("MsgBasicInfo/EndTime", b.EndTime); err != nil {
		return a, err
	}
	if !a.End.After(a.Start) {
		return a, fail(ResultParse, "MsgBasicInfo/EndTime %s is not after StartTime %s", b.EndTime, b.StartTime)
	}
	c := m.Content
	a.Language, a.Title, a.Text = strings.TrimSpace(c.LanguageCode), strings.TrimSpace(c.MsgTitle), strings.TrimSpace(c.MsgDesc)
	if a.Title == "" {
		a.Title = a.Text
	}
	if a.Title == "" {
		return a, fail(ResultMissing, "MsgContent/MsgTitle and MsgDesc are both missing")
	}
	for _, field := range c.AreaCode {
		for _, code := range strings.FieldsFunc(field, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\n' || r == '\t' }) {
			if err := protocol.ValidAreaCode(code); err != nil {
				return a, fail(ResultParse, "MsgContent/AreaCode: %v", err)
			}
			a.Areas = append(a.Areas, code)
		}
	}
	if len(a.Areas) == 0 {
		return a, fail(ResultMissing, "MsgContent/AreaCode is missing")
	}
	for i, aux := range c.Auxiliary {
		t, err := number(fmt.Sprintf("Auxiliary[%d]/AuxiliaryType", i+1), aux.Type, 0, 255)
		if err != nil {
			return a, err
		}
		if t != AuxMP3 {
			continue // live streams are not relayed; the text is spoken instead
		}
		name := strings.TrimSpace(aux.Desc)
		data, ok := files[name]
		if !ok {
			return a, fail(ResultMissing, "Auxiliary[%d]: the file %q is not in the packet", i+1, name)
		}
		if aux.Size != "" {
			if n, err := strconv.ParseInt(strings.TrimSpace(aux.Size), 10, 64); err != nil || n != int64(len(data)) {
				return a, fail(ResultParse, "Auxiliary[%d]/Size %q does not match the file's %d bytes", i+1, aux.Size, len(data))
			}
		}
		if d := strings.ToLower(strings.TrimSpace(aux.Digest)); d != "" {
			if sum := sm3.Sum(data); d != hex.EncodeToString(sum[:]) {
				return a, fail(ResultSignature, "Auxiliary[%d]: the file %q does not match its SM3 Digest", i+1, name)
			}
		}
		a.Audio = append(a.Audio, name)
	}
	return a, nil
}

func number(field, s string, lo, hi int) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fail(ResultMissing, "%s is missing", field)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fail(ResultParse, "%s %q must be a number %d..%d", field, s, lo, hi)
	}
	return n, nil
}

func requiredTime(field, s string) (time.Time, error) {
	if strings.TrimSpace(s) == "" {
		return time.Time{}, fail(ResultMissing, "%s is missing", field)
	}
	return ParseTime(field, s)
}

// NewEBDID builds an EBD id: "10" + the sender's EBRID + yyyyMMdd (Beijing)
// + an 8-digit daily counter.
func NewEBDID(ebrid string, day time.Time, seq int) (string, error) {
	if err := protocol.ValidEBRID(ebrid); err != nil {
		return "", err
	}
	if seq < 1 || seq > 99_999_999 {
		return "", fmt.Errorf("EBD sequence %d is outside 1..99999999", seq)
	}
	return fmt.Sprintf("10%s%s%08d", ebrid, day.In(protocol.Beijing).Format("20060102"), seq), nil
}

// validID accepts the ids platforms send: 1..64 digits (41 is usual).
func validID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("EBD id %q must be 1..64 digits", id)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return fmt.Errorf("EBD id %q must be digits only", id)
		}
	}
	return nil
}
