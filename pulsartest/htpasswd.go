package pulsartest

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/subtle"
	"fmt"
	"strings"
)

// WithBasicAuthHtpasswd requires clients to present auth method "basic"
// with auth data "user:password" for one of the users of data, a file in
// Apache's htpasswd format, as a broker with the basic authentication
// provider and its htpasswd file does; the role is the user name. Each line
// is "user:hash"; blank lines and lines starting with # are skipped. The
// hashes may be MD5-crypt ($apr1$, as `htpasswd -m` writes, or $1$). It
// returns an error for a malformed line or another kind of hash. With
// WithBasicAuth too, both are accepted.
func WithBasicAuthHtpasswd(data []byte) (Option, error) {
	users := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("pulsartest: htpasswd line %d: want user:hash", n)
		}
		if _, _, ok := md5CryptSalt(hash); !ok {
			return nil, fmt.Errorf("pulsartest: htpasswd line %d: user %s: only MD5-crypt ($apr1$ or $1$) hashes are supported", n, user)
		}
		users[user] = hash
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return func(c *config) {
		if c.basicUsers == nil {
			c.basicUsers = map[string]string{}
		}
		for u, h := range users {
			c.basicUsers[u] = h
		}
	}, nil
}

// htpasswdOK checks "user:password" against the htpasswd users and returns
// the user.
func htpasswdOK(users map[string]string, data []byte) (string, bool) {
	user, password, ok := strings.Cut(string(data), ":")
	if !ok {
		return "", false
	}
	hash, ok := users[user]
	if !ok {
		return "", false
	}
	magic, salt, ok := md5CryptSalt(hash)
	if !ok {
		return "", false
	}
	got := md5Crypt([]byte(password), []byte(salt), magic)
	return user, subtle.ConstantTimeCompare([]byte(got), []byte(hash)) == 1
}

// md5CryptSalt splits an MD5-crypt hash "$apr1$salt$digest" or
// "$1$salt$digest" into its magic ("$apr1$") and salt.
func md5CryptSalt(hash string) (magic, salt string, ok bool) {
	for _, m := range []string{"$apr1$", "$1$"} {
		if rest, found := strings.CutPrefix(hash, m); found {
			salt, _, found = strings.Cut(rest, "$")
			return m, salt, found && len(salt) <= 8
		}
	}
	return "", "", false
}

// md5Crypt is Poul-Henning Kamp's MD5-based crypt(3), which Apache's
// htpasswd uses with the magic "$apr1$" (and FreeBSD with "$1$").
func md5Crypt(password, salt []byte, magic string) string {
	if len(salt) > 8 {
		salt = salt[:8]
	}
	alt := md5.New()
	alt.Write(password)
	alt.Write(salt)
	alt.Write(password)
	altSum := alt.Sum(nil)

	d := md5.New()
	d.Write(password)
	d.Write([]byte(magic))
	d.Write(salt)
	for n := len(password); n > 0; n -= 16 {
		d.Write(altSum[:min(n, 16)])
	}
	for i := len(password); i > 0; i >>= 1 {
		if i&1 != 0 {
			d.Write([]byte{0})
		} else {
			d.Write(password[:1])
		}
	}
	sum := d.Sum(nil)

	// 1000 rounds to slow down guessing.
	for i := range 1000 {
		r := md5.New()
		if i&1 != 0 {
			r.Write(password)
		} else {
			r.Write(sum)
		}
		if i%3 != 0 {
			r.Write(salt)
		}
		if i%7 != 0 {
			r.Write(password)
		}
		if i&1 != 0 {
			r.Write(sum)
		} else {
			r.Write(password)
		}
		sum = r.Sum(nil)
	}

	const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var out strings.Builder
	out.WriteString(magic)
	out.Write(salt)
	out.WriteByte('$')
	put := func(v uint32, n int) {
		for range n {
			out.WriteByte(itoa64[v&0x3f])
			v >>= 6
		}
	}
	for _, g := range [][3]int{{0, 6, 12}, {1, 7, 13}, {2, 8, 14}, {3, 9, 15}, {4, 10, 5}} {
		put(uint32(sum[g[0]])<<16|uint32(sum[g[1]])<<8|uint32(sum[g[2]]), 4)
	}
	put(uint32(sum[11]), 2)
	return out.String()
}
