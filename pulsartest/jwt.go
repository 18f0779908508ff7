package pulsartest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"math/big"
	"strings"
	"time"
)

// A broker's token provider (AuthenticationProviderToken) takes JSON Web
// Tokens in compact form (RFC 7519): it checks the signature with the key
// it was given, the expiry and not-before times, and takes the role from
// the "sub" claim. jwtVerify does the same for the keys of
// WithTokenSecretKey and WithTokenPublicKey.

// Errors of JWT validation; the broker's log names the same reasons.
var (
	errJWTMalformed = errors.New("malformed JWT")
	errJWTSignature = errors.New("JWT signature does not match")
	errJWTExpired   = errors.New("JWT expired")
	errJWTPremature = errors.New("JWT not yet valid")
	errJWTNoSubject = errors.New("JWT has no subject")
)

// jwtKey is one verification key: an HMAC secret or a public key.
type jwtKey struct {
	secret []byte
	public crypto.PublicKey
}

// jwtVerify checks tok against keys (any may match) at time now and
// returns its subject.
func jwtVerify(tok string, keys []jwtKey, now time.Time) (string, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", errJWTMalformed
	}
	enc := base64.RawURLEncoding
	head, err1 := enc.DecodeString(parts[0])
	body, err2 := enc.DecodeString(parts[1])
	sig, err3 := enc.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return "", errJWTMalformed
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(head, &h) != nil {
		return "", errJWTMalformed
	}
	signed := []byte(parts[0] + "." + parts[1])
	verified := false
	for _, k := range keys {
		if jwtSignatureOK(h.Alg, signed, sig, k) {
			verified = true
			break
		}
	}
	if !verified {
		return "", errJWTSignature
	}
	var claims map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&claims) != nil {
		return "", errJWTMalformed
	}
	if exp, ok, err := numericDate(claims, "exp"); err != nil {
		return "", err
	} else if ok && !now.Before(exp) {
		return "", errJWTExpired
	}
	if nbf, ok, err := numericDate(claims, "nbf"); err != nil {
		return "", err
	} else if ok && now.Before(nbf) {
		return "", errJWTPremature
	}
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return "", errJWTNoSubject
	}
	return sub, nil
}

// numericDate reads a NumericDate claim (seconds since the epoch).
func numericDate(claims map[string]any, name string) (time.Time, bool, error) {
	v, ok := claims[name]
	if !ok {
		return time.Time{}, false, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false, fmt.Errorf("%w: claim %s is not a number", errJWTMalformed, name)
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, false, fmt.Errorf("%w: claim %s: %v", errJWTMalformed, name, err)
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64((f-sec)*1e9)), true, nil
}

// jwtSignatureOK reports whether sig is alg's signature of signed by k.
// The algorithm must suit the key: an HMAC secret verifies HS*, an RSA
// key RS* and PS*, an ECDSA key ES*; "none" verifies nothing.
func jwtSignatureOK(alg string, signed, sig []byte, k jwtKey) bool {
	var newHash func() hash.Hash
	var ch crypto.Hash
	switch alg[min(2, len(alg)):] {
	case "256":
		newHash, ch = sha256.New, crypto.SHA256
	case "384":
		newHash, ch = sha512.New384, crypto.SHA384
	case "512":
		newHash, ch = sha512.New, crypto.SHA512
	default:
		return false
	}
	switch alg[:2] {
	case "HS":
		if k.secret == nil {
			return false
		}
		m := hmac.New(newHash, k.secret)
		m.Write(signed)
		return hmac.Equal(m.Sum(nil), sig)
	case "RS", "PS":
		pub, ok := k.public.(*rsa.PublicKey)
		if !ok {
			return false
		}
		d := digest(newHash, signed)
		if alg[:2] == "RS" {
			return rsa.VerifyPKCS1v15(pub, ch, d, sig) == nil
		}
		return rsa.VerifyPSS(pub, ch, d, sig, nil) == nil
	case "ES":
		pub, ok := k.public.(*ecdsa.PublicKey)
		if !ok {
			return false
		}
		size := (pub.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return false
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(pub, digest(newHash, signed), r, s)
	}
	return false
}

func digest(newHash func() hash.Hash, b []byte) []byte {
	h := newHash()
	h.Write(b)
	return h.Sum(nil)
}
