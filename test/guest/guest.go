// Package guest holds what runs inside the test guests: the /init script
// (init.sh, embedded here) and the agent binary (package guest/agent).
package guest

import _ "embed"

// InitScript is the guest's /init, a busybox sh script. It prints
// "TERN-GUEST key=value" lines and then does what the kernel command line's
// tern.action= asks: poweroff (the default), reboot, shell or sleep.
//
//go:embed init.sh
var InitScript []byte

// AgentPackage is the import path of the guest agent, to build it.
const AgentPackage = "./test/guest/agent"
