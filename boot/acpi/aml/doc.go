// Package aml encodes the small subset of the ACPI Machine Language (ACPI
// 6.5, chapter 20) that a microVM's DSDT needs: names, integers, strings,
// EISA ids, packages, buffers, scopes, devices and resource templates.
//
// A DSDT body is built as a tree of Object values and turned into bytes with
// Encode. Every constructor validates its input when encoded, so a bad name
// or an out-of-range value comes back as an error instead of corrupt AML.
package aml
