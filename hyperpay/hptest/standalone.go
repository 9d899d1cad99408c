package hptest

import (
	"crypto/rsa"
	"errors"
	"fmt"
)

// Start starts a fake HyperCard API outside a test (otpbot demo), on a
// loopback port, accepting requests signed by the private half of pub.
// The caller closes it.
func Start(pub *rsa.PublicKey) (s *Server, err error) {
	if pub == nil {
		return nil, errors.New("hptest: start: nil public key")
	}
	defer func() {
		// httptest panics when it cannot listen.
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("hptest: start: %v", r)
		}
	}()
	return newServer(pub), nil
}
