package main

import (
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/pulsarconn/pulsarconn/pulsartest"
)

// tokenEnv names the environment variable serve takes its token from when
// neither --token nor --token-file is given, so that the secret need not
// appear on a command line (where ps shows it).
const tokenEnv = "PULSARCONN_SERVE_TOKEN"

// authFlags are serve's authentication and authorization flags: what a
// broker's authenticationProviders, tokenSecretKey, tokenPublicKey,
// anonymousUserRole, superUserRoles and namespace permissions configure.
type authFlags struct {
	token, tokenFile string
	secretKeys       listFlag
	publicKeys       listFlag
	lenient          bool
	anonymousRole    string
	htpasswd         string
	trustCerts       string
	superUsers       listFlag
	tenantAdmins     listFlag
	grants           listFlag
}

func (a *authFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.token, "token", "", "require this `TOKEN` (auth method \"token\"); it shows in ps: prefer --token-file or $"+tokenEnv)
	fs.StringVar(&a.tokenFile, "token-file", "", "require the token in this `FILE` (surrounding white space, such as its final newline, is not part of it)")
	fs.Var(&a.secretKeys, "token-secret-key", "verify tokens as JWTs signed with the HMAC secret in this `FILE` (its raw bytes, like a broker's tokenSecretKey=file://...; repeatable)")
	fs.Var(&a.publicKeys, "token-public-key", "verify tokens as JWTs signed with the private key of the RSA or EC public key in this `FILE` (PEM or DER; repeatable)")
	fs.BoolVar(&a.lenient, "lenient-tokens", false, "accept tokens followed by white space (a token file's newline), as Pulsar 4.0 brokers do; Pulsar 4.2 refuses them")
	fs.StringVar(&a.anonymousRole, "anonymous-role", "", "the `ROLE` of clients without credentials, or with a method no provider handles (default: refuse them when authentication is on)")
	fs.StringVar(&a.htpasswd, "basic-auth-file", "", "accept auth method \"basic\" for the users of this htpasswd `FILE` (MD5-crypt hashes, as htpasswd -m writes)")
	fs.StringVar(&a.trustCerts, "tls-trust-certs", "", "PEM `FILE` of CA certificates: the TLS listener asks for client certificates and verifies them with these, and auth method \"tls\" takes the certificate's common name as the role")
	fs.Var(&a.superUsers, "super-user", "`ROLE`: a superuser; turns authorization on (repeatable)")
	fs.Var(&a.tenantAdmins, "tenant-admin", "`TENANT=ROLE[,ROLE]`: the admin roles of a tenant, which may use all its topics; turns authorization on (repeatable)")
	fs.Var(&a.grants, "grant", "`NAMESPACE=ROLE[,ROLE]`: roles that may produce and consume in a namespace (tenant/namespace); turns authorization on (repeatable)")
}

// options turns the flags into pulsartest options; getenv reads the
// environment.
func (a *authFlags) options(getenv func(string) string) ([]pulsartest.Option, error) {
	var opts []pulsartest.Option
	tok, err := a.requiredToken(getenv)
	if err != nil {
		return nil, err
	}
	if tok != "" {
		opts = append(opts, pulsartest.WithToken(tok))
	}
	for _, path := range a.secretKeys {
		key, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--token-secret-key: %w", err)
		}
		if len(key) == 0 {
			return nil, usagef("--token-secret-key %s is empty", path)
		}
		opts = append(opts, pulsartest.WithTokenSecretKey(key))
	}
	for _, path := range a.publicKeys {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--token-public-key: %w", err)
		}
		der := data
		if b, _ := pem.Decode(data); b != nil {
			der = b.Bytes
		}
		key, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return nil, fmt.Errorf("--token-public-key %s: %w", path, err)
		}
		opts = append(opts, pulsartest.WithTokenPublicKey(key))
	}
	if a.lenient {
		opts = append(opts, pulsartest.WithLenientTokens())
	}
	if a.htpasswd != "" {
		data, err := os.ReadFile(a.htpasswd)
		if err != nil {
			return nil, fmt.Errorf("--basic-auth-file: %w", err)
		}
		opt, err := pulsartest.WithBasicAuthHtpasswd(data)
		if err != nil {
			return nil, fmt.Errorf("--basic-auth-file %s: %w", a.htpasswd, err)
		}
		opts = append(opts, opt)
	}
	if a.trustCerts != "" {
		opts = append(opts, pulsartest.WithTLSAuthentication())
	}
	if a.anonymousRole != "" {
		opts = append(opts, pulsartest.WithAnonymousRole(a.anonymousRole))
	}
	if len(a.superUsers)+len(a.tenantAdmins)+len(a.grants) > 0 {
		opts = append(opts, pulsartest.WithAuthorization(a.superUsers...))
	}
	for _, spec := range a.tenantAdmins {
		tenant, roles, err := assignment("--tenant-admin", "TENANT", spec)
		if err != nil {
			return nil, err
		}
		opts = append(opts, pulsartest.WithTenantAdmins(tenant, roles...))
	}
	for _, spec := range a.grants {
		ns, roles, err := assignment("--grant", "NAMESPACE", spec)
		if err != nil {
			return nil, err
		}
		if strings.Count(ns, "/") != 1 {
			return nil, usagef("--grant wants a tenant/namespace, got %q", ns)
		}
		for _, r := range roles {
			opts = append(opts, pulsartest.WithNamespacePermission(ns, r))
		}
	}
	return opts, nil
}

// requiredToken is the token of --token, --token-file or the environment.
func (a *authFlags) requiredToken(getenv func(string) string) (string, error) {
	switch {
	case a.token != "" && a.tokenFile != "":
		return "", usagef("--token and --token-file exclude each other")
	case a.token != "":
		return a.token, nil
	case a.tokenFile != "":
		data, err := os.ReadFile(a.tokenFile)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		// A token file ends with a newline more often than not; like the
		// clients that read token files, take the token without it.
		tok := strings.TrimSpace(string(data))
		if tok == "" {
			return "", usagef("--token-file %s holds no token", a.tokenFile)
		}
		return tok, nil
	}
	return strings.TrimSpace(getenv(tokenEnv)), nil
}

// assignment splits "KEY=ROLE[,ROLE]".
func assignment(flagName, key, spec string) (string, []string, error) {
	k, v, ok := strings.Cut(spec, "=")
	var roles []string
	for _, r := range strings.Split(v, ",") {
		if r = strings.TrimSpace(r); r != "" {
			roles = append(roles, r)
		}
	}
	if !ok || k == "" || len(roles) == 0 {
		return "", nil, usagef("%s wants %s=ROLE[,ROLE], got %q", flagName, key, spec)
	}
	return k, roles, nil
}

// clientCAs reads --tls-trust-certs; nil without it.
func (a *authFlags) clientCAs() (*x509.CertPool, error) {
	if a.trustCerts == "" {
		return nil, nil
	}
	return readCertPool("--tls-trust-certs", a.trustCerts)
}

// readCertPool reads the PEM certificates of path, the value of flagName.
func readCertPool(flagName, path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, usagef("%s %s holds no PEM certificate", flagName, path)
	}
	return pool, nil
}
