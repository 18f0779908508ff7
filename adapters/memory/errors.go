package memory

import "syscall"

// ErrRefused is the cause of a failed dial: nobody listens on the address,
// or the network refuses dials ([Network.RefuseDials]). It matches
// syscall.ECONNREFUSED with errors.Is.
var ErrRefused error = &netError{msg: "memory: connection refused", errno: syscall.ECONNREFUSED}

// ErrReset is returned by Read and Write on a connection that the network
// dropped ([Network.DropAll], or a listener closed before accepting it),
// as a TCP stack reports a reset. It matches syscall.ECONNRESET with
// errors.Is.
var ErrReset error = &netError{msg: "memory: connection reset", errno: syscall.ECONNRESET}

// netError is a sentinel that also matches the errno a kernel would have
// reported, so callers can classify memory and TCP failures alike.
type netError struct {
	msg   string
	errno syscall.Errno
}

func (e *netError) Error() string { return e.msg }

// Is reports whether target is the errno this error stands for.
func (e *netError) Is(target error) bool { return target == e.errno }
