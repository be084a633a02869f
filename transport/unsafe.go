package transport

import "unsafe"

// unsafePointer returns a pointer to b's first byte, for reading native-endian
// control-message payloads.
func unsafePointer(b []byte) unsafe.Pointer { return unsafe.Pointer(&b[0]) }
