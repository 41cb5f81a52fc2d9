package terminal

import (
	"crypto/ed25519"
	"sync"
	"testing"
	"time"

	"dalaba/protocol"
)

// BenchmarkOpenOnIdleReaders opens a signed alert on b.N goroutines that
// stay alive afterwards, as the readers of a process's connections do:
// "reader" opens it on the goroutine itself, "checker" through checker.
// The difference is the stack each reader grows for the signature check,
// in memory taken afresh because every grown stack stays in use.
func BenchmarkOpenOnIdleReaders(b *testing.B) {
	ctl := newFakeController(b)
	ring := protocol.Keyring{}
	ring.Add(ctl.issuer.Public().(ed25519.PublicKey))
	sc := ctl.sign(ctl.alert([]protocol.Media{tone(ctl, 100*time.Millisecond)}, nil))
	to := protocol.Recipient{TerminalID: testTerminalID, AreaCode: testArea}
	for _, on := range []string{"reader", "checker"} {
		b.Run(on, func(b *testing.B) {
			release := make(chan struct{})
			var opened, ended sync.WaitGroup
			var failed error
			var mu sync.Mutex
			for range b.N {
				opened.Add(1)
				ended.Add(1)
				go func() {
					defer ended.Done()
					var err error
					open := func() { _, err = ring.Open(sc, to, time.Now()) }
					if on == "checker" {
						checker.run(open)
					} else {
						open()
					}
					if err != nil {
						mu.Lock()
						failed = err
						mu.Unlock()
					}
					opened.Done()
					<-release // idle, holding its stack, like a connection's reader
				}()
			}
			opened.Wait()
			b.StopTimer()
			close(release)
			ended.Wait()
			if failed != nil {
				b.Fatal(failed)
			}
		})
	}
}
