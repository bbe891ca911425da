// The TCP echo load generator: one process, the same for every server.
//
//	loadgen -addr 127.0.0.1:9000 -conns 100 -size 64 -duration 5s -warmup 1s
//	loadgen -addr 127.0.0.1:9000 -conns 10000 -idle   (open, echo once, hold until stdin closes)
//
// Each connection is a goroutine doing request/response round trips of -size
// bytes, checking every byte; the rate counts round trips completed after the
// warm-up. Prints one line: "round_trips_per_s N all_round_trips M" (M counts
// the warm-up too, for the server's CPU time per round trip).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "server address")
	conns := flag.Int("conns", 100, "concurrent connections")
	size := flag.Int("size", 64, "message size in bytes")
	duration := flag.Duration("duration", 5*time.Second, "measured time")
	warmup := flag.Duration("warmup", time.Second, "time before measuring")
	idle := flag.Bool("idle", false, "open conns, echo once each, hold them until stdin closes")
	flag.Parse()

	cs := make([]net.Conn, *conns)
	for i := range cs {
		var c net.Conn
		var err error
		for try := 0; try < 50; try++ {
			c, err = net.Dial("tcp", *addr)
			if err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			os.Exit(1)
		}
		cs[i] = c
	}
	msg := bytes.Repeat([]byte{'x'}, *size)
	if *idle {
		for _, c := range cs {
			roundTrip(c, msg, make([]byte, *size))
		}
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		return
	}
	var counting atomic.Bool
	var stop atomic.Bool
	var total, all atomic.Int64
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func(c net.Conn) {
			defer wg.Done()
			buf := make([]byte, *size)
			var n, m int64
			for !stop.Load() {
				roundTrip(c, msg, buf)
				m++
				if counting.Load() {
					n++
				}
			}
			total.Add(n)
			all.Add(m)
		}(c)
	}
	time.Sleep(*warmup)
	counting.Store(true)
	start := time.Now()
	time.Sleep(*duration)
	counting.Store(false)
	elapsed := time.Since(start)
	stop.Store(true)
	wg.Wait()
	fmt.Printf("round_trips_per_s %.0f all_round_trips %d\n", float64(total.Load())/elapsed.Seconds(), all.Load())
}

func roundTrip(c net.Conn, msg, buf []byte) {
	if _, err := c.Write(msg); err != nil {
		fmt.Fprintln(os.Stderr, "write:", err)
		os.Exit(1)
	}
	if _, err := io.ReadFull(c, buf); err != nil {
		fmt.Fprintln(os.Stderr, "read:", err)
		os.Exit(1)
	}
	if !bytes.Equal(buf, msg) {
		fmt.Fprintln(os.Stderr, "corrupt echo")
		os.Exit(1)
	}
}
