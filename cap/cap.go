// Package cap reads, checks and writes OASIS Common Alerting Protocol 1.2
// messages (http://docs.oasis-open.org/emergency/cap/v1.2/CAP-v1.2-os.html):
// hostile XML is refused before it is parsed (CheckXML), every rule of the
// standard Dalaba relies on is checked with an error naming the element,
// enveloped XML signatures are verified against a trust list (Verify), and
// an alert can be written back out (Marshal).
package cap

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Namespace is CAP 1.2's XML namespace.
const Namespace = "urn:oasis:names:tc:emergency:cap:1.2"

// Alert is a CAP 1.2 <alert>.
type Alert struct {
	XMLName     xml.Name `xml:"urn:oasis:names:tc:emergency:cap:1.2 alert"`
	Identifier  string   `xml:"identifier"`
	Sender      string   `xml:"sender"`
	Sent        string   `xml:"sent"`
	Status      string   `xml:"status"`
	MsgType     string   `xml:"msgType"`
	Source      string   `xml:"source,omitempty"`
	Scope       string   `xml:"scope"`
	Restriction string   `xml:"restriction,omitempty"`
	Addresses   string   `xml:"addresses,omitempty"`
	Codes       []string `xml:"code,omitempty"`
	Note        string   `xml:"note,omitempty"`
	References  string   `xml:"references,omitempty"`
	Incidents   string   `xml:"incidents,omitempty"`
	Infos       []Info   `xml:"info"`
}

// Info is one <info> block: the alert in one language.
type Info struct {
	Language      string     `xml:"language,omitempty"`
	Categories    []string   `xml:"category"`
	Event         string     `xml:"event"`
	ResponseTypes []string   `xml:"responseType,omitempty"`
	Urgency       string     `xml:"urgency"`
	Severity      string     `xml:"severity"`
	Certainty     string     `xml:"certainty"`
	Audience      string     `xml:"audience,omitempty"`
	EventCodes    []Value    `xml:"eventCode,omitempty"`
	Effective     string     `xml:"effective,omitempty"`
	Onset         string     `xml:"onset,omitempty"`
	Expires       string     `xml:"expires,omitempty"`
	SenderName    string     `xml:"senderName,omitempty"`
	Headline      string     `xml:"headline,omitempty"`
	Description   string     `xml:"description,omitempty"`
	Instruction   string     `xml:"instruction,omitempty"`
	Web           string     `xml:"web,omitempty"`
	Contact       string     `xml:"contact,omitempty"`
	Parameters    []Value    `xml:"parameter,omitempty"`
	Resources     []Resource `xml:"resource,omitempty"`
	Areas         []Area     `xml:"area,omitempty"`
}

// Value is a valueName/value pair (eventCode, parameter, geocode).
type Value struct {
	ValueName string `xml:"valueName"`
	Value     string `xml:"value"`
}

// Resource is a file that goes with an info block.
type Resource struct {
	ResourceDesc string `xml:"resourceDesc"`
	MimeType     string `xml:"mimeType"`
	Size         string `xml:"size,omitempty"`
	URI          string `xml:"uri,omitempty"`
	DerefURI     string `xml:"derefUri,omitempty"`
	Digest       string `xml:"digest,omitempty"`
}

// Area is where an info block applies.
type Area struct {
	AreaDesc string   `xml:"areaDesc"`
	Polygons []string `xml:"polygon,omitempty"`
	Circles  []string `xml:"circle,omitempty"`
	Geocodes []Value  `xml:"geocode,omitempty"`
	Altitude string   `xml:"altitude,omitempty"`
	Ceiling  string   `xml:"ceiling,omitempty"`
}

// Enumerations of CAP 1.2.
var (
	Statuses      = []string{"Actual", "Exercise", "System", "Test", "Draft"}
	MsgTypes      = []string{"Alert", "Update", "Cancel", "Ack", "Error"}
	Scopes        = []string{"Public", "Restricted", "Private"}
	Categories    = []string{"Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra", "CBRNE", "Other"}
	ResponseTypes = []string{"Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None"}
	Urgencies     = []string{"Immediate", "Expected", "Future", "Past", "Unknown"}
	Severities    = []string{"Extreme", "Severe", "Moderate", "Minor", "Unknown"}
	Certainties   = []string{"Observed", "Likely", "Possible", "Unlikely", "Unknown"}
)

// Parse checks data for hostile XML (CheckXML), decodes it as a CAP 1.2
// alert and validates it. Every error is an *Error naming the element.
func Parse(data []byte) (*Alert, error) {
	if err := CheckXML(data); err != nil {
		return nil, err
	}
	var root struct {
		XMLName xml.Name
	}
	if err := xml.Unmarshal(data, &root); err != nil {
		return nil, &Error{Element: "document", Msg: err.Error()}
	}
	if root.XMLName.Local != "alert" || root.XMLName.Space != Namespace {
		return nil, &Error{Element: root.XMLName.Local, Msg: fmt.Sprintf("the root must be <alert> in namespace %s (got {%s}%s)", Namespace, root.XMLName.Space, root.XMLName.Local)}
	}
	var a Alert
	if err := xml.Unmarshal(data, &a); err != nil {
		return nil, &Error{Element: "alert", Msg: err.Error()}
	}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	return &a, nil
}

