package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ternvm/tern/vmm"
	"github.com/ternvm/tern/vmm/api"
	"github.com/urfave/cli/v2"
)

// apiDrainTimeout bounds how long a stopping tern waits for API requests
// under way.
const apiDrainTimeout = 5 * time.Second

// apiSocket is tern's API socket, made before the VM is built (a
// migration's guest runs, confined, before Receive returns: no socket
// could be made then) and served once the VM exists.
type apiSocket struct {
	ln     net.Listener
	remove func()
}

// openAPI listens on sock (see listenAPI); "" means no API (nil).
func openAPI(sock string) (*apiSocket, error) {
	if sock == "" {
		return nil, nil
	}
	ln, remove, err := listenAPI(sock)
	if err != nil {
		return nil, fmt.Errorf("--api-socket: %w", err)
	}
	return &apiSocket{ln: ln, remove: remove}, nil
}

// close gives up a socket never served (no VM came to be).
func (a *apiSocket) close() {
	if a != nil {
		a.remove()
		a.ln.Close()
	}
}

// serve serves vm's API until the returned stop is called.
func (a *apiSocket) serve(vm *vmm.VM) func() {
	if a == nil {
		return func() {}
	}
	srv := api.Serve(a.ln, api.ForVM(vm))
	return func() {
		// Removed while still listening: no other tern can have taken
		// the path (ours answers), and our inode cannot be reused.
		a.remove()
		// Requests under way finish first: a watcher of a migration
		// that just moved the guest away gets the final status.
		ctx, cancel := context.WithTimeout(context.Background(), apiDrainTimeout)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
	}
}

func balloonCommand() *cli.Command {
	sockFlag := apiSocketFlag()
	return &cli.Command{
		Name:  "balloon",
		Usage: "inspect or resize the balloon of a running tern (tern run --api-socket)",
		Subcommands: []*cli.Command{
			{
				Name: "set", Usage: "set the balloon's target size", ArgsUsage: "SIZE (e.g. 64M; 0 deflates it)",
				Flags: []cli.Flag{sockFlag},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return errors.New("balloon set: give one SIZE, e.g. 64M")
					}
					size, err := parseSizeAllowZero(c.Args().First())
					if err != nil || size%(1<<20) != 0 {
						return fmt.Errorf("balloon set: %q is not a whole number of MiB", c.Args().First())
					}
					body := fmt.Sprintf(`{"amount_mib": %d}`, size>>20)
					_, err = apiCall(c.String("api-socket"), http.MethodPatch, "/balloon", body)
					return err
				},
			},
			{
				Name: "get", Usage: "print the balloon's target and actual size (JSON)", Flags: []cli.Flag{sockFlag},
				Action: func(c *cli.Context) error {
					out, err := apiCall(c.String("api-socket"), http.MethodGet, "/balloon", "")
					fmt.Fprint(c.App.Writer, out)
					return err
				},
			},
			{
				Name: "stats", Usage: "print the guest's memory statistics (JSON)", Flags: []cli.Flag{sockFlag},
				Action: func(c *cli.Context) error {
					out, err := apiCall(c.String("api-socket"), http.MethodGet, "/balloon/statistics", "")
					fmt.Fprint(c.App.Writer, out)
					return err
				},
			},
		},
	}
}

func parseSizeAllowZero(s string) (uint64, error) {
	if strings.TrimSpace(s) == "0" {
		return 0, nil
	}
	return parseSize(s)
}

// apiCall makes one request to a running tern's API and returns the body,
// or an error carrying the API's fault message.
func apiCall(sock, method, path, body string) (string, error) {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	req, err := http.NewRequest(method, "http://tern"+path, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("API at %s: %w", sock, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		var f struct {
			Fault string `json:"fault_message"`
		}
		if json.Unmarshal(b, &f) == nil && f.Fault != "" {
			return "", fmt.Errorf("API: %s", f.Fault)
		}
		return "", fmt.Errorf("API: %s", resp.Status)
	}
	return string(b), nil
}
