// Command loadgen is the benchmark's compiled load generator (bench/README.md): N WebSockets
// in rooms, an open-loop publisher at a fixed total rate, send->receive latency per delivery,
// and a count of every delivery expected against every delivery received.
//
// It reads a plan (JSON, the file named by -plan) written by bench/compare.py: the protocol,
// one entry per socket (URL, token, room) and the load. It talks to its driver over
// stdin/stdout in lines, so that the driver can read the servers' CPU exactly at the window's
// edges:
//
//	fanout: -> {"event":"ready"}  (all sockets open, authenticated, subscribed; warm-up done)
//	        <- go                  (the driver sampled /proc; the window starts now)
//	        -> {"event":"drained"} (every delivery arrived, or the drain timeout passed)
//	        <- ok                  (sampled again; sockets close)
//	        -> {"event":"result", ...}
//	idle:   -> {"event":"ready"}  <- ok  -> {"event":"result", ...}
//
// Every loop is bounded by the plan (sends = rate x seconds, at most 1,000,000; sockets at
// most 20,000) and every wait has a timeout. Targets must be on loopback.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// SocketSpec is one socket of the plan.
type SocketSpec struct {
	URL   string `json:"url"`
	Token string `json:"token"`
	Room  string `json:"room"`
}

// Plan is what the driver asks for.
type Plan struct {
	Protocol        string       `json:"protocol"`
	Mode            string       `json:"mode"` // "fanout" or "idle"
	Origin          string       `json:"origin"`
	Sockets         []SocketSpec `json:"sockets"`
	Rate            float64      `json:"rate"` // messages per second, all senders together
	WarmupS         float64      `json:"warmup_s"`
	WindowS         float64      `json:"window_s"`
	DrainS          float64      `json:"drain_s"`
	BodyBytes       int          `json:"body_bytes"`
	OpenConcurrency int          `json:"open_concurrency"`
	Nonce           string       `json:"nonce"` // makes client ids unique across runs
}

var epoch = time.Now()

// nowNs is monotonic nanoseconds since start (time.Since reads the monotonic clock), the one
// clock of senders and receivers, which share this process.
func nowNs() int64 { return int64(time.Since(epoch)) }

type sock struct {
	spec   SocketSpec
	ws     *websocket.Conn
	mu     sync.Mutex // guards out against a send after close (a ping answered while closing)
	shut   bool
	out    chan []byte
	lat    []int32 // send->receive, microseconds, window messages only
	ackLat []int32
}

type run struct {
	plan      Plan
	proto     Protocol
	socks     []*sock
	roomSize  map[string]int
	sendNs    []int64 // per message id
	got       []int32 // deliveries per message id
	expect    []int32
	windowLo  int // message ids [windowLo, windowHi) are the measured window
	windowHi  int
	expected  int64
	received  atomic.Int64
	lastNs    atomic.Int64
	done      chan struct{}
	doneOnce  sync.Once
	closing   atomic.Bool
	dropped   atomic.Int64 // unexpected socket closes
	writeErrs atomic.Int64
	errMu     sync.Mutex
	errors    map[string]int
	readers   sync.WaitGroup
	writers   sync.WaitGroup
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", args...)
	os.Exit(2)
}

func emit(v map[string]any) {
	out, _ := json.Marshal(v)
	fmt.Println(string(out))
}

func raiseNofile(need int) {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return
	}
	if lim.Cur < lim.Max { // never above the hard limit
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if uint64(need)+64 > lim.Cur {
		fail("%d sockets need more open files than RLIMIT_NOFILE allows (%d)", need, lim.Cur)
	}
}

func checkLoopback(raw string) {
	u, err := url.Parse(raw)
	if err != nil {
		fail("bad url %q: %v", raw, err)
	}
	host := u.Hostname()
	if host != "localhost" && host != "::1" && !strings.HasPrefix(host, "127.") {
		fail("refusing non-loopback target %q", raw)
	}
}

func (r *run) addError(code string) {
	r.errMu.Lock()
	r.errors[code]++
	r.errMu.Unlock()
}

func (r *run) open(i int, dialer *websocket.Dialer) error {
	spec := r.plan.Sockets[i]
	header := http.Header{}
	if r.plan.Origin != "" {
		header.Set("Origin", r.plan.Origin)
	}
	ws, resp, err := dialer.Dial(spec.URL+r.proto.Path(), header)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("socket %d: %v (HTTP %d)", i, err, resp.StatusCode)
		}
		return fmt.Errorf("socket %d: %v", i, err)
	}
	ws.SetReadLimit(1 << 20)
	if err := r.proto.Handshake(ws, spec, time.Now().Add(60*time.Second)); err != nil {
		ws.Close()
		return fmt.Errorf("socket %d handshake: %v", i, err)
	}
	s := &sock{spec: spec, ws: ws, out: make(chan []byte, 4096)}
	r.socks[i] = s
	r.writers.Add(1)
	go r.write(s)
	r.readers.Add(1)
	go r.read(s)
	return nil
}

