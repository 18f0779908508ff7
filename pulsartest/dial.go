package pulsartest

import (
	"context"
	"net"
)

// DialHook returns a dial function that connects to the server in memory,
// whatever the address: each call makes a net.Pipe, serves one end as
// ServeConn would (in the background; Close ends it) and returns the
// other. It lets a client reach the server with no listener and no
// network, through any transport that takes a dial function, e.g.
//
//	dial := srv.DialHook()
//	nc, err := dial(ctx, "broker:6650")
//
// The pipe is synchronous: the server's writes wait for the client's
// reads.
func (s *Server) DialHook() func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, _ string) (net.Conn, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		client, server := net.Pipe()
		if err := s.serveBackground(server); err != nil {
			_ = client.Close()
			return nil, err
		}
		return client, nil
	}
}

// serveBackground serves nc on a goroutine counted in wg, as the accept
// loop does for the connections it accepts.
func (s *Server) serveBackground(nc net.Conn) error {
	c, err := s.register(nc)
	if err != nil {
		return err
	}
	go func() {
		defer s.wg.Done()
		s.serve(c)
	}()
	return nil
}
