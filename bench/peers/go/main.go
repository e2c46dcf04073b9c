// Peer: Go goroutines (Debian's golang-go), measured beside the project in the same run.
//
// Build and run (bench/run does this):
//
//	cd bench/peers/go && GOPROXY=off go build -o ../../../target/bench-go/peer_go . && peer_go -group lifecycle,hub [-quick] [-duration 0.5]
//
// Prints one line per measurement in the format documented in bench/src/lib.rs:
//
//	RESULT group=hub name=chan_handoff peer=go ns_per_op=101.2 n=400000
//
// Counts are the same as bench::Counts in bench/src/lib.rs (keep them in step). Runs with GOMAXPROCS=1
// unless -procs says otherwise, so it schedules on one thread like a hub; the peer name says so when not 1.
//
//   - lifecycle/spawn_join_<n>: n x (go f(); wg.Done()), then wg.Wait(); ns per goroutine.
//   - lifecycle/parked_mem_<n>, maps_<n>: n goroutines blocked on one channel; RSS growth per goroutine (after
//     runtime.GC) and the line count of /proc/self/maps. Done at the parked count and the large count (1m).
//   - hub/sleep0_x1, sleep0_x100: runtime.Gosched() in 1 or 100 goroutines; ns per yield.
//   - hub/chan_handoff: ping-pong over two unbuffered channels; ns per hand-off (round trip / 2).
//   - hub/event_set_<n>: n goroutines blocked on one channel; close(ch) until all have run (WaitGroup);
//     ns per waiter.
//   - hub/timers_<n>_{mean,p99,cpu}: n goroutines each time.Sleep a distinct duration (task i: spread*(i+1)/n);
//     lateness (wake - deadline) in us, and the process CPU time of the whole run per timer in ns.
//   - io (-serve echo|http -port-file F [-procs N]): the io group's servers; the harness passes -procs N
//     for the rows on N workers (echo_64b_w<N>_c<conns>, http_w<N>_c<conns>: GOMAXPROCS=N).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type counts struct {
	spawn, parked, parkedLarge, ops, waiters, timers, timerSpreadMs int
}

func newCounts(quick bool) counts {
	if quick {
		return counts{spawn: 10000, parked: 10000, parkedLarge: 100000, ops: 20000, waiters: 10000, timers: 1000, timerSpreadMs: 50}
	}
	return counts{spawn: 100000, parked: 100000, parkedLarge: 1000000, ops: 200000, waiters: 100000, timers: 100000, timerSpreadMs: 500}
}

var peer = "go"

func label(n int) string {
	switch {
	case n >= 1000000 && n%1000000 == 0:
		return strconv.Itoa(n/1000000) + "m"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

func report(group, name, metric string, value float64, n int) {
	fmt.Printf("RESULT group=%s name=%s peer=%s %s=%.3f n=%d\n", group, name, peer, metric, value, n)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	m := len(v) / 2
	if len(v)%2 == 1 {
		return v[m]
	}
	return (v[m-1] + v[m]) / 2
}

const maxBatches = 1000

// timePerOp mirrors bench::time_per_op: one warm-up batch, then batches until d has passed (at least 3, at
// most maxBatches); median ns per op.
func timePerOp(d time.Duration, ops int, batch func()) float64 {
	batch()
	var samples []float64
	start := time.Now()
	for len(samples) < maxBatches && (len(samples) < 3 || time.Since(start) < d) {
		t := time.Now()
		batch()
		samples = append(samples, float64(time.Since(t).Nanoseconds())/float64(ops))
	}
	return median(samples)
}

func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

func mapCount() int {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	n := 0
	for s.Scan() {
		n++
	}
	return n
}

var sink int

func spawnJoin(c counts, d time.Duration) {
	n := c.spawn
	ns := timePerOp(d, n, func() {
		var wg sync.WaitGroup
		wg.Add(n)
		for i := 0; i < n; i++ {
			go func(i int) {
				sink = i
				wg.Done()
			}(i)
		}
		wg.Wait()
	})
	report("lifecycle", "spawn_join_"+label(n), "ns_per_op", ns, n)
}

func parked(n int) {
	runtime.GC()
	before := rssBytes()
	block := make(chan struct{})
	var started, done sync.WaitGroup
	started.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-block
			done.Done()
		}()
	}
	started.Wait()
	runtime.GC()
	rss := rssBytes()
	per := 0.0
	if rss > before {
		per = float64(rss-before) / float64(n)
	}
	report("lifecycle", "parked_mem_"+label(n), "bytes_per_task", per, n)
	report("lifecycle", "maps_"+label(n), "maps", float64(mapCount()), n)
	close(block)
	done.Wait()
}

// parkedInChild runs this program again with -mem n: parked memory is measured in a fresh process, because
// a runtime that already ran other measurements keeps freed goroutines and stacks in its pools.
func parkedInChild(n, procs int) {
	exe, err := os.Executable()
	if err == nil {
		cmd := exec.Command(exe, "-mem", strconv.Itoa(n), "-procs", strconv.Itoa(procs))
		cmd.Stdout = os.Stdout
		cmd.Stderr = os.Stderr
		err = cmd.Run()
	}
	if err != nil {
		fmt.Printf("SKIP group=lifecycle name=parked_mem_%s peer=%s reason=child_failed:_%s\n", label(n), peer,
			strings.ReplaceAll(err.Error(), " ", "_"))
	}
}

