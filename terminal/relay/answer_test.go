package relay_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"dalaba/terminal/relay"
)

// scripted answers the i-th request read from conn with replies[i] (nil: no
// answer) and reports the requests it read.
func scripted(t *testing.T, conn net.Conn, reqLen int, replies [][]byte) <-chan [][]byte {
	t.Helper()
	got := make(chan [][]byte, 1)
	go func() {
		var reqs [][]byte
		defer func() { got <- reqs }()
		for _, reply := range replies {
			req := make([]byte, reqLen)
			if _, err := io.ReadFull(conn, req); err != nil {
				return
			}
			reqs = append(reqs, req)
			if reply != nil {
				if _, err := conn.Write(reply); err != nil {
					return
				}
			}
		}
	}()
	return got
}

func modbusAnswer(b ...byte) []byte {
	crc := relay.CRC16Modbus(b)
	return append(b, byte(crc), byte(crc>>8))
}

func TestBadAnswers(t *testing.T) {
	lcusOn := relay.LCUSFrame(1, relay.LCUSOn)
	mbOn := relay.ModbusWriteCoil(1, 0, true)
	tests := []struct {
		name     string
		protocol string
		replies  [][]byte // one per request: LCUS on, query / Modbus write, read
		want     []error
	}{
		{"lcus good", "lcus", [][]byte{nil, lcusOn}, nil},
		{"lcus only junk", "lcus", [][]byte{nil, {0xA0, 0x01, 0x01, 0x00, 0x55}},
			[]error{relay.ErrNoAnswer, relay.ErrBadFrame}},
		{"lcus no answer", "lcus", [][]byte{nil, nil}, []error{relay.ErrNoAnswer}},
		{"lcus answer for channel 2", "lcus", [][]byte{nil, relay.LCUSFrame(2, relay.LCUSOn)},
			[]error{relay.ErrReadBack, relay.ErrBadFrame}},
		{"lcus unknown state", "lcus", [][]byte{nil, relay.LCUSFrame(1, 0x07)},
			[]error{relay.ErrReadBack, relay.ErrBadFrame}},
		{"lcus reads off", "lcus", [][]byte{nil, relay.LCUSFrame(1, relay.LCUSOff)}, []error{relay.ErrReadBack}},
		{"lcus junk byte before answer", "lcus", [][]byte{nil, {0x13, 0xA0, 0x01, 0x01, 0xA2}}, nil},
		{"modbus good", "modbus", [][]byte{mbOn, modbusAnswer(1, 1, 1, 1)}, nil},
		{"modbus exception on write", "modbus", [][]byte{modbusAnswer(1, 0x85, 2)},
			[]error{relay.ErrReadBack, relay.ErrBadFrame}},
		{"modbus echo differs", "modbus", [][]byte{relay.ModbusWriteCoil(1, 0, false)},
			[]error{relay.ErrReadBack, relay.ErrBadFrame}},
		{"modbus echo bad crc", "modbus", [][]byte{append(mbOn[:6:6], 0, 0)},
			[]error{relay.ErrNoAnswer, relay.ErrBadFrame}},
		{"modbus other slave answers", "modbus", [][]byte{relay.ModbusWriteCoil(2, 0, true)},
			[]error{relay.ErrNoAnswer, relay.ErrBadFrame}},
		{"modbus reads off", "modbus", [][]byte{mbOn, modbusAnswer(1, 1, 1, 0)}, []error{relay.ErrReadBack}},
		{"modbus read sets padding bits", "modbus", [][]byte{mbOn, modbusAnswer(1, 1, 1, 0x03)},
			[]error{relay.ErrReadBack, relay.ErrBadFrame}},
		{"modbus read with junk and wrong count first", "modbus",
			[][]byte{mbOn, append(modbusAnswer(1, 1, 2, 1, 0), modbusAnswer(1, 1, 1, 1)...)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev, peer := net.Pipe()
			defer peer.Close()
			to := timeout // an answer is coming
			if tt.want != nil && tt.want[0] == relay.ErrNoAnswer {
				to = faultTimeout
			}
			var r relay.Relay
			reqLen := 4
			if tt.protocol == "lcus" {
				r = relay.NewLCUS(dev, 1, to)
			} else {
				reqLen = 8
				r = relay.NewModbus(dev, 1, 1, to)
			}
			defer r.Close()
			reqs := scripted(t, peer, reqLen, tt.replies)
			err := r.Set(true)
			if tt.want == nil && err != nil {
				t.Fatalf("Set(true): %v", err)
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("Set(true) error = %v, want it to wrap %v", err, w)
				}
			}
			if tt.want != nil && tt.want[0] != relay.ErrNoAnswer && errors.Is(err, relay.ErrNoAnswer) {
				t.Errorf("Set(true) error = %v: a wrong answer must not read as no answer", err)
			}
			peer.Close()
			first := (<-reqs)[0]
			if want := []byte{0xA0, 0x01, 0x01, 0xA2}; tt.protocol == "lcus" && !bytes.Equal(first, want) {
				t.Errorf("first request = % X, want % X", first, want)
			}
			if tt.protocol == "modbus" && !bytes.Equal(first, mbOn) {
				t.Errorf("first request = % X, want % X", first, mbOn)
			}
		})
	}
}

// TestStaleBytesDrained checks that an unsolicited frame received before a
// request is not taken as its answer.
func TestStaleBytesDrained(t *testing.T) {
	dev, peer := net.Pipe()
	defer peer.Close()
	r := relay.NewLCUS(dev, 1, timeout)
	defer r.Close()
	if _, err := peer.Write(relay.LCUSFrame(1, relay.LCUSOn)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the driver's reader take it in
	reqs := scripted(t, peer, 4, [][]byte{relay.LCUSFrame(1, relay.LCUSOff)})
	on, err := r.State()
	if err != nil || on {
		t.Fatalf("State() = %v, %v; want false (the stale ON frame must be dropped)", on, err)
	}
	peer.Close()
	if got := <-reqs; len(got) != 1 || !bytes.Equal(got[0], []byte{0xA0, 0x01, 0x02, 0xA3}) {
		t.Errorf("requests = % X, want one query A0 01 02 A3", got)
	}
}
