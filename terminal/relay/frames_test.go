package relay_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"dalaba/terminal/relay"
)

func TestFrames(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"lcus ch1 on", relay.LCUSFrame(1, relay.LCUSOn), []byte{0xA0, 0x01, 0x01, 0xA2}},
		{"lcus ch1 off", relay.LCUSFrame(1, relay.LCUSOff), []byte{0xA0, 0x01, 0x00, 0xA1}},
		{"lcus ch1 query", relay.LCUSFrame(1, relay.LCUSQuery), []byte{0xA0, 0x01, 0x02, 0xA3}},
		{"lcus ch2 on", relay.LCUSFrame(2, relay.LCUSOn), []byte{0xA0, 0x02, 0x01, 0xA3}},
		{"lcus sum wraps", relay.LCUSFrame(0x70, relay.LCUSQuery), []byte{0xA0, 0x70, 0x02, 0x12}},
		{"modbus coil 0 on", relay.ModbusWriteCoil(1, 0, true), []byte{0x01, 0x05, 0x00, 0x00, 0xFF, 0x00, 0x8C, 0x3A}},
		{"modbus coil 0 off", relay.ModbusWriteCoil(1, 0, false), []byte{0x01, 0x05, 0x00, 0x00, 0x00, 0x00, 0xCD, 0xCA}},
		{"modbus read 8 coils", relay.ModbusReadCoils(1, 0, 8), []byte{0x01, 0x01, 0x00, 0x00, 0x00, 0x08, 0x3D, 0xCC}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Equal(tt.got, tt.want) {
				t.Errorf("frame = % X, want % X", tt.got, tt.want)
			}
		})
	}
}

func TestCRC16Modbus(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want uint16
	}{
		{"check value 123456789", []byte("123456789"), 0x4B37},
		{"empty", nil, 0xFFFF},
		{"write coil on", []byte{0x01, 0x05, 0x00, 0x00, 0xFF, 0x00}, 0x3A8C},
		{"write coil off", []byte{0x01, 0x05, 0x00, 0x00, 0x00, 0x00}, 0xCACD},
		{"read coils", []byte{0x01, 0x01, 0x00, 0x00, 0x00, 0x08}, 0xCC3D},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := relay.CRC16Modbus(tt.in); got != tt.want {
				t.Errorf("CRC16Modbus(% X) = %#04x, want %#04x", tt.in, got, tt.want)
			}
		})
	}
}

func TestOpenSerialNamesPath(t *testing.T) {
	const path = "/nonexistent/ttyUSB9"
	_, err := relay.OpenSerial(path, 9600, time.Second)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("OpenSerial(%s) error = %v, want one naming the path", path, err)
	}
}

func TestBadChannel(t *testing.T) {
	tests := []struct {
		name string
		r    relay.Relay
	}{
		{"lcus channel 0", relay.NewLCUS(nopPort{}, 0, time.Second)},
		{"lcus channel 256", relay.NewLCUS(nopPort{}, 256, time.Second)},
		{"modbus channel 0", relay.NewModbus(nopPort{}, 1, 0, time.Second)},
		{"modbus slave 0", relay.NewModbus(nopPort{}, 0, 1, time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer tt.r.Close()
			err := tt.r.Set(true)
			if err == nil || !strings.Contains(err.Error(), "out of range") {
				t.Fatalf("Set error = %v, want out of range", err)
			}
			if errors.Is(err, relay.ErrNoAnswer) {
				t.Fatalf("Set error %v should not wait for an answer", err)
			}
		})
	}
}

// nopPort fails every read at once, so the driver's reader stops.
type nopPort struct{}

func (nopPort) Read([]byte) (int, error)    { return 0, errors.New("nop port") }
func (nopPort) Write(b []byte) (int, error) { return len(b), nil }
func (nopPort) Close() error                { return nil }
