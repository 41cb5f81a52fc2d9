package relaysim

import (
	"encoding/binary"

	"dalaba/terminal/relay"
)

// Modbus exception codes the board answers with.
const (
	exIllegalFunction byte = 1
	exIllegalAddress  byte = 2
	exIllegalValue    byte = 3
)

// lcus decodes one LCUS frame at the start of p. It returns how many bytes
// it consumed (0: need more; 1 with no event: a junk byte skipped), the event
// to log and the reply. Callers hold b.mu.
func (b *Board) lcus(p []byte) (int, *Event, []byte) {
	if p[0] != relay.LCUSHeader {
		return 1, nil, nil
	}
	if len(p) < 4 {
		return 0, nil, nil
	}
	if p[0]+p[1]+p[2] != p[3] {
		return 1, nil, nil
	}
	ch, cmd := int(p[1]), p[2]
	if ch < 1 || ch > Channels || cmd > relay.LCUSQuery {
		return 4, nil, nil // a real board ignores what it does not know
	}
	switch cmd {
	case relay.LCUSOn, relay.LCUSOff:
		on := cmd == relay.LCUSOn
		if !b.stuck {
			b.on[ch] = on
		}
		return 4, &Event{Channel: ch, Op: opName(on)}, nil
	default:
		state := relay.LCUSOff
		if b.on[ch] {
			state = relay.LCUSOn
		}
		return 4, &Event{Channel: ch, Op: "query"}, relay.LCUSFrame(ch, state)
	}
}

// modbus decodes one Modbus RTU request at the start of p, like lcus.
// Callers hold b.mu.
func (b *Board) modbus(p []byte) (int, *Event, []byte) {
	if p[0] != b.slave {
		return 1, nil, nil // another address or junk
	}
	// Every request this board knows (01, 05) and most others are 8 bytes.
	if len(p) < 8 {
		return 0, nil, nil
	}
	if binary.LittleEndian.Uint16(p[6:8]) != relay.CRC16Modbus(p[:6]) {
		return 1, nil, nil // bad CRC: no reply
	}
	fn := p[1]
	addr := binary.BigEndian.Uint16(p[2:4])
	val := binary.BigEndian.Uint16(p[4:6])
	switch fn {
	case relay.ModbusWriteCoilFunc:
		if addr >= Channels {
			return 8, nil, b.exception(fn, exIllegalAddress)
		}
		if val != 0xFF00 && val != 0x0000 {
			return 8, nil, b.exception(fn, exIllegalValue)
		}
		on := val == 0xFF00
		if !b.stuck {
			b.on[addr+1] = on
		}
		return 8, &Event{Channel: int(addr) + 1, Op: opName(on)}, append([]byte(nil), p[:8]...)
	case relay.ModbusReadCoilsFunc:
		count := int(val)
		if count < 1 || int(addr)+count > Channels {
			return 8, nil, b.exception(fn, exIllegalAddress)
		}
		bits := make([]byte, (count+7)/8)
		for i := range count {
			if b.on[int(addr)+1+i] {
				bits[i/8] |= 1 << (i % 8)
			}
		}
		out := append([]byte{b.slave, fn, byte(len(bits))}, bits...)
		out = binary.LittleEndian.AppendUint16(out, relay.CRC16Modbus(out))
		return 8, &Event{Channel: int(addr) + 1, Op: "read"}, out
	default:
		return 8, nil, b.exception(fn, exIllegalFunction)
	}
}

// exception builds a Modbus exception reply.
func (b *Board) exception(fn, code byte) []byte {
	out := []byte{b.slave, fn | 0x80, code}
	return binary.LittleEndian.AppendUint16(out, relay.CRC16Modbus(out))
}

func opName(on bool) string {
	if on {
		return "on"
	}
	return "off"
}
