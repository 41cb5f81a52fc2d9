package relaysim

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"dalaba/terminal/relay"
)

// FuzzBoardHandle feeds arbitrary bytes to the simulated boards' frame
// handler: it never panics, consumes every complete frame, keeps only an
// unfinished one for later, and answers only with well-formed frames.
func FuzzBoardHandle(f *testing.F) {
	f.Add(false, []byte{0xA0, 0x01, 0x01, 0xA2, 0xA0, 0x01, 0x02, 0xA3})       // LCUS on, query (MISSION.md)
	f.Add(false, []byte{0x13, 0xA0, 0x01, 0x00, 0xA1, 0xA0, 0x09, 0x02, 0xAB}) // junk, off, channel 9
	f.Add(true, relay.ModbusWriteCoil(1, 0, true))                             // 01 05 00 00 FF 00 8C 3A
	f.Add(true, relay.ModbusReadCoils(1, 0, 8))                                // 01 01 00 00 00 08 3D CC
	f.Add(true, append(relay.ModbusReadCoils(1, 7, 2), 0x01, 0x05))            // past the last coil, then half a frame
	f.Fuzz(func(t *testing.T, modbus bool, p []byte) {
		proto := "lcus"
		if modbus {
			proto = "modbus"
		}
		b := New(proto, 1)
		rest, reply := b.handle(bytes.Clone(p), time.Now())
		if !bytes.HasSuffix(p, rest) {
			t.Fatalf("%s: kept % X, which is not what remains of % X", proto, rest, p)
		}
		if len(rest) > 0 {
			frameLen, start := 4, relay.LCUSHeader
			if modbus {
				frameLen, start = 8, 1
			}
			if len(rest) >= frameLen || rest[0] != start {
				t.Fatalf("%s: kept % X, which is no unfinished frame", proto, rest)
			}
		}
		for len(reply) > 0 {
			n := replyFrame(modbus, reply)
			if n <= 0 {
				t.Fatalf("%s: answered % X to % X: not a well-formed frame", proto, reply, p)
			}
			reply = reply[n:]
		}
	})
}

// replyFrame returns the length of the well-formed answer at the start of
// b, or 0.
func replyFrame(modbus bool, b []byte) int {
	if !modbus {
		if len(b) >= 4 && b[0] == relay.LCUSHeader && b[0]+b[1]+b[2] == b[3] && b[2] <= relay.LCUSOn {
			return 4
		}
		return 0
	}
	if len(b) < 5 || b[0] != 1 {
		return 0
	}
	n := 8 // write-coil echo
	switch {
	case b[1]&0x80 != 0:
		n = 5
	case b[1] == relay.ModbusReadCoilsFunc:
		n = 3 + int(b[2]) + 2
	}
	if len(b) < n || binary.LittleEndian.Uint16(b[n-2:n]) != relay.CRC16Modbus(b[:n-2]) {
		return 0
	}
	return n
}
