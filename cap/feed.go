package cap

import (
	"bytes"
	"encoding/xml"
	"fmt"
)

// atomNS is the Atom namespace (RFC 4287).
const atomNS = "http://www.w3.org/2005/Atom"

// MaxFeedEntries bounds the entries read from one feed.
const MaxFeedEntries = 200

// FeedEntry is one Atom entry that points at a CAP message.
type FeedEntry struct {
	ID      string
	Updated string
	Link    string // the CAP document's URL, as written (maybe relative)
}

// Document tells what a fetched document is: a single CAP alert (alert is
// true) or an Atom feed of them (entries). Anything else is an error.
// Hostile XML is refused first (CheckXML).
func Document(data []byte) (alert bool, entries []FeedEntry, err error) {
	if err := CheckXML(data); err != nil {
		return false, nil, err
	}
	var root struct{ XMLName xml.Name }
	if err := xml.Unmarshal(data, &root); err != nil {
		return false, nil, &Error{Element: "document", Msg: err.Error()}
	}
	switch root.XMLName {
	case xml.Name{Space: Namespace, Local: "alert"}:
		return true, nil, nil
	case xml.Name{Space: atomNS, Local: "feed"}:
	default:
		return false, nil, &Error{Element: root.XMLName.Local, Msg: fmt.Sprintf("neither a CAP 1.2 alert nor an Atom feed ({%s}%s)", root.XMLName.Space, root.XMLName.Local)}
	}
	var feed struct {
		Entries []struct {
			ID      string `xml:"id"`
			Updated string `xml:"updated"`
			Links   []struct {
				Href string `xml:"href,attr"`
				Rel  string `xml:"rel,attr"`
				Type string `xml:"type,attr"`
			} `xml:"link"`
		} `xml:"entry"`
	}
	if err := xml.NewDecoder(bytes.NewReader(data)).Decode(&feed); err != nil {
		return false, nil, &Error{Element: "feed", Msg: err.Error()}
	}
	if len(feed.Entries) > MaxFeedEntries {
		return false, nil, &Error{Element: "feed/entry", Msg: fmt.Sprintf("%d entries, more than the limit of %d", len(feed.Entries), MaxFeedEntries)}
	}
	for i, e := range feed.Entries {
		best := ""
		for _, l := range e.Links {
			switch {
			case l.Href == "":
			case l.Type == "application/cap+xml":
				best = l.Href
			case best == "" && (l.Rel == "" || l.Rel == "alternate"):
				best = l.Href
			}
		}
		if best == "" {
			return false, nil, &Error{Element: fmt.Sprintf("feed/entry[%d]/link", i), Msg: "no link to the CAP message"}
		}
		entries = append(entries, FeedEntry{ID: e.ID, Updated: e.Updated, Link: best})
	}
	return false, entries, nil
}
