package acpi

// Identification strings written into every table header.
const (
	// OEMID is the six-byte OEM id of the RSDP and of every table.
	OEMID = "TERNVM"
	// CreatorID is the four-byte id of the tool that made the tables.
	CreatorID = "TERN"
	// HypervisorVendorID is the FADT's eight-byte hypervisor vendor
	// identity.
	HypervisorVendorID = "TERNVMM "

	oemRevision     = 1
	creatorRevision = 1
)

// Table signatures and the revisions this package writes. The revisions
// are those of ACPI 6.4, the newest version the ACPICA in Linux 6.1 knows.
const (
	sigRSDP = "RSD PTR "
	sigXSDT = "XSDT"
	sigFADT = "FACP"
	sigMADT = "APIC"
	sigDSDT = "DSDT"

	rsdpRev      = 2 // ACPI 2.0 and later: the RSDP carries the XSDT address
	xsdtRevision = 1
	fadtRevision = 6
	fadtMinor    = 4
	madtRevision = 5
	// dsdtRevision 2 makes AML integers 64 bits wide.
	dsdtRevision = 2
)
