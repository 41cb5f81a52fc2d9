package main

import (
	"runtime"
	"testing"
)

func TestOneProcessorUnlessAsked(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	t.Setenv("GOMAXPROCS", "")
	if n := oneProcessor(); n != 1 || runtime.GOMAXPROCS(0) != 1 {
		t.Fatalf("without GOMAXPROCS: oneProcessor %d, runtime %d; want 1", n, runtime.GOMAXPROCS(0))
	}
	runtime.GOMAXPROCS(3) // as the runtime would have set it from GOMAXPROCS=3
	t.Setenv("GOMAXPROCS", "3")
	if n := oneProcessor(); n != 3 || runtime.GOMAXPROCS(0) != 3 {
		t.Fatalf("with GOMAXPROCS=3: oneProcessor %d, runtime %d; want 3 left as it is", n, runtime.GOMAXPROCS(0))
	}
}
