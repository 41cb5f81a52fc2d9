package relay

// Hostile input from the serial line: whatever bytes a board (or noise on
// the line) sends back, the drivers never panic, never hang past their
// timeout, and never report success unless the exact expected answer frame
// is among those bytes. make fuzz runs these targets longer.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"
)

// scriptPort answers the i-th request with replies[i]. It plays the board
// without a reader goroutine: the answer is placed in the link's buffer
// during Write, and the driver's deadline has already passed, so each call
// parses exactly the bytes given and returns at once, the same way on every
// run.
type scriptPort struct {
	l        *link
	replies  [][]byte
	answered func(req []byte) bool // whether a request gets the next reply
	writes   [][]byte
}

var _ Port = (*scriptPort)(nil)

func (p *scriptPort) Write(b []byte) (int, error) {
	p.writes = append(p.writes, bytes.Clone(b))
	if p.answered(b) && len(p.replies) > 0 {
		p.l.pending = append(p.l.pending, p.replies[0]...)
		p.replies = p.replies[1:]
	}
	return len(b), nil
}

func (p *scriptPort) Read([]byte) (int, error) { return 0, io.EOF }

func (p *scriptPort) Close() error { return nil }

// scriptedLink is a link over a scriptPort, without the reader goroutine.
func scriptedLink(answered func([]byte) bool, replies ...[]byte) *link {
	l := &link{chunks: make(chan []byte, 1), quit: make(chan struct{}), done: make(chan struct{})}
	l.port = &scriptPort{l: l, replies: replies, answered: answered}
	return l
}

// expired is a driver timeout that has passed by the time an answer is
// awaited: the bytes already received are parsed, then the call ends.
const expired = time.Nanosecond

// checkFailure checks that a driver error says what went wrong in the
// sentinel terms callers test for.
func checkFailure(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrNoAnswer) && !errors.Is(err, ErrReadBack) {
		t.Fatalf("error %v wraps neither ErrNoAnswer nor ErrReadBack", err)
	}
}

// lcusReply builds a reply from fuzz input: junk, then three bytes followed
// by their LCUS sum when withSum is set (so the fuzzer reaches frames that
// pass the checksum), then more junk.
func lcusReply(junk, body, tail []byte, withSum bool) []byte {
	b := bytes.Clone(junk)
	if withSum && len(body) >= 3 {
		b = append(b, body[0], body[1], body[2], body[0]+body[1]+body[2])
		body = body[3:]
	}
	return append(append(b, body...), tail...)
}

// FuzzLCUSAnswer asks an LCUS channel for its state and answers with
// arbitrary bytes: the driver reports a state only when the reply holds the
// exact 4-byte state frame of that channel.
func FuzzLCUSAnswer(f *testing.F) {
	on, off := LCUSFrame(1, LCUSOn), LCUSFrame(1, LCUSOff)
	f.Add(uint8(1), []byte{}, on[:3], []byte{}, true)                          // A0 01 01 A2: on (MISSION.md)
	f.Add(uint8(1), []byte{0x13}, off[:3], []byte{}, true)                     // junk, then A0 01 00 A1: off
	f.Add(uint8(1), []byte{}, []byte{0xA0, 0x01, 0x01, 0x00}, []byte{}, false) // bad sum
	f.Add(uint8(2), []byte{}, on[:3], []byte{}, true)                          // channel 1 answers channel 2's query
	f.Add(uint8(1), []byte{0xA0, 0xA0}, []byte{0xA0, 0x01, 0x07}, on, true)    // unknown state first
	f.Add(uint8(1), []byte("CH1:ON\r\n"), []byte{}, []byte{}, false)           // a text-answering board
	f.Fuzz(func(t *testing.T, channel uint8, junk, body, tail []byte, withSum bool) {
		if channel == 0 {
			channel = 1
		}
		reply := lcusReply(junk, body, tail, withSum)
		l := scriptedLink(func(req []byte) bool { return len(req) == 4 && req[2] == LCUSQuery }, reply)
		r := &LCUS{link: l, channel: int(channel), timeout: expired}
		start := time.Now()
		got, err := r.State()
		if d := time.Since(start); d > time.Second {
			t.Fatalf("State took %s with an expired deadline", d)
		}
		if err != nil {
			checkFailure(t, err)
			return
		}
		state := LCUSOff
		if got {
			state = LCUSOn
		}
		if want := LCUSFrame(int(channel), state); !bytes.Contains(reply, want) {
			t.Fatalf("State() = %v from % X, which does not hold the frame % X", got, reply, want)
		}
	})
}

// modbusReply builds a reply from fuzz input like lcusReply, with a
// CRC-16/MODBUS after body when withCRC is set.
func modbusReply(junk, body, tail []byte, withCRC bool) []byte {
	b := append(bytes.Clone(junk), body...)
	if withCRC {
		b = binary.LittleEndian.AppendUint16(b, CRC16Modbus(body))
	}
	return append(b, tail...)
}