func yields(c counts, d time.Duration, tasks int, name string) {
	per := c.ops / tasks
	if per < 1 {
		per = 1
	}
	total := per * tasks
	ns := timePerOp(d, total, func() {
		var wg sync.WaitGroup
		wg.Add(tasks)
		for t := 0; t < tasks; t++ {
			go func() {
				for i := 0; i < per; i++ {
					runtime.Gosched()
				}
				wg.Done()
			}()
		}
		wg.Wait()
	})
	report("hub", name, "ns_per_op", ns, total)
}

func handoff(c counts, d time.Duration) {
	ops := c.ops
	ns := timePerOp(d, 2*ops, func() {
		toB := make(chan int)
		toA := make(chan int)
		fin := make(chan struct{})
		go func() {
			for i := 0; i < ops; i++ {
				v := <-toB
				toA <- v + 1
			}
			close(fin)
		}()
		v := 0
		for i := 0; i < ops; i++ {
			toB <- v
			v = <-toA
		}
		sink = v
		<-fin
	})
	report("hub", "chan_handoff", "ns_per_op", ns, 2*ops)
}

func eventSet(c counts) {
	n := c.waiters
	var samples []float64
	for r := 0; r < 3; r++ {
		ev := make(chan struct{})
		var started, done sync.WaitGroup
		started.Add(n)
		done.Add(n)
		for i := 0; i < n; i++ {
			go func() {
				started.Done()
				<-ev
				done.Done()
			}()
		}
		started.Wait()
		runtime.Gosched()
		t := time.Now()
		close(ev)
		done.Wait()
		samples = append(samples, float64(time.Since(t).Nanoseconds())/float64(n))
	}
	report("hub", "event_set_"+label(n), "ns_per_op", median(samples), n)
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func timers(c counts) {
	n := c.timers
	late := make([]int64, n)
	var wg sync.WaitGroup
	wg.Add(n)
	cpu0 := processCPU()
	for i := 0; i < n; i++ {
		d := time.Duration(int64(c.timerSpreadMs) * 1000000 * int64(i+1) / int64(n))
		go func(i int, d time.Duration) {
			deadline := time.Now().Add(d)
			time.Sleep(d)
			l := time.Since(deadline)
			if l < 0 {
				l = 0
			}
			late[i] = l.Nanoseconds()
			wg.Done()
		}(i, d)
	}
	wg.Wait()
	cpu := processCPU() - cpu0
	sort.Slice(late, func(a, b int) bool { return late[a] < late[b] })
	var sum float64
	for _, l := range late {
		sum += float64(l)
	}
	p99 := late[(n*99+99)/100-1]
	base := "timers_" + label(n)
	report("hub", base+"_mean", "us_late", sum/float64(n)/1e3, n)
	report("hub", base+"_p99", "us_late", float64(p99)/1e3, n)
	report("hub", base+"_cpu", "cpu_ns_per_timer", float64(cpu.Nanoseconds())/float64(n), n)
}

// The one HTTP response body of the io group's http servers (TechEmpower plaintext style).
var hello = []byte("Hello, World!")

// serveIO is the io group's server: bind 127.0.0.1:0, write the port to portFile (via a rename), serve echo
// (a goroutine per connection writing back what it reads) or http (net/http, "Hello, World!") until killed
// or for at most 15 minutes, on GOMAXPROCS threads (main sets it from -procs).
func serveIO(kind, portFile string) {
	time.AfterFunc(15*time.Minute, func() { os.Exit(0) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	if err := os.WriteFile(portFile+".tmp", []byte(port), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "port file:", err)
		os.Exit(1)
	}
	if err := os.Rename(portFile+".tmp", portFile); err != nil {
		fmt.Fprintln(os.Stderr, "port file:", err)
		os.Exit(1)
	}
	if kind == "http" {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write(hello)
		})
		fmt.Fprintln(os.Stderr, http.Serve(ln, h))
		return
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go func(c net.Conn) {
			defer c.Close()
			buf := make([]byte, 65536)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
		}(c)
	}
}

func main() {
	groups := flag.String("group", "", "comma-separated groups (default: all)")
	quick := flag.Bool("quick", false, "tiny counts")
	dur := flag.Float64("duration", -1, "seconds to repeat each timed measurement")
	procs := flag.Int("procs", 1, "GOMAXPROCS")
	serve := flag.String("serve", "", "io group: be an echo or http server on 127.0.0.1:0")
	portFile := flag.String("port-file", "", "io group: where to write the bound port")
	mem := flag.Int("mem", 0, "internal: measure only the parked memory of this many goroutines, then exit")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)
	if *procs != 1 {
		peer = fmt.Sprintf("go-p%d", *procs)
	}
	d := time.Duration(*dur * float64(time.Second))
	if *dur < 0 {
		d = 500 * time.Millisecond
		if *quick {
			d = 50 * time.Millisecond
		}
	}
	want := func(g string) bool {
		if *groups == "" {
			return true
		}
		for _, x := range strings.Split(*groups, ",") {
			if x == g {
				return true
			}
		}
		return false
	}
	c := newCounts(*quick)
	if *serve != "" {
		serveIO(*serve, *portFile)
		return
	}
	if *mem > 0 {
		// Keep the collector from returning pages mid-measurement.
		debug.SetGCPercent(-1)
		parked(*mem)
		return
	}
	if want("lifecycle") {
		spawnJoin(c, d)
		parkedInChild(c.parked, *procs)
		parkedInChild(c.parkedLarge, *procs)
	}
	if want("hub") {
		yields(c, d, 1, "sleep0_x1")
		yields(c, d, 100, "sleep0_x100")
		handoff(c, d)
		eventSet(c)
		timers(c)
	}
}
