package relay

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// Modbus function codes used by the driver.
const (
	ModbusReadCoilsFunc byte = 0x01 // read coils
	ModbusWriteCoilFunc byte = 0x05 // write single coil
)

// CRC16Modbus is the CRC-16/MODBUS of b (poly 0xA001 reflected, init 0xFFFF).
// On the wire it is sent low byte first.
func CRC16Modbus(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// appendCRC appends the Modbus CRC of b, low byte first.
func appendCRC(b []byte) []byte {
	return binary.LittleEndian.AppendUint16(b, CRC16Modbus(b))
}

// ModbusWriteCoil builds a function 05 request: value FF00 switches the coil
// on, 0000 off. A module answers with an echo of the request.
func ModbusWriteCoil(slave byte, coil uint16, on bool) []byte {
	v := uint16(0x0000)
	if on {
		v = 0xFF00
	}
	b := []byte{slave, ModbusWriteCoilFunc}
	b = binary.BigEndian.AppendUint16(b, coil)
	b = binary.BigEndian.AppendUint16(b, v)
	return appendCRC(b)
}

// ModbusReadCoils builds a function 01 request for count coils from start.
// A module answers slave 01 <byte count> <coil bits, LSB first> <crc>.
func ModbusReadCoils(slave byte, start, count uint16) []byte {
	b := []byte{slave, ModbusReadCoilsFunc}
	b = binary.BigEndian.AppendUint16(b, start)
	b = binary.BigEndian.AppendUint16(b, count)
	return appendCRC(b)
}

// Modbus drives one coil of a Modbus RTU relay module. It is safe for
// concurrent use.
type Modbus struct {
	link    *link
	slave   byte
	channel int
	timeout time.Duration
}

var _ Relay = (*Modbus)(nil)

// NewModbus drives a Modbus RTU relay module through p: function 05 write
// single coil (FF00 on / 0000 off, the module echoes the request), then
// function 01 read coils (one coil) to verify. CRC-16/MODBUS. Coil number =
// channel-1 (channel 1..65536); slave is the module's address (1..247).
// timeout bounds a whole Set or State call; <= 0 means DefaultTimeout. The
// driver owns p and closes it on Close.
func NewModbus(p Port, slave byte, channel int, timeout time.Duration) *Modbus {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Modbus{link: newLink(p), slave: slave, channel: channel, timeout: timeout}
}

// Set writes the coil, checks the echo and reads the coil back.
func (r *Modbus) Set(on bool) error {
	if err := r.check(); err != nil {
		return err
	}
	if err := r.link.lock(); err != nil {
		return err
	}
	defer r.link.mu.Unlock()
	deadline := time.Now().Add(r.timeout)
	req := ModbusWriteCoil(r.slave, r.coil(), on)
	echo, err := r.link.exchange(req, r.answer(ModbusWriteCoilFunc, len(req)), deadline)
	if err == nil {
		err = r.exception(echo)
	}
	if err == nil && !bytes.Equal(echo, req) {
		err = fmt.Errorf("echo % X differs from request % X: %w: %w", echo, req, ErrReadBack, ErrBadFrame)
	}
	if err != nil {
		return fmt.Errorf("relay: %s: switch %s: %w", r, onOff(on), err)
	}
	got, err := r.read(deadline)
	if err != nil {
		return fmt.Errorf("relay: %s: verify %s: %w", r, onOff(on), err)
	}
	if got != on {
		return fmt.Errorf("relay: channel %d reads %s after %s: %w",
			r.channel, onOff(got), onOff(on), ErrReadBack)
	}
	return nil
}

// State reads the coil.
func (r *Modbus) State() (bool, error) {
	if err := r.check(); err != nil {
		return false, err
	}
	if err := r.link.lock(); err != nil {
		return false, err
	}
	defer r.link.mu.Unlock()
	on, err := r.read(time.Now().Add(r.timeout))
	if err != nil {
		return false, fmt.Errorf("relay: %s: read coil: %w", r, err)
	}
	return on, nil
}

// Close closes the port.
func (r *Modbus) Close() error { return r.link.close() }

// String names the slave and channel for error messages.
func (r *Modbus) String() string {
	return fmt.Sprintf("modbus slave %d channel %d", r.slave, r.channel)
}

func (r *Modbus) coil() uint16 { return uint16(r.channel - 1) }

func (r *Modbus) check() error {
	if r.channel < 1 || r.channel > 65536 {
		return fmt.Errorf("relay: modbus channel %d out of range 1..65536", r.channel)
	}
	if r.slave < 1 || r.slave > 247 {
		return fmt.Errorf("relay: modbus slave address %d out of range 1..247", r.slave)
	}
	return nil
}

// read sends a read-coils request for the channel's coil and decodes the bit.
// Callers hold the lock.
func (r *Modbus) read(deadline time.Time) (bool, error) {
	f, err := r.link.exchange(ModbusReadCoils(r.slave, r.coil(), 1), r.answer(ModbusReadCoilsFunc, 6), deadline)
	if err != nil {
		return false, err
	}
	if err := r.exception(f); err != nil {
		return false, err
	}
	// One coil was asked for: the other bits of its byte are padding and
	// must be zero. A byte like 03 or FF is not a state this driver trusts.
	if f[3] > 1 {
		return false, fmt.Errorf("answer % X sets coil bits beyond the one asked for: %w: %w", f, ErrReadBack, ErrBadFrame)
	}
	return f[3] == 1, nil
}

// exception turns a Modbus exception answer into an error.
func (r *Modbus) exception(f []byte) error {
	if f[1]&0x80 == 0 {
		return nil
	}
	return fmt.Errorf("module answered exception code %d to function %d: %w: %w",
		f[2], f[1]&0x7F, ErrReadBack, ErrBadFrame)
}

// answer recognises, from this slave, either a normal answer to fn of size
// bytes or a 5-byte exception answer, each with a valid CRC. Junk that starts
// like a frame fails the CRC and is skipped byte by byte.
func (r *Modbus) answer(fn byte, size int) frameFunc {
	return func(b []byte) int {
		if b[0] != r.slave {
			return -1
		}
		if len(b) < 2 {
			return 0
		}
		n := size
		switch {
		case b[1] == fn|0x80:
			n = 5
		case b[1] != fn:
			return -1
		case fn == ModbusReadCoilsFunc && len(b) >= 3 && b[2] != 1:
			return -1 // one coil is asked for: one data byte
		}
		if len(b) < n {
			return 0
		}
		if binary.LittleEndian.Uint16(b[n-2:n]) != CRC16Modbus(b[:n-2]) {
			return -1
		}
		return n
	}
}
