package main

import (
	"net/http"

	"github.com/urfave/cli/v2"
)

func ctrlAltDelCommand() *cli.Command {
	return &cli.Command{
		Name:      "ctrl-alt-del",
		Usage:     "press Ctrl+Alt+Del on a running tern's guest keyboard (the guest's init decides what follows)",
		ArgsUsage: " ",
		Flags:     []cli.Flag{apiSocketFlag()},
		Action: func(c *cli.Context) error {
			_, err := apiCall(c.String("api-socket"), http.MethodPut, "/actions", `{"action_type": "SendCtrlAltDel"}`)
			return err
		},
	}
}
