package relaysim_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"dalaba/terminal/relay"
	"dalaba/terminal/relay/relaysim"
)

var _ relaysim.TB = (testing.TB)(nil)

// serve runs b on a pipe and returns the test's end of it.
func serve(t *testing.T, b *relaysim.Board) net.Conn {
	t.Helper()
	conn, brd := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx, brd) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		conn.Close()
		brd.Close()
	})
	return conn
}

func crc(b ...byte) []byte {
	return binary.LittleEndian.AppendUint16(b, relay.CRC16Modbus(b))
}

// step is one request and the reply it must get (nil: none). After the last
// step a probe request is sent whose reply must come next, so that a reply
// where none was due shows up instead of passing unnoticed.
type step struct {
	send  []byte
	reply []byte
}

func TestBoardAnswers(t *testing.T) {
	lcusProbe := step{relay.LCUSFrame(8, relay.LCUSQuery), relay.LCUSFrame(8, relay.LCUSOff)}
	mbProbe := step{relay.ModbusReadCoils(1, 7, 1), crc(1, 1, 1, 0)}
	tests := []struct {
		name     string
		protocol string
		steps    []step
		wantOps  string
	}{
		{"lcus switch and query", "lcus", []step{
			{relay.LCUSFrame(1, relay.LCUSOn), nil},
			{relay.LCUSFrame(1, relay.LCUSQuery), relay.LCUSFrame(1, relay.LCUSOn)},
			{relay.LCUSFrame(2, relay.LCUSQuery), relay.LCUSFrame(2, relay.LCUSOff)},
			lcusProbe}, "on,query,query,query"},
		{"lcus junk and bad sum skipped", "lcus", []step{
			{[]byte{0x00, 0xA0, 0xA0, 0x01, 0x01, 0x00}, nil},
			{relay.LCUSFrame(3, relay.LCUSOn), nil},
			lcusProbe}, "on,query"},
		{"lcus channel 9 ignored", "lcus", []step{{relay.LCUSFrame(9, relay.LCUSOn), nil}, lcusProbe}, "query"},
		{"modbus write echoes", "modbus", []step{
			{relay.ModbusWriteCoil(1, 2, true), relay.ModbusWriteCoil(1, 2, true)},
			{relay.ModbusWriteCoil(1, 0, true), relay.ModbusWriteCoil(1, 0, true)},
			{relay.ModbusReadCoils(1, 0, 8), crc(1, 1, 1, 0x05)},
			mbProbe}, "on,on,read,read"},
		{"modbus bad crc no reply", "modbus", []step{
			{[]byte{1, 5, 0, 0, 0xFF, 0, 0x8C, 0x3B}, nil}, mbProbe}, "read"},
		{"modbus other slave ignored", "modbus", []step{
			{relay.ModbusWriteCoil(2, 0, true), nil}, mbProbe}, "read"},
		{"modbus coil 8 is out of range", "modbus", []step{
			{relay.ModbusWriteCoil(1, 8, true), crc(1, 0x85, 2)},
			{relay.ModbusReadCoils(1, 4, 5), crc(1, 0x81, 2)}, mbProbe}, "read"},
		{"modbus bad value", "modbus", []step{
			{crc(1, 5, 0, 0, 0x12, 0x34), crc(1, 0x85, 3)}, mbProbe}, "read"},
		{"modbus unknown function", "modbus", []step{
			{crc(1, 3, 0, 0, 0, 1), crc(1, 0x83, 1)}, mbProbe}, "read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := relaysim.New(tt.protocol, 1)
			conn := serve(t, b)
			var want []byte
			for _, s := range tt.steps {
				want = append(want, s.reply...)
			}
			go func() { // replies are read below while requests go out
				for _, s := range tt.steps {
					if _, err := conn.Write(s.send); err != nil {
						return
					}
				}
			}()
			got := make([]byte, len(want))
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(conn, got); err != nil {
				t.Fatalf("reading replies: %v (want % X)", err, want)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("replies = % X, want % X", got, want)
			}
			var ops []string
			for _, e := range b.Log() {
				ops = append(ops, e.Op)
			}
			if s := strings.Join(ops, ","); s != tt.wantOps {
				t.Errorf("log = %s, want %s", s, tt.wantOps)
			}
		})
	}
}

func TestWaitFor(t *testing.T) {
	b := relaysim.New("lcus", 0)
	conn := serve(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go conn.Write(relay.LCUSFrame(4, relay.LCUSOn))
	err := b.WaitFor(ctx, func(log []relaysim.Event) bool {
		return len(log) == 1 && log[0].Channel == 4 && log[0].Op == "on"
	})
	if err != nil || !b.On(4) {
		t.Fatalf("WaitFor = %v, On(4) = %v; want nil, true", err, b.On(4))
	}
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	err = b.WaitFor(short, func(log []relaysim.Event) bool { return len(log) > 1 })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFor on a quiet board = %v, want deadline exceeded", err)
	}
}

func TestServeEnds(t *testing.T) {
	tests := []struct {
		name string
		end  func(cancel context.CancelFunc, peer net.Conn)
	}{
		{"context cancelled", func(cancel context.CancelFunc, _ net.Conn) { cancel() }},
		{"peer closed", func(_ context.CancelFunc, peer net.Conn) { peer.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peer, brd := net.Pipe()
			defer peer.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- relaysim.New("modbus", 1).Serve(ctx, brd) }()
			tt.end(cancel, peer)
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Serve = %v, want nil", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Serve did not return")
			}
		})
	}
}

func TestNewRejectsUnknownProtocol(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New(\"x10\") did not panic")
		}
	}()
	relaysim.New("x10", 1)
}
