package mmds

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// kernelPeer puts a TAP in a fresh network namespace with 169.254.0.2/16 on
// it and serves the TAP's frames with s: the namespace's own Linux TCP/IP
// stack plays the guest. The calling goroutine stays in the namespace,
// so the sockets it opens go through the TAP.
func kernelPeer(t *testing.T, s *Stack) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace and a TAP")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("no TUN/TAP support: %v", err)
	}
	runtime.LockOSThread() // never unlocked: the thread dies with the test goroutine
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		t.Skipf("unshare(CLONE_NEWNET): %v", err)
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	ifr, err := unix.NewIfreq("mmds0")
	if err != nil {
		t.Fatal(err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		t.Fatalf("TUNSETIFF: %v", err)
	}
	tap := os.NewFile(uintptr(fd), "mmds0")
	link, err := netlink.LinkByName("mmds0")
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr("169.254.0.2/16")
	if err := netlink.AddrAdd(link, addr); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
	wake := make(chan struct{}, 1)
	s.SetNotify(func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	done := make(chan struct{})
	// The guest's transmit path: frames from the kernel to the service.
	go func() {
		buf := make([]byte, 65536)
		for {
			n, err := tap.Read(buf)
			if err != nil {
				return
			}
			s.Intercept(buf[:n])
		}
	}()
	// The receive path: the service's frames into the kernel.
	go func() {
		for {
			select {
			case <-done:
				return
			case <-wake:
			}
			for f := s.Next(); f != nil; f = s.Next() {
				tap.Write(f)
			}
		}
	}()
	t.Cleanup(func() { close(done); tap.Close() })
}

// get sends raw over a fresh TCP connection to the service and reads the
// HTTP response.
func get(t *testing.T, raw string) (*http.Response, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", "169.254.169.254:80", 5*time.Second)
	if err != nil {
		t.Fatalf("connect to the service: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read the response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read the body: %v", err)
	}
	// The service closes after its answer: the client sees EOF.
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("after the response: %d bytes, %v; want EOF", n, err)
	}
	return resp, string(body)
}

func TestLinuxTCPClientV1(t *testing.T) {
	store := NewStore(0)
	big := strings.Repeat("0123456789abcdef", 3000) // 48000 bytes: many segments, past one window
	if err := store.Put([]byte(fmt.Sprintf(`{"latest":{"meta-data":{"instance-id":"i-0abc","big":%q}}}`, big))); err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{Interfaces: []string{"net0"}}, store)
	if err != nil {
		t.Fatal(err)
	}
	s := svc.NewStack()
	defer s.Close()
	kernelPeer(t, s)

	resp, body := get(t, "GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n")
	if resp.StatusCode != 200 || body != "i-0abc" {
		t.Fatalf("GET instance-id: %d %q", resp.StatusCode, body)
	}
	resp, body = get(t, "GET /latest/meta-data/big HTTP/1.0\r\n\r\n")
	if resp.StatusCode != 200 || body != big {
		t.Fatalf("GET big: %d, %d bytes (want %d)", resp.StatusCode, len(body), len(big))
	}
	// A patch shows in the next answer.
	if err := store.Patch([]byte(`{"latest":{"meta-data":{"instance-id":"i-new"}}}`)); err != nil {
		t.Fatal(err)
	}
	if _, body := get(t, "GET /latest/meta-data/instance-id HTTP/1.1\r\n\r\n"); body != "i-new" {
		t.Fatalf("after the patch: %q", body)
	}
	// Many connections one after another reuse the table.
	for i := 0; i < 2*maxConns; i++ {
		if resp, _ := get(t, "GET /latest HTTP/1.1\r\n\r\n"); resp.StatusCode != 200 {
			t.Fatalf("connection %d: %d", i, resp.StatusCode)
		}
	}
	// Other ports are closed.
	if _, err := net.DialTimeout("tcp", "169.254.169.254:81", 5*time.Second); err == nil {
		t.Error("connected to port 81")
	}
}

func TestLinuxTCPClientV2(t *testing.T) {
	store := NewStore(0)
	store.Put([]byte(`{"secret":"s3"}`))
	svc, err := New(Config{Version: 2, Interfaces: []string{"net0"}}, store)
	if err != nil {
		t.Fatal(err)
	}
	s := svc.NewStack()
	defer s.Close()
	kernelPeer(t, s)
	if resp, _ := get(t, "GET /secret HTTP/1.1\r\n\r\n"); resp.StatusCode != 401 {
		t.Fatalf("GET without a token: %d, want 401", resp.StatusCode)
	}
	resp, tok := get(t, "PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 30\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("token: %d %q", resp.StatusCode, tok)
	}
	if resp, body := get(t, "GET /secret HTTP/1.1\r\nX-metadata-token: "+tok+"\r\n\r\n"); resp.StatusCode != 200 || body != "s3" {
		t.Fatalf("GET with the token: %d %q", resp.StatusCode, body)
	}
}
