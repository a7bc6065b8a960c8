// scn_go: the peer scenarios for Go's buffered channel (chan uint64), with the same method and
// CSV line as bench/scenarios/driver.hpp: time-bounded runs, producers send 1, 2, 3, ...,
// the channel is closed when they are done, consumers drain it, and count and sum received must
// equal what was sent (exit code 2 otherwise). GOMAXPROCS is left at its default unless
// -gomaxprocs says otherwise.
//
// Goroutines are Go's coroutines, so the same program is the Go peer of bp's coroutine verbs
// (bench/async_benchmark.cpp, run side by side by bench/async_compare.sh): pingpong with
// -gomaxprocs 1 is the ping-pong of two goroutines on one thread, with -gomaxprocs 2 the
// cross-thread one, and mpmc2x2 / mpmc8x8 with -gomaxprocs 2 the async MPMC throughput.
//
// Built by scripts/bench: go build -o <dir>/scn_go bench/go/scenarios.go
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type usage struct {
	user, sys float64
	maxrssKB  int64
}

func nowUsage() usage {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return usage{
		float64(ru.Utime.Sec) + float64(ru.Utime.Usec)/1e6,
		float64(ru.Stime.Sec) + float64(ru.Stime.Usec)/1e6,
		ru.Maxrss,
	}
}

func printResult(scenario string, value float64, unit string, items, drops uint64, wall float64) {
	u := nowUsage()
	fmt.Printf("go,%s,%.6g,%s,%d,%d,%.4f,%.4f,%.4f,%d\n", scenario, value, unit, items, drops,
		wall, u.user, u.sys, u.maxrssKB)
}

func fail(scenario, what string, expected, got uint64) {
	fmt.Fprintf(os.Stderr, "FAIL go %s: %s: expected %d, got %d\n", scenario, what, expected, got)
	os.Exit(2)
}

func throughput(scenario string, seconds float64, capacity, producers, consumers int) {
	ch := make(chan uint64, capacity)
	var stop atomic.Bool
	sentCount := make([]uint64, producers)
	sentSum := make([]uint64, producers)
	gotCount := make([]uint64, consumers)
	gotSum := make([]uint64, consumers)
	var startWG, prodWG, consWG sync.WaitGroup
	startGate := make(chan struct{})
	startWG.Add(producers + consumers)
	for p := 0; p < producers; p++ {
		prodWG.Add(1)
		go func(p int) {
			defer prodWG.Done()
			v := uint64(p) << 40
			var n, s uint64
			startWG.Done()
			<-startGate
			for !stop.Load() {
				for k := 0; k < 256; k++ {
					v++
					ch <- v
					s += v
				}
				n += 256
			}
			sentCount[p], sentSum[p] = n, s
		}(p)
	}
	for c := 0; c < consumers; c++ {
		consWG.Add(1)
		go func(c int) {
			defer consWG.Done()
			var n, s uint64
			startWG.Done()
			<-startGate
			for v := range ch {
				s += v
				n++
			}
			gotCount[c], gotSum[c] = n, s
		}(c)
	}
	startWG.Wait()
	t0 := time.Now()
	close(startGate)
	time.Sleep(time.Duration(seconds * float64(time.Second)))
	stop.Store(true)
	prodWG.Wait()
	close(ch)
	consWG.Wait()
	elapsed := time.Since(t0).Seconds()
	var sc, ss, gc, gs uint64
	for p := range sentCount {
		sc += sentCount[p]
		ss += sentSum[p]
	}
	for c := range gotCount {
		gc += gotCount[c]
		gs += gotSum[c]
	}
	if gc != sc {
		fail(scenario, "items received", sc, gc)
	}
	if gs != ss {
		fail(scenario, "sum received", ss, gs)
	}
	printResult(scenario, float64(gc)/elapsed, "items_per_s", gc, 0, elapsed)
}

func pingPong(seconds float64) {
	ping := make(chan uint64, 1)
	pong := make(chan uint64, 1)
	go func() {
		for v := range ping {
			pong <- v
		}
	}()
	t0 := time.Now()
	deadline := t0.Add(time.Duration(seconds * float64(time.Second)))
	var trips, sum, back uint64
	for {
		for k := 0; k < 64; k++ {
			trips++
			ping <- trips
			sum += trips
			back += <-pong
		}
		if !time.Now().Before(deadline) {
			break
		}
	}
	elapsed := time.Since(t0).Seconds()
	close(ping)
	if back != sum {
		fail("pingpong", "sum echoed", sum, back)
	}
	printResult("pingpong", elapsed*1e9/float64(trips), "ns_per_trip", trips, 0, elapsed)
}

func blocked(capacity int) {
	ch := make(chan uint64, capacity)
	got := make(chan uint64)
	go func() { got <- <-ch }()
	time.Sleep(50 * time.Millisecond)
	before := nowUsage()
	t0 := time.Now()
	time.Sleep(time.Second)
	after := nowUsage()
	wall := time.Since(t0).Seconds()
	ch <- 42
	if v := <-got; v != 42 {
		fail("blocked", "value received", 42, v)
	}
	cpu := (after.user - before.user) + (after.sys - before.sys)
	printResult("blocked", cpu, "cpu_s", 1, 0, wall)
}

func main() {
	scenario := flag.String("scenario", "spsc", "spsc, mpmc2x2, mpmc8x8, pingpong, blocked")
	seconds := flag.Float64("seconds", 0.5, "run length")
	capacity := flag.Int("capacity", 1024, "channel capacity")
	procs := flag.Int("gomaxprocs", 0, "GOMAXPROCS (0: the default, one per core)")
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	switch *scenario {
	case "spsc":
		throughput(*scenario, *seconds, *capacity, 1, 1)
	case "mpmc2x2":
		throughput(*scenario, *seconds, *capacity, 2, 2)
	case "mpmc8x8":
		throughput(*scenario, *seconds, *capacity, 8, 8)
	case "pingpong":
		pingPong(*seconds)
	case "blocked":
		blocked(*capacity)
	default:
		fmt.Fprintf(os.Stderr, "go: unknown scenario %s\n", *scenario)
		os.Exit(64)
	}
}
