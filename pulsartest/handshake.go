package pulsartest

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/pulsarconn/pulsarconn/proto/pulsarpb"
)

// authRefreshData is what a broker's token provider sends in the
// AUTH_CHALLENGE that asks for fresh credentials on a live connection.
var authRefreshData = []byte("PulsarAuthRefresh")

// Messages of the ERROR a broker sends when authentication fails; it sends
// them with request id -1 and closes the connection.
const (
	msgConnectAuthFailed = "Unable to authenticate"
	msgAuthFailed        = "Failed to authenticate"
)

func (s *Server) handleConnectLocked(c *Conn, connect *pulsarpb.CommandConnect) {
	c.connect = connect
	s.lastConnect = connect
	c.clientProtocol = connect.GetProtocolVersion()
	c.authMethod = connect.GetAuthMethodName()
	if c.authMethod == "" {
		c.authMethod = "none"
	}
	if s.neverConnect {
		c.state = stateConnectSeen
		return
	}
	role, err := s.authenticateLocked(connect.GetAuthMethodName(), connect.GetAuthData(), c.tlsState())
	if err != nil {
		s.authFailedLocked(c, msgConnectAuthFailed)
		return
	}
	c.role = role
	if s.cfg.challengeRounds > 0 {
		c.state = stateChallenging
		c.challengesLeft = s.cfg.challengeRounds - 1
		s.challengeLocked(c, fmt.Appendf(nil, "pulsartest-challenge-%d", 1))
		return
	}
	s.completeConnectLocked(c)
}

// challengeLocked sends one AUTH_CHALLENGE.
func (s *Server) challengeLocked(c *Conn, data []byte) {
	c.challengePending = true
	_ = c.Send(&pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_AUTH_CHALLENGE.Enum(),
		AuthChallenge: &pulsarpb.CommandAuthChallenge{
			ServerVersion:   proto.String(s.cfg.serverVersion),
			ProtocolVersion: proto.Int32(c.clientProtocol),
			Challenge: &pulsarpb.AuthData{
				AuthMethodName: proto.String(c.authMethod),
				AuthData:       data,
			},
		},
	})
}

func (s *Server) handleAuthResponseLocked(c *Conn, resp *pulsarpb.CommandAuthResponse) {
	s.lastAuthResp = resp
	c.challengePending = false
	r := resp.GetResponse()
	if _, err := s.authenticateLocked(r.GetAuthMethodName(), r.GetAuthData(), c.tlsState()); err != nil {
		s.authFailedLocked(c, msgAuthFailed)
		return
	}
	if c.state != stateChallenging {
		return // a credential refresh, accepted
	}
	if c.challengesLeft > 0 {
		round := s.cfg.challengeRounds - c.challengesLeft + 1
		c.challengesLeft--
		s.challengeLocked(c, fmt.Appendf(nil, "pulsartest-challenge-%d", round))
		return
	}
	s.completeConnectLocked(c)
}

func (s *Server) authFailedLocked(c *Conn, msg string) {
	_ = c.Send(errorCommand(noRequestID, pulsarpb.ServerError_AuthenticationError, msg))
	s.failLocked(c)
}

func (s *Server) completeConnectLocked(c *Conn) {
	// A broker announces the older of its version and the client's, "to
	// avoid confusing the client".
	v := min(c.clientProtocol, s.cfg.protocolVersion)
	_ = c.Send(&pulsarpb.BaseCommand{
		Type: pulsarpb.BaseCommand_CONNECTED.Enum(),
		Connected: &pulsarpb.CommandConnected{
			ServerVersion:   proto.String(s.cfg.serverVersion),
			ProtocolVersion: proto.Int32(v),
			MaxMessageSize:  proto.Int32(int32(s.cfg.maxMessageSize)),
			FeatureFlags: &pulsarpb.FeatureFlags{
				SupportsTopicWatchers: proto.Bool(false),
			},
		},
	})
	c.state = stateConnected
	if c.handshakeTimer != nil {
		c.handshakeTimer.Stop() // WithHandshakeTimeout has nothing left to check
	}
}

// ChallengeAll asks every connected client for fresh credentials, as a
// broker does when they expire: it sends AUTH_CHALLENGE (auth data
// "PulsarAuthRefresh") on every connection that completed the handshake.
// The AUTH_RESPONSE is recorded (LastAuthResponse) and checked against the
// token; a wrong one gets ERROR{AuthenticationError} and the connection is
// closed. As on a broker, a connection whose CONNECT did not announce
// supports_auth_refresh is closed instead. ChallengeAll returns the number
// of challenges sent.
func (s *Server) ChallengeAll() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.state != stateConnected {
			continue
		}
		if !c.connect.GetFeatureFlags().GetSupportsAuthRefresh() {
			s.failLocked(c)
			continue
		}
		s.challengeLocked(c, authRefreshData)
		n++
	}
	return n
}