// enqueue hands a frame to the socket's writer; wait=false drops it if the queue is full.
// Nothing is queued once the socket is closing.
func (s *sock) enqueue(frame []byte, wait bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut {
		return
	}
	if wait {
		s.out <- frame
		return
	}
	select {
	case s.out <- frame:
	default:
	}
}

func (s *sock) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.shut {
		s.shut = true
		close(s.out)
	}
}

func (r *run) write(s *sock) {
	defer r.writers.Done()
	for frame := range s.out {
		_ = s.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := s.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
			r.writeErrs.Add(1)
		}
	}
}

// parseBody reads "<phase> <id> <sent_ns> <padding>".
func parseBody(body string) (phase byte, id int, sent int64, ok bool) {
	f := strings.SplitN(body, " ", 4)
	if len(f) < 3 || len(f[0]) != 1 {
		return 0, 0, 0, false
	}
	id, err1 := strconv.Atoi(f[1])
	sent, err2 := strconv.ParseInt(f[2], 10, 64)
	return f[0][0], id, sent, err1 == nil && err2 == nil
}

func (r *run) read(s *sock) {
	defer r.readers.Done()
	var ev Event
	for {
		_, data, err := s.ws.ReadMessage()
		if err != nil {
			if !r.closing.Load() {
				r.dropped.Add(1)
			}
			return
		}
		now := nowNs()
		ev.Bodies, ev.AckIDs, ev.Reply, ev.Errors = ev.Bodies[:0], ev.AckIDs[:0], ev.Reply[:0], ev.Errors[:0]
		r.proto.Parse(data, &ev)
		for _, reply := range ev.Reply {
			s.enqueue(reply, false)
		}
		for _, body := range ev.Bodies {
			phase, id, sent, ok := parseBody(body)
			if !ok || id < 0 || id >= len(r.got) {
				r.addError("bad_body")
				continue
			}
			atomic.AddInt32(&r.got[id], 1)
			if phase != 'm' {
				continue
			}
			s.lat = append(s.lat, int32((now-sent)/1000))
			r.lastNs.Store(now)
			if r.received.Add(1) == r.expected {
				r.doneOnce.Do(func() { close(r.done) })
			}
		}
		for _, id := range ev.AckIDs {
			if id >= r.windowLo && id < r.windowHi {
				if sent := atomic.LoadInt64(&r.sendNs[id]); sent > 0 {
					s.ackLat = append(s.ackLat, int32((now-sent)/1000))
				}
			}
		}
		for _, code := range ev.Errors {
			r.addError(code)
		}
	}
}

// publish sends messages [lo, hi) open loop: message i is due at start + (i-lo)/rate; a late
// one goes out at once and none is skipped. It returns how late the latest send was.
func (r *run) publish(lo, hi int, phase byte) time.Duration {
	start := time.Now()
	n := len(r.socks)
	pad := strings.Repeat("x", max(0, r.plan.BodyBytes-30))
	var worst time.Duration
	for i := lo; i < hi; i++ {
		due := start.Add(time.Duration(float64(i-lo) / r.plan.Rate * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		} else if -d > worst {
			worst = -d
		}
		s := r.socks[i%n]
		t := nowNs()
		body := fmt.Sprintf("%c %d %d %s", phase, i, t, pad)
		if len(body) > r.plan.BodyBytes && r.plan.BodyBytes >= 30 {
			body = body[:r.plan.BodyBytes]
		}
		atomic.StoreInt64(&r.sendNs[i], t)
		clientID := fmt.Sprintf("%s-%c%d", r.plan.Nonce, phase, i)
		s.enqueue(r.proto.SendFrame(i, s.spec.Room, clientID, body), true)
	}
	return worst
}

func (r *run) closeAll() {
	r.closing.Store(true)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, s := range r.socks {
		if s == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(s *sock) {
			defer wg.Done()
			defer func() { <-sem }()
			s.shutdown()
			msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
			_ = s.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(2*time.Second))
			s.ws.Close()
		}(s)
	}
	wg.Wait()
	r.writers.Wait()
	r.readers.Wait()
}

