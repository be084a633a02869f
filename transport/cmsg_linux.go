package transport

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Socket control messages for UDP segmentation offload (UDP_SEGMENT, on
// send) and receive offload (UDP_GRO) are built and parsed here with
// encoding/binary rather than x/sys's pointer casts, which read past a
// short buffer. Only Linux has UDP_SEGMENT and UDP_GRO, so only Linux
// builds this file: elsewhere quic-go never asks for segmentation offload
// and the carrier never offers either.

// cmsgAlignTo is the alignment of control messages and their payloads (the
// size of a long), and cmsgHdrLen the size of struct cmsghdr.
const (
	cmsgAlignTo = int(unsafe.Sizeof(uintptr(0)))
	cmsgHdrLen  = unix.SizeofCmsghdr
)

// cmsgAlign rounds n up to the control-message alignment (CMSG_ALIGN).
func cmsgAlign(n int) int { return (n + cmsgAlignTo - 1) &^ (cmsgAlignTo - 1) }

// putSegmentSizeCmsg writes a UDP_SEGMENT control message into b (at least
// cmsgAlign(cmsgHdrLen+2) bytes) and returns its length.
func putSegmentSizeCmsg(b []byte, size uint16) int {
	n := cmsgAlign(cmsgHdrLen + 2)
	clear(b[:n])
	putCmsgHeader(b, cmsgHdrLen+2, unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	binary.NativeEndian.PutUint16(b[cmsgHdrLen:], size)
	return n
}

// putCmsgHeader writes a struct cmsghdr (length, level, type) at the start
// of b in the kernel's layout for this architecture.
func putCmsgHeader(b []byte, length int, level, typ int32) {
	if cmsgHdrLen == 16 {
		binary.NativeEndian.PutUint64(b[0:8], uint64(length))
		binary.NativeEndian.PutUint32(b[8:12], uint32(level))
		binary.NativeEndian.PutUint32(b[12:16], uint32(typ))
		return
	}
	binary.NativeEndian.PutUint32(b[0:4], uint32(length))
	binary.NativeEndian.PutUint32(b[4:8], uint32(level))
	binary.NativeEndian.PutUint32(b[8:12], uint32(typ))
}

// parseCmsgHeader reads one control message header; ok is false when b is
// too short or the length field is out of range.
func parseCmsgHeader(b []byte) (length int, level, typ int32, ok bool) {
	if len(b) < cmsgHdrLen {
		return 0, 0, 0, false
	}
	var l uint64
	if cmsgHdrLen == 16 {
		l = binary.NativeEndian.Uint64(b[0:8])
		level = int32(binary.NativeEndian.Uint32(b[8:12]))
		typ = int32(binary.NativeEndian.Uint32(b[12:16]))
	} else {
		l = uint64(binary.NativeEndian.Uint32(b[0:4]))
		level = int32(binary.NativeEndian.Uint32(b[4:8]))
		typ = int32(binary.NativeEndian.Uint32(b[8:12]))
	}
	if l < uint64(cmsgHdrLen) || l > uint64(len(b)) {
		return 0, 0, 0, false
	}
	return int(l), level, typ, true
}

// segmentSize returns the UDP_SEGMENT size in quic-go's control messages, or
// 0. Other control messages (ECN marks) are dropped: paths may change under
// quic-go, so ferry does not claim ECN.
func segmentSize(oob []byte) int {
	data, ok := findCmsg(oob, unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	if !ok || len(data) < 2 {
		return 0
	}
	return int(binary.NativeEndian.Uint16(data))
}

// groSegmentSize returns the segment size in a UDP_GRO control message the
// kernel attached to a received buffer of coalesced datagrams (an int), or
// 0 when there is none or it is malformed or not positive: the buffer is
// then one datagram.
func groSegmentSize(oob []byte) int {
	data, ok := findCmsg(oob, unix.IPPROTO_UDP, unix.UDP_GRO)
	if !ok || len(data) < 4 {
		return 0
	}
	return max(int(int32(binary.NativeEndian.Uint32(data))), 0)
}

// findCmsg returns the payload of the first control message of the given
// level and type in oob; ok is false when there is none, or when a
// malformed header comes first.
func findCmsg(oob []byte, level, typ int32) (data []byte, ok bool) {
	for len(oob) > 0 {
		l, lv, ty, ok := parseCmsgHeader(oob)
		if !ok {
			return nil, false
		}
		if lv == level && ty == typ {
			return oob[cmsgHdrLen:l], true
		}
		next := cmsgAlign(l)
		if next >= len(oob) {
			return nil, false
		}
		oob = oob[next:]
	}
	return nil, false
}
