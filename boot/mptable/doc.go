// Package mptable builds the Intel MultiProcessor Specification 1.4 tables
// (the MP floating pointer structure and the MP configuration table) for
// kernels that boot without ACPI and read them to find the processors, the
// I/O APIC and the ISA interrupt routing.
package mptable