func pct(v []int32, q float64) float64 {
	if len(v) == 0 {
		return -1
	}
	i := int(q * float64(len(v)))
	if i >= len(v) {
		i = len(v) - 1
	}
	return float64(v[i]) / 1000
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func main() {
	planPath := flag.String("plan", "", "plan JSON written by bench/compare.py")
	flag.Parse()
	raw, err := os.ReadFile(*planPath)
	if err != nil {
		fail("read plan: %v", err)
	}
	var plan Plan
	if err := json.Unmarshal(raw, &plan); err != nil {
		fail("parse plan: %v", err)
	}
	proto, err := newProtocol(plan.Protocol)
	if err != nil {
		fail("%v", err)
	}
	n := len(plan.Sockets)
	if n == 0 || n > 20000 {
		fail("need 1..20000 sockets, got %d", n)
	}
	for _, s := range plan.Sockets {
		checkLoopback(s.URL)
	}
	warm := int(plan.Rate * plan.WarmupS)
	count := int(plan.Rate * plan.WindowS)
	if plan.Mode == "fanout" && (plan.Rate <= 0 || count <= 0 || warm+count > 1_000_000) {
		fail("fanout needs 0 < rate x window and at most 1,000,000 sends")
	}
	if plan.OpenConcurrency <= 0 {
		plan.OpenConcurrency = 32
	}
	raiseNofile(n)
	stdin := bufio.NewScanner(os.Stdin)
	waitFor := func(word string) {
		if !stdin.Scan() || strings.TrimSpace(stdin.Text()) != word {
			fail("expected %q from the driver", word)
		}
	}

	r := &run{
		plan: plan, proto: proto, socks: make([]*sock, n), roomSize: map[string]int{},
		done: make(chan struct{}), errors: map[string]int{},
	}
	for _, s := range plan.Sockets {
		r.roomSize[s.Room]++
	}
	total := warm + count
	r.sendNs, r.got, r.expect = make([]int64, total), make([]int32, total), make([]int32, total)
	r.windowLo, r.windowHi = warm, total
	for i := 0; i < total; i++ {
		r.expect[i] = int32(r.roomSize[plan.Sockets[i%n].Room])
		if i >= warm {
			r.expected += int64(r.expect[i])
		}
	}

	dialer := &websocket.Dialer{
		HandshakeTimeout: 30 * time.Second, ReadBufferSize: 2048, WriteBufferSize: 1024,
	}
	t0 := time.Now()
	sem := make(chan struct{}, plan.OpenConcurrency)
	var wg sync.WaitGroup
	var openErr atomic.Value
	for i := range plan.Sockets {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := r.open(i, dialer); err != nil {
				openErr.CompareAndSwap(nil, err)
			}
		}(i)
	}
	wg.Wait()
	openS := time.Since(t0).Seconds()
	if err, _ := openErr.Load().(error); err != nil {
		r.closeAll()
		fail("%v", err)
	}

	result := map[string]any{
		"event": "result", "protocol": plan.Protocol, "mode": plan.Mode, "sockets": n,
		"rooms": len(r.roomSize), "open_s": round(openS, 2),
	}
	if plan.Mode == "idle" {
		emit(map[string]any{"event": "ready", "open_s": round(openS, 2)})
		waitFor("ok")
		r.closeAll()
		result["unexpected_closes"] = r.dropped.Load()
		emit(result)
		return
	}

	r.publish(0, warm, 'w')
	time.Sleep(500 * time.Millisecond) // the warm-up's tail arrives before the window (not a sync)
	emit(map[string]any{"event": "ready", "open_s": round(openS, 2)})
	waitFor("go")
	cpu0 := cpuSeconds()
	start := nowNs()
	lag := r.publish(warm, total, 'm')
	sendWindow := float64(nowNs()-start) / 1e9
	drained := true
	select {
	case <-r.done:
	case <-time.After(time.Duration(plan.DrainS * float64(time.Second))):
		drained = false
	}
	end := nowNs()
	cpu1 := cpuSeconds()
	emit(map[string]any{"event": "drained"})
	waitFor("ok")
	r.closeAll()

	var lat, ackLat []int32
	for _, s := range r.socks {
		lat = append(lat, s.lat...)
		ackLat = append(ackLat, s.ackLat...)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	sort.Slice(ackLat, func(i, j int) bool { return ackLat[i] < ackLat[j] })
	var missing, dup int64
	for i := warm; i < total; i++ {
		d := int64(atomic.LoadInt32(&r.got[i])) - int64(r.expect[i])
		if d < 0 {
			missing -= d
		} else {
			dup += d
		}
	}
	last := r.lastNs.Load()
	if !drained || last < start {
		last = end
	}
	elapsed := float64(last-start) / 1e9
	received := r.received.Load()
	result["rate"] = plan.Rate
	result["sent"] = count
	result["expected"] = r.expected
	result["received"] = received
	result["missing"] = missing
	result["duplicates"] = dup
	result["all_delivered"] = drained && missing == 0 && dup == 0
	result["send_window_s"] = round(sendWindow, 3)
	result["elapsed_s"] = round(elapsed, 3)
	result["deliveries_per_s"] = round(float64(received)/max(elapsed, 1e-9), 1)
	result["p50_ms"] = pct(lat, 0.50)
	result["p99_ms"] = pct(lat, 0.99)
	result["p999_ms"] = pct(lat, 0.999)
	result["max_ms"] = pct(lat, 1)
	result["acks"] = len(ackLat)
	result["ack_p50_ms"] = pct(ackLat, 0.50)
	result["ack_p99_ms"] = pct(ackLat, 0.99)
	result["send_late_max_ms"] = round(lag.Seconds()*1000, 2)
	result["client_cpu_s"] = round(cpu1-cpu0, 3)
	result["unexpected_closes"] = r.dropped.Load()
	result["write_errors"] = r.writeErrs.Load()
	result["errors"] = r.errors
	emit(result)
}

func round(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}
