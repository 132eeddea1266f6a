package devices

// 16550A register offsets from the UART's base port, and the bits the
// emulation uses (PC16550D datasheet; the same names as Linux's
// include/uapi/linux/serial_reg.h).
const (
	uartData = 0 // RBR on read, THR on write; DLL when LCR.DLAB is set
	uartIER  = 1 // DLM when LCR.DLAB is set
	uartIIR  = 2 // IIR on read, FCR on write
	uartLCR  = 3
	uartMCR  = 4
	uartLSR  = 5
	uartMSR  = 6
	uartSCR  = 7
	uartRegs = 8

	ierRDI   = 0x01 // ERBFI: received data available
	ierTHRI  = 0x02 // ETBEI: transmitter holding register empty
	ierRLSI  = 0x04 // ELSI: receiver line status
	ierMSI   = 0x08 // EDSSI: modem status
	ierValid = 0x0f // the upper nibble reads as zero on a 16550A

	iirNoInt     = 0x01
	iirMSI       = 0x00
	iirTHRI      = 0x02
	iirRDI       = 0x04
	iirRLSI      = 0x06
	iirFIFOs     = 0xc0 // both bits set once FCR enabled the FIFOs
	iirIDMask    = 0x0e
	fcrEnable    = 0x01
	fcrClearRecv = 0x02

	lcrDLAB = 0x80

	mcrDTR   = 0x01
	mcrRTS   = 0x02
	mcrOUT1  = 0x04
	mcrOUT2  = 0x08
	mcrLoop  = 0x10
	mcrValid = 0x1f

	lsrDR   = 0x01
	lsrOE   = 0x02
	lsrTHRE = 0x20
	lsrTEMT = 0x40

	msrDCTS      = 0x01
	msrDDSR      = 0x02
	msrTERI      = 0x04
	msrDDCD      = 0x08
	msrDeltaMask = 0x0f
	msrCTS       = 0x10
	msrDSR       = 0x20
	msrRI        = 0x40
	msrDCD       = 0x80
	msrConnected = msrDCD | msrDSR | msrCTS // what an attached console reports

	// defaultDivisor is 9600 baud from the PC's 1.8432 MHz clock; the
	// datasheet leaves the latch undefined at reset.
	defaultDivisor = 12
)