// FuzzModbusAnswer switches a Modbus coil and reads it back, or only reads
// it, with arbitrary answers: success needs the exact echo of the write and
// the exact one-coil read answer for the state asked for.
func FuzzModbusAnswer(f *testing.F) {
	echoOn := ModbusWriteCoil(1, 0, true)             // 01 05 00 00 FF 00 8C 3A (MISSION.md)
	readOn := []byte{0x01, ModbusReadCoilsFunc, 1, 1} // + CRC
	f.Add(uint8(1), uint8(1), true, true, echoOn[:6], []byte{}, readOn, true)
	f.Add(uint8(1), uint8(1), false, true, []byte{}, []byte{0x55}, []byte{0x01, 0x01, 0x01, 0x00}, true)
	f.Add(uint8(1), uint8(1), true, true, echoOn[:6], []byte{}, []byte{0x01, 0x01, 0x01, 0x03}, true) // padding bits set
	f.Add(uint8(1), uint8(1), true, true, echoOn[:6], []byte{}, []byte{0x01, 0x81, 0x02}, true)       // exception
	f.Add(uint8(1), uint8(1), true, true, echoOn[:6], []byte{}, []byte{0x01, 0x01, 0x02, 0x01, 0x00}, true)
	f.Add(uint8(2), uint8(3), false, false, []byte{}, []byte{}, []byte{0x02, 0x01, 0x01, 0x00}, true)
	f.Add(uint8(1), uint8(1), true, true, ModbusWriteCoil(1, 0, false)[:6], []byte{}, readOn, true)
	f.Fuzz(func(t *testing.T, slave, channel uint8, set, on bool, echo, junk, read []byte, withCRC bool) {
		if slave == 0 || slave > 247 {
			slave = 1
		}
		if channel == 0 {
			channel = 1
		}
		echoReply := modbusReply(nil, echo, nil, withCRC)
		readReply := modbusReply(junk, read, nil, withCRC)
		var l *link
		if set {
			l = scriptedLink(func([]byte) bool { return true }, echoReply, readReply)
		} else {
			l = scriptedLink(func([]byte) bool { return true }, readReply)
		}
		r := &Modbus{link: l, slave: slave, channel: int(channel), timeout: expired}
		var got bool
		var err error
		if set {
			err = r.Set(on)
			got = on
		} else {
			got, err = r.State()
		}
		if err != nil {
			checkFailure(t, err)
			return
		}
		if set {
			if want := ModbusWriteCoil(slave, uint16(channel-1), on); !bytes.Contains(echoReply, want) {
				t.Fatalf("Set(%v) succeeded on echo % X, which does not hold % X", on, echoReply, want)
			}
		}
		bit := byte(0)
		if got {
			bit = 1
		}
		if want := appendCRC([]byte{slave, ModbusReadCoilsFunc, 1, bit}); !bytes.Contains(readReply, want) {
			t.Fatalf("read coil %v from % X, which does not hold the frame % X", got, readReply, want)
		}
	})
}

// FuzzFrameRecognisers checks the property the link's byte-by-byte
// resynchronisation relies on: a recogniser's verdict on the bytes seen so
// far (a frame of n bytes, or "this byte starts no frame") never changes
// when more bytes arrive, so how the serial line splits a reply into reads
// cannot change what is parsed.
func FuzzFrameRecognisers(f *testing.F) {
	f.Add([]byte{0xA0, 0x01, 0x01, 0xA2}, uint8(1))
	f.Add(ModbusWriteCoil(1, 0, true), uint8(1))
	f.Add(appendCRC([]byte{1, ModbusReadCoilsFunc, 1, 1}), uint8(1))
	f.Add(appendCRC([]byte{1, ModbusReadCoilsFunc | 0x80, 2}), uint8(1))
	f.Add(ModbusReadCoils(1, 0, 8), uint8(1)) // 01 01 00 00 00 08 3D CC
	f.Fuzz(func(t *testing.T, b []byte, slave uint8) {
		m := &Modbus{slave: slave}
		recognisers := map[string]frameFunc{
			"lcus":         lcusAnswer,
			"modbus write": m.answer(ModbusWriteCoilFunc, 8),
			"modbus read":  m.answer(ModbusReadCoilsFunc, 6),
		}
		for name, frame := range recognisers {
			verdict := 0
			for k := 1; k <= len(b); k++ {
				n := frame(b[:k])
				if n > k {
					t.Fatalf("%s: frame of %d bytes in %d bytes % X", name, n, k, b[:k])
				}
				if verdict != 0 && n != verdict {
					t.Fatalf("%s: verdict on % X changed from %d to %d after %d bytes", name, b, verdict, n, k)
				}
				verdict = n
			}
		}
	})
}