// Validate checks the rules of CAP 1.2 that a receiver relies on: required
// elements, enumerations, identifiers without spaces, commas or < &, times
// with an explicit offset, restriction and addresses by scope, and
// references well formed and present for Update and Cancel.
func (a *Alert) Validate() error {
	v := &validator{}
	v.id("alert/identifier", a.Identifier)
	v.id("alert/sender", a.Sender)
	v.time("alert/sent", a.Sent, true)
	v.enum("alert/status", a.Status, Statuses)
	v.enum("alert/msgType", a.MsgType, MsgTypes)
	v.enum("alert/scope", a.Scope, Scopes)
	if a.Scope == "Restricted" && strings.TrimSpace(a.Restriction) == "" {
		v.fail("alert/restriction", "required when scope is Restricted")
	}
	if a.Scope == "Private" && strings.TrimSpace(a.Addresses) == "" {
		v.fail("alert/addresses", "required when scope is Private")
	}
	refs, err := ParseReferences(a.References)
	if err != nil {
		v.fail("alert/references", err.Error())
	}
	if (a.MsgType == "Update" || a.MsgType == "Cancel") && len(refs) == 0 && err == nil {
		v.fail("alert/references", "required for msgType "+a.MsgType+": say which earlier alert it "+strings.ToLower(a.MsgType)+"s")
	}
	for i, in := range a.Infos {
		in.validate(v, fmt.Sprintf("alert/info[%d]", i))
	}
	return v.err
}

func (in *Info) validate(v *validator, at string) {
	if len(in.Categories) == 0 {
		v.fail(at+"/category", "required (one of "+strings.Join(Categories, ", ")+")")
	}
	for _, c := range in.Categories {
		v.enum(at+"/category", c, Categories)
	}
	v.required(at+"/event", in.Event)
	for _, r := range in.ResponseTypes {
		v.enum(at+"/responseType", r, ResponseTypes)
	}
	v.enum(at+"/urgency", in.Urgency, Urgencies)
	v.enum(at+"/severity", in.Severity, Severities)
	v.enum(at+"/certainty", in.Certainty, Certainties)
	v.time(at+"/effective", in.Effective, false)
	v.time(at+"/onset", in.Onset, false)
	v.time(at+"/expires", in.Expires, false)
	for i, r := range in.Resources {
		rat := fmt.Sprintf("%s/resource[%d]", at, i)
		v.required(rat+"/resourceDesc", r.ResourceDesc)
		v.required(rat+"/mimeType", r.MimeType)
	}
	for i, ar := range in.Areas {
		aat := fmt.Sprintf("%s/area[%d]", at, i)
		v.required(aat+"/areaDesc", ar.AreaDesc)
		for _, g := range ar.Geocodes {
			v.required(aat+"/geocode/valueName", g.ValueName)
		}
	}
}

// validator keeps the first failure.
type validator struct{ err error }

func (v *validator) fail(el, msg string) {
	if v.err == nil {
		v.err = &Error{Element: el, Msg: msg}
	}
}

func (v *validator) required(el, s string) {
	if strings.TrimSpace(s) == "" {
		v.fail(el, "required")
	}
}

func (v *validator) enum(el, s string, allowed []string) {
	switch {
	case s == "":
		v.fail(el, "required (one of "+strings.Join(allowed, ", ")+")")
	case !slices.Contains(allowed, s):
		v.fail(el, fmt.Sprintf("%q is not one of %s", clip(s), strings.Join(allowed, ", ")))
	}
}

func (v *validator) id(el, s string) {
	switch {
	case s == "":
		v.fail(el, "required")
	case strings.ContainsAny(s, " \t\r\n,<&"):
		v.fail(el, fmt.Sprintf("%q must not contain spaces, commas, < or &", clip(s)))
	case len(s) > 256:
		v.fail(el, "longer than 256 characters")
	}
}

func (v *validator) time(el, s string, required bool) {
	if s == "" {
		if required {
			v.fail(el, "required (e.g. 2026-07-01T08:00:00+08:00)")
		}
		return
	}
	if _, err := ParseTime(s); err != nil {
		v.fail(el, err.Error())
	}
}

// timePattern is CAP's dateTime: seconds, no fraction, an explicit offset.
var timePattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}([+-]\d{2}:\d{2}|Z)$`)

// ParseTime reads a CAP dateTime such as 2026-07-01T08:00:00+08:00. CAP
// 1.2 forbids "Z"; it is accepted (it is unambiguous, and some senders
// use it) and written as -00:00 by Marshal.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if !timePattern.MatchString(s) {
		return time.Time{}, fmt.Errorf("%q is not a CAP time like 2026-07-01T08:00:00+08:00", clip(s))
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: %v", clip(s), err)
	}
	return t, nil
}

// FormatTime writes a time as CAP wants it (explicit offset, never "Z").
func FormatTime(t time.Time) string {
	s := t.Truncate(time.Second).Format("2006-01-02T15:04:05-07:00")
	return s
}

// Reference names an earlier message: sender, identifier and sent time.
type Reference struct {
	Sender, Identifier, Sent string
}

// ParseReferences reads a references element: space-separated
// "sender,identifier,sent" triples.
func ParseReferences(s string) ([]Reference, error) {
	var out []Reference
	for _, f := range strings.Fields(s) {
		parts := strings.Split(f, ",")
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
			return nil, fmt.Errorf("%q is not sender,identifier,sent", clip(f))
		}
		if _, err := ParseTime(parts[2]); err != nil {
			return nil, fmt.Errorf("%q: sent %v", clip(f), err)
		}
		out = append(out, Reference{Sender: parts[0], Identifier: parts[1], Sent: parts[2]})
	}
	return out, nil
}

// clip shortens a value quoted in an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Marshal writes an alert as a CAP 1.2 document, with the XML declaration.
// The alert is validated first.
func Marshal(a *Alert) ([]byte, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	a.XMLName = xml.Name{Space: Namespace, Local: "alert"}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(a); err != nil {
		return nil, fmt.Errorf("cap: encode: %w", err)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}
