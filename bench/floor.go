package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing/fstest"
	"time"
)

// ServeFloor is the child that serves the files of the folder at path with
// Go's http.FileServer on a loopback port, printing the address, until its
// input closes. The files are read into memory first (as a server's page
// cache holds a hot file): opening the file once per request ran out of
// file descriptors with 15,000 clients connected.
func ServeFloor(path string) error {
	files := fstest.MapFS{}
	entries, err := os.ReadDir(path)
	if err != nil {
		return err
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(path, e.Name()))
		if err != nil {
			return err
		}
		files[e.Name()] = &fstest.MapFile{Data: data, Mode: 0o644}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	raiseFileLimit()
	srv := &http.Server{Handler: http.FileServerFS(files)}
	go srv.Serve(l)
	fmt.Println(l.Addr().String())
	io.Copy(io.Discard, os.Stdin)
	return srv.Close()
}

// floorRun is what the floor measured: the time from one instant to each
// client having the whole file, sorted, and what the server and the
// clients (this process) used from that instant to the last.
type floorRun struct {
	times           []time.Duration
	server, clients usage
}

// floor measures the same file served to n connected clients by a plain
// static file server in its own process.
func floor(ctx context.Context, self string, n int, data []byte) (floorRun, error) {
	dir, err := os.MkdirTemp("", "dalaba-floor-")
	if err != nil {
		return floorRun{}, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(dir+"/alert.mp3", data, 0o644); err != nil {
		return floorRun{}, err
	}
	cmd := exec.Command(self, "floor-server", dir)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return floorRun{}, err
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return floorRun{}, fmt.Errorf("floor server: %w", err)
	}
	url := "http://" + strings.TrimSpace(addr) + "/alert.mp3"
	raiseFileLimit()

	// Connect every client first (the terminals are connected before an
	// alert too), then fetch all at once.
	clients := make([]*http.Client, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 256)
	for i := range n {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%8))}, Timeout: 30 * time.Second}
		clients[i] = &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 1}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			req, _ := http.NewRequestWithContext(ctx, "HEAD", url, nil)
			resp, err := clients[i].Do(req)
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return floorRun{}, fmt.Errorf("floor: connect clients: %w", err)
	}
	out := make([]time.Duration, n)
	start := make(chan struct{})
	var bad sync.Once
	var failed error
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			begin := time.Now()
			req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
			resp, err := clients[i].Do(req)
			if err == nil {
				var got []byte
				got, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && !bytes.Equal(got, data) {
					err = fmt.Errorf("got %d bytes, want %d", len(got), len(data))
				}
			}
			if err != nil {
				bad.Do(func() { failed = err })
			}
			out[i] = time.Since(begin)
		}()
	}
	time.Sleep(100 * time.Millisecond) // every goroutine waiting at start
	srv0, self0 := usageOf(cmd.Process.Pid), usageOf(os.Getpid())
	close(start)
	wg.Wait()
	run := floorRun{times: out, server: usageOf(cmd.Process.Pid).sub(srv0), clients: usageOf(os.Getpid()).sub(self0)}
	for _, c := range clients {
		c.CloseIdleConnections()
	}
	if failed != nil {
		return floorRun{}, fmt.Errorf("floor: %w", failed)
	}
	slices.Sort(run.times)
	return run, nil
}
