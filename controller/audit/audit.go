// Package audit seals the controller's audit log into a keyed hash chain.
// Each entry's seal is an HMAC-SHA256, under a key kept outside the
// database, over the previous seal and the entry's fields; so editing,
// inserting or deleting a row breaks every seal after it, and someone who
// can write the database but not read the key cannot mend the chain.
package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"
)

// Entry is one audited action.
type Entry struct {
	Seq    int64     `json:"seq"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`  // user name, "terminal:<id>", or "system"
	Source string    `json:"source"` // remote address
	Action string    `json:"action"` // e.g. "alert.create", "user.signin_failed"
	Target string    `json:"target"` // what it acted on
	Before string    `json:"before,omitempty"`
	After  string    `json:"after,omitempty"`
	Detail string    `json:"detail,omitempty"`
	Prev   []byte    `json:"prev"`
	Seal   []byte    `json:"seal"`
}

// Sealed computes e's seal from the previous seal prev.
func Sealed(key, prev []byte, e Entry) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(prev)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(e.Seq))
	m.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(e.At.UnixMilli()))
	m.Write(n[:])
	for _, f := range []string{e.Actor, e.Source, e.Action, e.Target, e.Before, e.After, e.Detail} {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		m.Write(n[:])
		m.Write([]byte(f))
	}
	return m.Sum(nil)
}

// Problem is the first place the chain does not hold.
type Problem struct {
	Seq    int64  // the first entry that was altered, or that follows a removed one
	Reason string // "altered", "removed", "reordered"
}

func (p *Problem) Error() string {
	return fmt.Sprintf("audit log %s at entry %d", p.Reason, p.Seq)
}

// Verifier checks entries handed to it in Seq order.
type Verifier struct {
	key  []byte
	prev []byte
	next int64
	n    int
}

// NewVerifier starts a check of a chain whose first entry has sequence 1.
func NewVerifier(key []byte) *Verifier { return &Verifier{key: key, next: 1} }

// Check verifies the next entry; the first problem is returned as *Problem.
func (v *Verifier) Check(e Entry) error {
	switch {
	case e.Seq > v.next:
		return &Problem{Seq: e.Seq, Reason: fmt.Sprintf("removed (entries %d..%d missing)", v.next, e.Seq-1)}
	case e.Seq < v.next:
		return &Problem{Seq: e.Seq, Reason: "reordered"}
	case !hmac.Equal(e.Prev, v.prev) || !hmac.Equal(e.Seal, Sealed(v.key, v.prev, e)):
		return &Problem{Seq: e.Seq, Reason: "altered"}
	}
	v.prev, v.next = e.Seal, e.Seq+1
	v.n++
	return nil
}

// Head checks the end of the chain against the last sequence the controller
// recorded (sealed itself), which reveals entries removed from the end.
func (v *Verifier) Head(lastSeq int64) error {
	if v.next-1 < lastSeq {
		return &Problem{Seq: v.next, Reason: fmt.Sprintf("removed (entries %d..%d missing at the end)", v.next, lastSeq)}
	}
	return nil
}

// Count is how many entries verified.
func (v *Verifier) Count() int { return v.n }

// HeadSeal seals the record of the last sequence, so it cannot be edited
// to hide removed entries either.
func HeadSeal(key []byte, lastSeq int64, lastSeal []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("dalaba/audit-head/v1"))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(lastSeq))
	m.Write(n[:])
	m.Write(lastSeal)
	return m.Sum(nil)
}
